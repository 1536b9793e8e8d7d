"""The committed ``openapi.json`` makes a working Python SDK: ``openapi-python-client`` generates a
client from it without a single warning (a warning means an operation or response was dropped),
and that generated client drives a whole story against ``meow serve`` with ``MEOW_AUTH=required``:
register a model, submit an unlearn job with an Idempotency-Key (the retry replays it), follow its
events, read the result, download the adapter, run a MEMO audit with it."""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import ROOT, wait_for
from test_embedded import CANDIDATES, _env, _key, serving

pytestmark = pytest.mark.slow

SDK_CONFIG = ROOT / "sdk" / "openapi-python-client.yaml"
PACKAGE = "meow_sdk_under_test"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client generated into a temporary folder, imported as ``PACKAGE``."""
    if importlib.util.find_spec("openapi_python_client") is None:
        pytest.skip("openapi-python-client is not installed (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("sdk")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff post-hooks
    r = subprocess.run([str(BIN / "openapi-python-client"), "generate", "--path", str(ROOT / "openapi.json"),
                        "--config", str(SDK_CONFIG), "--meta", "none", "--output-path", str(out / PACKAGE)],
                       cwd=out, env=env, capture_output=True, text=True, timeout=120)
    printed = r.stdout + r.stderr
    assert r.returncode == 0, printed
    assert "warning" not in printed.lower(), printed  # e.g. "Unsupported content_type": a response dropped
    assert "not in PATH" not in printed, printed
    assert (out / PACKAGE / "api" / "adapters" / "adapters_download_adapter.py").is_file()
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _api(name: str) -> Any:
    """``unlearn_create_unlearn_job`` -> the generated module ``api.unlearn.unlearn_create_unlearn_job``."""
    return importlib.import_module(f"{PACKAGE}.api.{name.split('_', 1)[0]}.{name}")


def _model(name: str) -> Any:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def test_generated_client_story(sdk: ModuleType, tmp_path: Path, model_root: Path, tiny_model_dir: Path,
                                tiny_facts: list[dict[str, str]]):
    import httpx

    data = tmp_path / "data"
    env = _env(model_root, data, MEOW_AUTH="required")
    key = _key(env, "tenant-sdk", "models:read,models:write,jobs:read,jobs:write,memo:write,adapters:read")
    with serving(tmp_path, env) as (base, _log, _proc):
        client = sdk.AuthenticatedClient(base_url=base, token=key["key"], timeout=httpx.Timeout(60.0))
        anonymous = sdk.Client(base_url=base, timeout=httpx.Timeout(30.0))
        with client, anonymous:
            refused = _api("models_list_models").sync_detailed(client=anonymous)
            assert refused.status_code == 401 and refused.parsed.code == "unauthorized"

            made = _api("models_create_model").sync_detailed(
                client=client, body=_model("ModelCreate")(name="tiny", source=str(tiny_model_dir)))
            assert made.status_code == 201, made.content
            assert made.parsed.name == "tiny"

            body = _model("UnlearnCreate").from_dict({
                "model": "tiny", "facts": tiny_facts[:1],
                "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
                "selection": {"k": 1, "rows_per_qa": 2}, "memo": {"max_new_tokens": 32},
                "finetune": {"mode": "lora", "max_steps": 30, "lr": 1e-3}})
            create = _api("unlearn_create_unlearn_job")
            sent = create.sync_detailed(client=client, body=body, idempotency_key="sdk-job-1")
            assert sent.status_code == 202, sent.content
            job_id = sent.parsed.id
            again = create.sync_detailed(client=client, body=body, idempotency_key="sdk-job-1")
            assert again.status_code == 202 and again.parsed.id == job_id
            assert again.headers["idempotent-replayed"] == "true"

            # follow the events page by page (the `after` cursor) until the job has finished
            events: list[Any] = []
            get_job = _api("unlearn_get_unlearn_job")
            list_events = _api("unlearn_list_unlearn_job_events")
            deadline = time.monotonic() + 300
            while True:
                status = get_job.sync(job_id, client=client).status
                page = list_events.sync(job_id, client=client, after=events[-1].id if events else None)
                events += page.data
                if status in ("succeeded", "failed", "crashed", "cancelled") and not page.has_more:
                    break
                assert time.monotonic() < deadline, f"job {job_id} still {status} after 300 s"
                time.sleep(0.5)
            assert [e.id for e in events] == sorted({e.id for e in events})  # no gaps re-read, no repeats
            kinds = [e.type_ for e in events]
            assert "progress" in kinds and kinds.count("status") >= 3, kinds

            job = get_job.sync(job_id, client=client)
            assert job.status == "succeeded", (job.error, (data / "worker.log").read_text()[-3000:])
            forget = job.result.forget
            assert forget.memo_after < forget.memo_before
            adapter_id = job.result.adapter_id

            download = _api("adapters_download_adapter").sync_detailed(adapter_id, client=client)
            assert download.status_code == 200
            archive = download.parsed.payload.read()
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                assert f"{adapter_id}/adapter_model.safetensors" in tar.getnames()
            assert download.headers["content-type"] == "application/gzip"  # the client sends no Accept
            octets = client.get_httpx_client().get(f"/v1/adapters/{adapter_id}/download",
                                                   headers={"Accept": "application/octet-stream"})
            assert octets.headers["content-type"] == "application/octet-stream" and octets.content == archive

            audit = _api("memo_create_memo_audit").sync_detailed(
                client=client, wait=60,
                body=_model("MemoCreate").from_dict({"adapter": adapter_id, "facts": tiny_facts[:1],
                                                    "max_new_tokens": 32}))
            assert audit.status_code in (200, 202), audit.content
            audit_id = audit.parsed.id
            get_audit = _api("memo_get_memo_audit")
            done = wait_for(lambda: (lambda a: a if a.status in ("succeeded", "failed", "crashed") else None)(
                get_audit.sync(audit_id, client=client)), 120, "the audit to finish")
            assert done.status == "succeeded", done.error
            assert done.result.mean == pytest.approx(forget.memo_after, abs=1e-6)

            missing = get_job.sync_detailed("unl_doesnotexist", client=client)
            assert missing.status_code == 404 and missing.parsed.code == "not_found"
