"""The committed ``openapi.json`` matches the app, every operation is SDK-friendly, and the API
process never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

SPEC_PATH = ROOT / "openapi.json"


def _spec() -> dict:
    from api.main import create_app

    return create_app().openapi()


def test_committed_openapi_is_current():
    committed = json.loads(SPEC_PATH.read_text())
    assert committed == _spec(), "openapi.json is stale: run `python scripts/export_openapi.py`"


def test_every_operation_has_id_tag_and_examples():
    spec = _spec()
    assert spec["openapi"].startswith("3.1")
    seen = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("operationId") and op["operationId"] not in seen, where
            seen.add(op["operationId"])
            assert op.get("tags") and op["operationId"].startswith(op["tags"][0] + "-"), where
            blob = json.dumps({k: op.get(k) for k in ("requestBody", "parameters", "responses")})
            assert '"example"' in blob or '"examples"' in blob, f"{where} has no example"
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(resp["content"]) == ["application/problem+json"], (where, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_wire_names():
    s = _spec()["components"]["schemas"]
    assert {"name", "source"} <= set(s["ModelCreate"]["properties"])
    assert {"model", "facts", "retain_facts", "method", "inverter", "selection", "finetune", "metadata"} <= set(
        s["UnlearnCreate"]["properties"])
    assert {"id", "status", "progress", "result", "error"} <= set(s["UnlearnJob"]["properties"])
    assert {"adapter_id", "forget", "retain"} <= set(s["UnlearnResultOut"]["properties"])
    assert {"memo_before", "memo_after"} <= set(s["SetSummary"]["properties"])
    assert {"model", "adapter", "facts", "mode"} <= set(s["MemoCreate"]["properties"])
    assert {"mean", "facts"} <= set(s["MemoResultOut"]["properties"])
    assert "memo" in s["FactMemo"]["properties"]
    assert set(s["InverterIn"]["properties"]) >= {"kind", "endpoint", "api_key"}
    assert set(s["SelectionConfig"]["properties"]) >= {"k", "order"}



def test_api_does_not_import_torch():
    code = ("import sys; import api.main; from fastapi.testclient import TestClient; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
