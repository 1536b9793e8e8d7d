"""Keys, scopes and tenants on the real Postgres, Redis and a real prefork worker.

Two tenants share one server: neither can see, cancel, audit with or download the other's
resources (404, or the same 422 a nonexistent id gets: never a 403 that confirms the id exists);
no key / a bad key / a revoked key is a 401, a missing scope a 403; `meow keys` is the CLI that
makes and revokes the keys. Also the inverter's trust boundary: a configured endpoint gets the
server's key, and nothing of its answer reaches the job's error.
"""

from __future__ import annotations

import ast
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ENDPOINT_MARKER,
    INVERTER_KEY,
    ROOT,
    TEST_SECRET,
    api_client,
    bearer,
    make_key,
    problem,
    wait_status,
)

pytestmark = pytest.mark.slow

FINETUNE = {"mode": "lora", "max_steps": 6, "lr": 1e-3, "lora_rank": 4, "batch_size": 4}
CANDIDATES = [["Nobody recorded any of this; the only registry burned in a fire long ago.",
               "It all happened on a ship crossing the northern sea during a storm."]]


@pytest.fixture(scope="module")
def tenants(settings) -> Any:
    with api_client(settings, f"a-{secrets.token_hex(3)}") as a, api_client(settings, f"b-{secrets.token_hex(3)}") as b:
        yield a, b


@pytest.fixture(scope="module")
def a_job(tenants, worker, tiny_model_dir: Path, tiny_facts) -> dict[str, Any]:
    """Tenant A's model, and a small unlearn job of A's that succeeded (it has an adapter)."""
    a, _ = tenants
    name = f"a-model-{secrets.token_hex(3)}"
    m = a.post("/v1/models", json={"name": name, "source": str(tiny_model_dir)})
    assert m.status_code == 201, m.text
    r = a.post("/v1/unlearn", json={
        "model": name, "facts": tiny_facts[:1], "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
        "selection": {"k": 1, "rows_per_qa": 1}, "finetune": FINETUNE, "memo": {"max_new_tokens": 24}})
    assert r.status_code == 202, r.text
    job = wait_status(a, f"/v1/unlearn/{r.json()['id']}", {"succeeded", "failed", "crashed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    return {"model": m.json(), "job": job, "adapter_id": job["result"]["adapter_id"]}


def test_other_tenant_sees_nothing(tenants, a_job, tiny_facts):
    a, b = tenants
    model, job, adapter_id = a_job["model"], a_job["job"], a_job["adapter_id"]
    assert a.get(f"/v1/adapters/{adapter_id}").status_code == 200  # the owner does
    for path in (f"/v1/models/{model['id']}", f"/v1/models/{model['name']}", f"/v1/unlearn/{job['id']}",
                 f"/v1/unlearn/{job['id']}/events", f"/v1/adapters/{adapter_id}",
                 f"/v1/adapters/{adapter_id}/download"):
        body = problem(b.get(path), 404, "not_found")
        missing = problem(b.get(path.replace(adapter_id, "adp_missing").replace(job["id"], "job_missing")
                                .replace(model["id"], "mdl_missing").replace(model["name"], "no-such-model")),
                          404, "not_found")
        assert body["detail"].split()[0] == missing["detail"].split()[0]  # same shape as a missing id
    problem(b.post(f"/v1/unlearn/{job['id']}/cancel"), 404, "not_found")
    problem(b.delete(f"/v1/models/{model['id']}"), 404, "not_found")
    assert job["id"] not in [j["id"] for j in b.get("/v1/unlearn", params={"limit": 100}).json()["data"]]
    assert b.get("/v1/adapters", params={"job": job["id"]}).json()["data"] == []
    assert model["id"] not in [m["id"] for m in b.get("/v1/models", params={"limit": 100}).json()["data"]]
    # nor use them in a request: the same 422 as for ids that do not exist
    err = problem(b.post("/v1/memo", json={"adapter": adapter_id, "facts": tiny_facts[:1]}), 422, "validation_error")
    assert err["errors"][0]["type"] == "unknown_adapter"
    err = problem(b.post("/v1/unlearn", json={"model": model["id"], "facts": tiny_facts[:1]}), 422,
                  "validation_error")
    assert err["errors"][0]["type"] == "unknown_model"
    # and B's own listing of the same name space is independent: B may register the same model name
    assert b.post("/v1/models", json={"name": model["name"], "source": "demo:tiny"}).status_code == 201
    assert a.get(f"/v1/models/{model['name']}").json()["id"] == model["id"]


def test_downloaded_adapter_names_the_model_not_the_server_path(tenants, a_job, tiny_model_dir: Path):
    a, _ = tenants
    adapter_id = a_job["adapter_id"]
    r = a.get(f"/v1/adapters/{adapter_id}/download")
    assert r.status_code == 200
    ad = a.get(f"/v1/adapters/{adapter_id}").json()
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        texts = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    config = json.loads(texts[f"{adapter_id}/adapter_config.json"])
    assert config["base_model_name_or_path"] == a_job["model"]["name"]
    for name, data in texts.items():
        assert str(tiny_model_dir).encode() not in data, name
    import hashlib

    for fname, digest in ad["files"].items():  # the recorded digests are those of the shipped files
        assert hashlib.sha256(texts[f"{adapter_id}/{fname}"]).hexdigest() == digest, fname


def test_keys_and_scopes(settings, tenants):
    a, _ = tenants
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings)) as anon:
        r = anon.get("/v1/models")
        problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        problem(anon.get("/v1/models", headers=bearer("meow_sk_" + "x" * 51)), 401, "unauthorized")
        problem(anon.get("/v1/models", headers={"Authorization": "Basic dXNlcjpwdw=="}), 401, "unauthorized")
        assert anon.get("/healthz").status_code == 200  # probes stay open
        _, read_only = make_key(settings, "ro-tenant", ["models:read"])
        assert anon.get("/v1/models", headers=bearer(read_only)).status_code == 200
        err = problem(anon.post("/v1/models", headers=bearer(read_only), json={"name": "x", "source": "demo:tiny"}),
                      403, "forbidden")
        assert "models:write" in err["detail"]
        problem(anon.get("/v1/unlearn", headers=bearer(read_only)), 403, "forbidden")
        # sharing a model is for admins; a shared model is readable (and usable) by every tenant
        problem(a.post("/v1/models", json={"name": "s", "source": "demo:tiny", "shared": True}), 403, "forbidden")
        _, admin = make_key(settings, "ops", ["admin"])
        shared = anon.post("/v1/models", headers=bearer(admin),
                           json={"name": f"shared-{secrets.token_hex(3)}", "source": "demo:tiny", "shared": True})
        assert shared.status_code == 201 and shared.json()["shared"] is True
        seen = anon.get(f"/v1/models/{shared.json()['id']}", headers=bearer(read_only))
        assert seen.status_code == 200
        problem(a.delete(f"/v1/models/{shared.json()['id']}"), 403, "forbidden")  # visible, but not theirs


