"""Limits (``api/ratelimit.py``): per-key rate limits counted in Redis (memory for ``meow serve``)
answer 429 with ``Retry-After``; a tenant's queued jobs are capped (429 problem+json)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis
from conftest import BROKER_URL, api_client, bearer, make_key, problem
from fastapi.testclient import TestClient

from api.main import create_app
from service import migrate
from service.settings import Settings


def _retry_after(r) -> int:
    value = int(r.headers["retry-after"])
    assert 1 <= value <= 60, value
    return value


def test_rate_limit_per_key_in_redis(settings):
    tight = settings.model_copy(update={"rate_limit": "3/minute"})
    assert tight.rate_limit_storage_uri == BROKER_URL  # the broker's Redis: shared by every API process
    tenant = f"rl-{secrets.token_hex(3)}"
    with api_client(tight, tenant) as c:
        assert [c.get("/v1/models").status_code for _ in range(3)] == [200, 200, 200]
        r = c.get("/v1/models")
        body = problem(r, 429, "rate_limited")
        assert "MEOW_RATE_LIMIT" in body["detail"]
        _retry_after(r)
        problem(c.get("/v1/adapters"), 429, "rate_limited")  # every route of the key counts
        _, other = make_key(tight, tenant)  # the limit is per key, not per tenant
        assert c.get("/v1/models", headers=bearer(other)).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes are not limited
    counters = [k for k in redis.Redis.from_url(BROKER_URL).scan_iter(match="*meow-api*", count=1000)]
    assert counters, "the counters live in Redis"


def test_rate_limit_in_memory_for_meow_serve(tmp_path: Path):
    local = Settings(data_dir=tmp_path, auth="off", rate_limit="2/minute", reaper_interval_s=0)
    assert local.rate_limit_storage_uri == "memory://"
    migrate.upgrade(local.db_url)
    with TestClient(create_app(local)) as c:
        assert [c.get("/v1/models").status_code for _ in range(2)] == [200, 200]
        _retry_after(c.get("/v1/models"))
        problem(c.get("/v1/models"), 429, "rate_limited")


@pytest.mark.slow
def test_queued_jobs_are_capped_per_tenant(settings, tiny_model_dir: Path):
    # a queue no worker consumes: the jobs stay queued
    capped = settings.model_copy(update={"max_queued_jobs": 2, "queue": f"meow-test-idle-{secrets.token_hex(3)}"})
    with api_client(capped, f"cap-{secrets.token_hex(3)}") as c, \
            api_client(capped, f"cap-{secrets.token_hex(3)}") as other:
        try:
            assert c.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)}).status_code == 201
            audit = {"model": "tiny", "facts": [{"question": "Q?", "answer": "An answer."}], "max_new_tokens": 4}
            ids = []
            for _ in range(2):
                r = c.post("/v1/memo", json=audit)
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            r = c.post("/v1/memo", json=audit)
            body = problem(r, 429, "too_many_queued_jobs")
            assert "MEOW_MAX_QUEUED_JOBS" in body["detail"] and r.headers["retry-after"]
            unlearn = {"model": "tiny", "facts": audit["facts"],
                       "inverter": {"kind": "given", "n": 1, "candidates": [["Another answer."]]},
                       "selection": {"k": 1}}
            problem(c.post("/v1/unlearn", json=unlearn), 429, "too_many_queued_jobs")  # jobs and audits count
            assert other.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)}).status_code == 201
            assert other.post("/v1/memo", json=audit).status_code == 202  # another tenant has its own cap
            assert c.post(f"/v1/memo/{ids[0]}/cancel").status_code == 200
            r = c.post("/v1/memo", json=audit)
            assert r.status_code == 202, r.text  # room again
            ids.append(r.json()["id"])
        finally:
            for job_id in ids:
                c.post(f"/v1/memo/{job_id}/cancel")
            redis.Redis.from_url(BROKER_URL).delete(capped.queue)
