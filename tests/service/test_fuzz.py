"""Schemathesis fuzzes every operation of the live spec (the app's own ``/openapi.json``) on an app
bound to the test Postgres database, authenticated with a real API key. No response may be a 5xx,
every response must match its documented status, content type and schema, and every error must be
``application/problem+json``. No worker runs: accepted jobs just queue, so fuzzing stays cheap."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_key, make_settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402  (installed with schemathesis)
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

#: examples per operation and data mode: ~20 s for all on 2 cores; MEOW_FUZZ_EXAMPLES=500 for a deep run
MAX_EXAMPLES = int(os.environ.get("MEOW_FUZZ_EXAMPLES", "20"))
PROBLEM_JSON = "application/problem+json"


def problem_json_errors(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx/5xx is RFC 9457 problem+json with the fields our clients read."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith(PROBLEM_JSON), f"{response.status_code} sent as {content_type!r}"
    body = response.json()
    assert body["status"] == response.status_code and body["code"] and body["title"], body


#: 5xx answers that are an operation's contract, not a fault: without a worker (none runs here)
#: the readiness probe must say 503 ``no_worker``
EXPECTED_5XX = {("GET", "/readyz"): {503}}


def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    """``not_a_server_error``, except where ``EXPECTED_5XX`` makes the 5xx the right answer."""
    if response.status_code in EXPECTED_5XX.get((case.operation.method.upper(), case.operation.path), set()):
        return
    not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          problem_json_errors]


@pytest.fixture(scope="module")
def fuzz_app(pg_url: str, tmp_path_factory: pytest.TempPathFactory, model_root: Path) -> Any:
    from api.main import create_app

    # ?wait= on POST /v1/memo would block on a queue nobody consumes: bound it to a second
    return create_app(make_settings(pg_url, tmp_path_factory.mktemp("fuzz"), model_root, max_wait_s=1.0))


@pytest.fixture(scope="module")
def fuzz_key(fuzz_app: Any) -> str:
    return make_key(fuzz_app.state.settings, f"fuzz-{secrets.token_hex(3)}")[1]


@pytest.fixture(scope="module")
def seeds(fuzz_app: Any, fuzz_key: str, tiny_model_dir: Path, tiny_facts: list[dict[str, str]]) -> dict[str, str]:
    """Real resources of the fuzzing tenant, by path-parameter name: a model, a queued unlearn job, a
    queued audit and a webhook endpoint, so that fuzzed requests also reach past the 404s."""
    from fastapi.testclient import TestClient

    with TestClient(fuzz_app, headers={"Authorization": f"Bearer {fuzz_key}"}) as c:
        model = c.post("/v1/models", json={"name": "fuzz-tiny", "source": str(tiny_model_dir)})
        job = c.post("/v1/unlearn", json={"model": "fuzz-tiny", "facts": tiny_facts[:1]})
        audit = c.post("/v1/memo", json={"model": "fuzz-tiny", "facts": tiny_facts[:1]})
        hook = c.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/meow"})
    for r, status in ((model, 201), (job, 202), (audit, 202), (hook, 201)):
        assert r.status_code == status, r.text
    return {"model": "fuzz-tiny", "job_id": job.json()["id"], "audit_id": audit.json()["id"],
            "endpoint_id": hook.json()["id"]}


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def _cases() -> list[Any]:
    """(method, path, mode) for every operation, read from the committed spec for test ids
    (test_openapi.py keeps it equal to the live one; the live schema is what gets fuzzed). Negative
    data only where there is input to break: an operation without parameters or body has none."""
    spec = json.loads((ROOT / "openapi.json").read_text())
    cases = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            modes = [GenerationMode.POSITIVE]
            if op.get("parameters") or op.get("requestBody"):
                modes.append(GenerationMode.NEGATIVE)
            cases += [pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
                      for mode in modes]
    return cases


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_api_fuzz(method: str, path: str, mode: Any, api_schema: Any, fuzz_key: str, seeds: dict[str, str]) -> None:
    # (schemathesis.pytest.from_fixture would be the idiom, but its lazy loader sets
    # ``node._nodeid``, which pytest 9 no longer has; a strategy per operation does the same)
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {fuzz_key}"}

    @given(case=operation.as_strategy(generation_mode=mode), aim=st.booleans())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any, aim: bool) -> None:
        if aim and mode == GenerationMode.POSITIVE:  # about half the valid requests name real resources
            for name in case.path_parameters or {}:
                case.path_parameters[name] = seeds.get(name, case.path_parameters[name])
            if isinstance(case.body, dict) and "model" in case.body:
                case.body["model"] = seeds["model"]
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
