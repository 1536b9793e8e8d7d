"""`GET /v1/methods` lists exactly what the engine catalog (and so `method` validation) accepts."""

from __future__ import annotations

from meow_engine.methods.catalog import CATALOG


def test_methods_list_matches_the_catalog_and_needs_a_key(client, settings):
    r = client.get("/v1/methods")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [m["name"] for m in data] == [m["name"] for m in CATALOG.describe()]
    by_name = {m["name"]: m for m in data}
    assert by_name["meow"]["uses_inversions"] and not by_name["meow"]["needs_retain"]
    assert "NPO" in by_name["npo_gd"]["aliases"] and by_name["gd"]["needs_retain"]
    assert any(p["name"] == "beta" for p in by_name["simnpo"]["params"])
    from conftest import api_client
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings)) as anonymous:
        assert anonymous.get("/v1/methods").status_code == 401
    with api_client(settings, scopes=["models:read"]) as no_jobs_scope:
        assert no_jobs_scope.get("/v1/methods").status_code == 403
