"""/v1/models, health probes and the error shape (no worker needed)."""

from __future__ import annotations

import secrets
from pathlib import Path

from conftest import api_client, problem


def _name() -> str:
    return f"m-{secrets.token_hex(4)}"


def test_healthz_and_readyz_without_a_worker(settings):
    """A queue nobody consumes: alive, but not ready (tests/service/test_readiness.py starts workers)."""
    alone = settings.model_copy(update={"queue": f"nobody-{secrets.token_hex(4)}", "reaper_interval_s": 0})
    with api_client(alone) as c:
        assert c.get("/healthz").json() == {"status": "ok", "workers": 0}
        body = problem(c.get("/readyz"), 503, "no_worker")
    assert alone.queue in body["detail"]


def test_readyz_reports_unreachable_broker(settings):
    bad = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0", "reaper_interval_s": 0})
    with api_client(bad) as c:
        body = problem(c.get("/readyz"), 503, "broker_unavailable")
    assert "broker unreachable" in body["detail"]


def test_readyz_reports_unreachable_database(settings):
    from fastapi.testclient import TestClient

    from api.main import create_app

    bad = settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none",
                                      "reaper_interval_s": 0})
    with TestClient(create_app(bad)) as c:  # probes need no key (and no key could be stored here)
        problem(c.get("/readyz"), 503, "database_unavailable")


def test_register_builtin_get_list_delete(client):
    name = _name()
    r = client.post("/v1/models", json={"name": name, "source": "demo:tiny"})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["id"].startswith("mdl_") and m["source_kind"] == "builtin" and m["name"] == name
    assert r.headers["location"] == f"/v1/models/{m['id']}"
    assert client.get(f"/v1/models/{m['id']}").json() == m
    assert client.get(f"/v1/models/{name}").json() == m  # by name too
    ids = [x["id"] for x in client.get("/v1/models", params={"limit": 100}).json()["data"]]
    assert m["id"] in ids
    assert client.delete(f"/v1/models/{name}").status_code == 204
    problem(client.get(f"/v1/models/{m['id']}"), 404, "not_found")
    problem(client.delete(f"/v1/models/{m['id']}"), 404, "not_found")


def test_register_local_folder_under_root(client, tiny_model_dir: Path):
    r = client.post("/v1/models", json={"name": _name(), "source": str(tiny_model_dir)})
    assert r.status_code == 201, r.text
    assert r.json()["source_kind"] == "path" and r.json()["source"] == str(tiny_model_dir.resolve())


def test_register_hub_id(client):
    r = client.post("/v1/models", json={"name": _name(), "source": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    assert r.status_code == 201 and r.json()["source_kind"] == "hub"


def test_register_errors(client, tmp_path: Path, tiny_model_dir: Path):
    name = _name()
    assert client.post("/v1/models", json={"name": name, "source": "demo:tiny"}).status_code == 201
    problem(client.post("/v1/models", json={"name": name, "source": "demo:tiny"}), 409, "conflict")
    # a real model folder, but outside every model root
    outside = tmp_path / "model"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    body = problem(client.post("/v1/models", json={"name": _name(), "source": str(outside)}), 422, "validation_error")
    assert body["errors"][0]["loc"] == "body/source" and body["errors"][0]["type"] == "path_outside_roots"
    # a folder under the root that is not a model
    empty = tiny_model_dir.parent / f".empty-{secrets.token_hex(3)}"
    empty.mkdir()
    try:
        body = problem(client.post("/v1/models", json={"name": _name(), "source": str(empty)}), 422,
                       "validation_error")
        assert "no config.json" in body["detail"]
    finally:
        empty.rmdir()
    missing = str(tiny_model_dir.parent / f"no-such-folder-{secrets.token_hex(3)}")  # outside a root: see below
    body = problem(client.post("/v1/models", json={"name": _name(), "source": missing}), 422, "validation_error")
    assert "no such folder" in body["detail"]
    # outside the roots the answer does not depend on what exists there (no probing the server's disk)
    for path in ("/no/such/folder", "/etc", "/etc/passwd"):
        body = problem(client.post("/v1/models", json={"name": _name(), "source": path}), 422, "validation_error")
        assert body["errors"][0]["type"] == "path_outside_roots", path
    problem(client.post("/v1/models", json={"name": _name(), "source": "not a model"}), 422, "validation_error")
    body = problem(client.post("/v1/models", json={"name": "bad name!", "source": "demo:tiny"}), 422,
                   "validation_error")
    assert body["errors"][0]["loc"] == "body/name"
    problem(client.post("/v1/models", json={"name": _name()}), 422, "validation_error")
    problem(client.post("/v1/models", content=b"{not json", headers={"content-type": "application/json"}), 422,
            "validation_error")


def test_hub_ids_can_be_disabled(settings):
    with api_client(settings.model_copy(update={"allow_hub_models": False, "reaper_interval_s": 0})) as c:
        body = problem(c.post("/v1/models", json={"name": _name(), "source": "org/model"}), 422, "validation_error")
    assert body["errors"][0]["type"] == "hub_disabled"


def test_unknown_route_and_method_are_problems(client):
    problem(client.get("/v1/nothing"), 404, "not_found")
    problem(client.put("/v1/models"), 405, "method_not_allowed")


def test_models_pagination(client):
    made = [client.post("/v1/models", json={"name": _name(), "source": "demo:tiny"}).json()["id"] for _ in range(3)]
    page1 = client.get("/v1/models", params={"limit": 2}).json()
    assert len(page1["data"]) == 2 and page1["has_more"] is True
    assert [m["id"] for m in page1["data"]] == sorted([m["id"] for m in page1["data"]], reverse=True)
    assert page1["data"][0]["id"] == made[-1]  # newest first
    page2 = client.get("/v1/models", params={"limit": 2, "after": page1["data"][-1]["id"]}).json()
    assert page2["data"][0]["id"] == made[0]
    assert not {m["id"] for m in page1["data"]} & {m["id"] for m in page2["data"]}
    problem(client.get("/v1/models", params={"limit": 0}), 422, "validation_error")