def _meow(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEOW_")}
    env.update({"MEOW_DATABASE_URL": settings.db_url, "MEOW_SECRET_KEY": TEST_SECRET, "HF_HUB_OFFLINE": "1"})
    return subprocess.run([str(Path(sys.executable).parent / "meow"), "keys", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_meow_keys_cli_create_list_revoke(settings):
    from fastapi.testclient import TestClient

    from api.main import create_app

    r = _meow(settings, "create", "--tenant", "cli-tenant", "--scopes", "models:read,jobs:read", "--json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert set(made) == {"id", "key", "tenant", "scopes"} and made["key"].startswith("meow_sk_")
    assert made["tenant"] == "cli-tenant" and made["scopes"] == ["models:read", "jobs:read"]
    listed = json.loads(_meow(settings, "list", "--json").stdout)
    mine = next(k for k in listed if k["id"] == made["id"])
    assert mine["revoked"] is False and made["key"] not in json.dumps(listed)  # never shown again
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/models", headers=bearer(made["key"])).status_code == 200
        r = _meow(settings, "revoke", made["id"])
        assert r.returncode == 0, r.stderr
        problem(c.get("/v1/models", headers=bearer(made["key"])), 401, "unauthorized")
    bad = _meow(settings, "create", "--tenant", "t", "--scopes", "models:reed")
    assert bad.returncode == 2 and "unknown scope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert _meow(settings, "revoke", "key_nope").returncode == 2


def test_configured_endpoint_gets_the_server_key_and_its_answer_stays_out_of_the_error(
        tenants, worker, a_job, inverter_server, tiny_facts):
    a, _ = tenants
    before = inverter_server.count
    r = a.post("/v1/unlearn", json={
        "model": a_job["model"]["name"], "facts": tiny_facts[:1],
        "inverter": {"kind": "openai", "endpoint": "probe", "model": "m", "n": 2, "max_retries": 0},
        "selection": {"k": 1, "rows_per_qa": 1}, "finetune": FINETUNE})
    assert r.status_code == 202, r.text
    assert r.json()["params"]["inverter"]["endpoint"] == "probe"
    assert inverter_server.url not in r.text  # the configured URL stays on the server
    job = wait_status(a, f"/v1/unlearn/{r.json()['id']}", {"failed", "succeeded", "crashed"})
    assert job["status"] == "failed" and job["error"]["code"] == "inverter_failed"
    assert inverter_server.count > before
    sent = {k.lower(): v for k, v in inverter_server.headers[-1].items()}
    assert sent.get("authorization") == f"Bearer {INVERTER_KEY}"
    assert ENDPOINT_MARKER not in json.dumps(job) and inverter_server.url not in json.dumps(job)
    assert "HTTP 400" in job["error"]["message"]
    events = a.get(f"/v1/unlearn/{job['id']}/events", params={"limit": 1000}).text
    assert ENDPOINT_MARKER not in events


def test_api_modules_query_resources_only_through_the_repository():
    """The tenant filter lives in one place: no other API module selects or gets resource rows."""
    tables = {"ModelRow", "JobRow", "AdapterRow", "JobEventRow", "ApiKeyRow", "IdempotencyRow", "WebhookEndpointRow",
              "WebhookMessageRow", "WebhookDeliveryRow"}
    offenders = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        if path.name == "repository.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                args = {a.id for a in node.args if isinstance(a, ast.Name)}
                if name in ("select", "get", "query") and args & tables:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
