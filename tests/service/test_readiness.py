"""Readiness means a worker is consuming the queue: real prefork workers on Redis come and go
(started, SIGKILLed, stopped warm) and ``/readyz`` / ``/healthz`` follow their heartbeat rows."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from conftest import api_client, make_settings, problem, start_worker, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(pg_url, tmp_path_factory, model_root) -> Any:
    tmp = tmp_path_factory.mktemp("ready")
    settings = make_settings(pg_url, tmp, model_root, queue=f"meow-ready-{secrets.token_hex(4)}")
    with api_client(settings) as client:
        yield settings, client, tmp


def _ready(client: Any) -> int:
    return client.get("/readyz").status_code


def test_readyz_follows_the_workers(stack):
    settings, client, tmp = stack
    problem(client.get("/readyz"), 503, "no_worker")  # never started
    assert client.get("/healthz").json()["workers"] == 0

    w = start_worker(settings, tmp / "w1.log", name="ready-kill")
    try:
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["workers"] == 1, r.text
        assert client.get("/healthz").json() == {"status": "ok", "workers": 1}
    finally:
        w.kill()  # SIGKILL: no shutdown handler removes its row; the heartbeat goes stale
    t0 = time.monotonic()
    wait_for(lambda: _ready(client) == 503, settings.stale_after_s + 5, "/readyz to notice the killed worker")
    assert time.monotonic() - t0 >= settings.stale_after_s - 2 * settings.heartbeat_s - 1
    assert client.get("/healthz").json()["workers"] == 0

    w = start_worker(settings, tmp / "w2.log", name="ready-stop")
    assert _ready(client) == 200
    w.stop()  # warm shutdown removes its row at once, long before it would go stale
    problem(client.get("/readyz"), 503, "no_worker")
