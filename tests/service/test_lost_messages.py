"""The database is the truth, not the broker: a queued job whose message the broker lost (Redis
flushed, restarted without persistence) is sent again by the reconciler in the reaper, by the API
with no worker up, and by a worker with no API up, once per ``MEOW_REQUEUE_AFTER_S``."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
import redis
from conftest import BROKER_URL, api_client, make_settings, start_worker, wait_for, wait_status

pytestmark = pytest.mark.slow

REQUEUE_S = 3.0


@pytest.fixture(scope="module")
def setup(pg_url, tmp_path_factory, model_root, tiny_model_dir) -> Any:
    tmp = tmp_path_factory.mktemp("lost")
    settings = make_settings(pg_url, tmp, model_root, queue=f"meow-lost-{secrets.token_hex(4)}",
                             requeue_after_s=REQUEUE_S, reaper_interval_s=0.5)
    return settings, tmp, redis.Redis.from_url(BROKER_URL)


def _pending(r: redis.Redis, queue: str) -> int:
    """Messages waiting in this queue's Redis lists (kombu adds suffixed keys per priority)."""
    return sum(r.llen(k) for k in r.scan_iter(match=f"{queue}*") if r.type(k) == b"list")


def _lose(r: redis.Redis, queue: str) -> None:
    """What a FLUSHDB does to this queue, without touching other test sessions sharing the Redis db."""
    for k in list(r.scan_iter(match=f"{queue}*")):
        r.delete(k)
    assert _pending(r, queue) == 0


def _audit(client: Any, model: str, facts: list[dict[str, str]]) -> str:
    r = client.post("/v1/memo", json={"model": model, "facts": facts[:1], "max_new_tokens": 8})
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    return r.json()["id"]


def test_lost_messages_are_sent_again_and_run(setup, tiny_model_dir, tiny_facts):
    settings, tmp, r = setup
    model, tenant = f"lost-{secrets.token_hex(3)}", f"t-lost-{secrets.token_hex(3)}"

    # the API's reaper, with no worker anywhere: one new message per period, not one per pass
    with api_client(settings, tenant) as api:
        assert api.post("/v1/models", json={"name": model, "source": str(tiny_model_dir)}).status_code == 201
        first = _audit(api, model, tiny_facts)
        assert _pending(r, settings.queue) == 1
        _lose(r, settings.queue)
        t0 = time.monotonic()
        wait_for(lambda: _pending(r, settings.queue) == 1, REQUEUE_S + 5, "the API to send the lost job again")
        assert time.monotonic() - t0 > REQUEUE_S - 2 * settings.reaper_interval_s  # not before the period ends
        time.sleep(REQUEUE_S / 2)  # several reaper passes
        assert _pending(r, settings.queue) == 1
        assert api.get(f"/v1/memo/{first}").json()["status"] == "queued"

    # no API reaper now: the worker's own reaper finds both jobs queued with no message, and runs them
    quiet = settings.model_copy(update={"reaper_interval_s": 0})
    with api_client(quiet, tenant) as api:
        second = _audit(api, model, tiny_facts)
        _lose(r, settings.queue)
        w = start_worker(settings, tmp / "worker.log", name="lost")
        try:
            for job_id in (first, second):
                job = wait_status(api, f"/v1/memo/{job_id}", {"succeeded", "failed", "crashed"}, 120)
                assert job["status"] == "succeeded", (job["error"], w.text()[-2000:])
            assert "queued job(s) again" in w.text()  # the worker's reconciler sent them
        finally:
            w.stop()


def test_messages_of_cancelled_jobs_are_dropped_without_a_pool_child(setup, tiny_model_dir, tiny_facts):
    """Jobs cancelled while no worker ran: a starting worker drops their messages in the parent (no
    child used, so no child replacement per message), then runs the next real job."""
    settings, tmp, r = setup
    settings = settings.model_copy(update={"queue": f"meow-drop-{secrets.token_hex(4)}", "requeue_after_s": 0})
    model = f"drop-{secrets.token_hex(3)}"
    with api_client(settings) as api:
        assert api.post("/v1/models", json={"name": model, "source": str(tiny_model_dir)}).status_code == 201
        ids = [_audit(api, model, tiny_facts) for _ in range(4)]
        for job_id in ids:
            assert api.post(f"/v1/memo/{job_id}/cancel").json()["status"] == "cancelled"
        assert _pending(r, settings.queue) == 4
        w = start_worker(settings, tmp / "drop.log", name="drop")
        try:
            t0 = time.monotonic()
            wait_for(lambda: w.text().count("dropped the message of job") == 4, 20, "the four messages to be dropped",
                     interval=0.05)
            took = time.monotonic() - t0
            assert took < 3, f"{took:.1f} s for four cancelled messages"
            assert _pending(r, settings.queue) == 0
            for job_id in ids:
                assert f"dropped the message of job {job_id}: it is cancelled" in w.text()
                assert api.get(f"/v1/memo/{job_id}").json()["status"] == "cancelled"
            live = _audit(api, model, tiny_facts)  # the worker still runs real jobs afterwards
            job = wait_status(api, f"/v1/memo/{live}", {"succeeded", "failed", "crashed"}, 120)
            assert job["status"] == "succeeded", (job["error"], w.text()[-2000:])
        finally:
            w.stop()


def test_a_worker_ignores_jobs_of_a_database_it_does_not_serve(setup, tmp_path):
    """Two deployments on one queue of one broker (misconfigured): a message naming a job its
    database does not have is dropped with an error that says so, and nothing is written. The
    embedded default cannot get there: its broker file lies beside its database."""
    from service.queue import make_celery, send_job
    from service.settings import Settings

    a, b = (Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / n}") for n in ("a.db", "b.db"))
    assert a.broker != b.broker and a.broker.endswith("a.db.broker.db")

    settings, tmp, r = setup
    settings = settings.model_copy(update={"queue": f"meow-other-{secrets.token_hex(4)}", "requeue_after_s": 0})
    w = start_worker(settings, tmp / "other.log", name="other")
    try:
        foreign = f"aud_{secrets.token_hex(14)}"  # a job of another database
        send_job(make_celery(settings, include_tasks=False), foreign, "memo", settings.queue)
        wait_for(lambda: f"dropped the message of job {foreign}: it is not in this worker's database" in w.text(),
                 10, "the foreign message to be dropped")
        assert _pending(r, settings.queue) == 0
    finally:
        w.stop()
