"""A worker that dies mid-job never leaves the job ``running``.

Two ways to die, with a real prefork worker on Redis: the pool child is SIGKILLed (the parent
sees it and marks the job ``crashed`` at once), and the whole worker is SIGKILLed (nobody is left
to notice; the heartbeat stops and the API's reaper marks the job ``crashed``).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from typing import Any

import pytest
from conftest import api_client, make_settings, start_worker, wait_for, wait_status

from service.db import session_scope
from service.tables import JobRow

pytestmark = pytest.mark.slow

LONG = {"inverter": {"kind": "rule", "n": 2}, "selection": {"k": 1, "rows_per_qa": 1}, "memo": {"max_new_tokens": 16},
        "finetune": {"mode": "lora", "max_steps": 100000, "lr": 1e-4}}


@pytest.fixture(scope="module")
def stack(pg_url, tmp_path_factory, model_root, tiny_model_dir) -> Any:
    """API client + worker on a queue of their own, so killing this worker affects no other test."""
    tmp = tmp_path_factory.mktemp("crash")
    settings = make_settings(pg_url, tmp, model_root, queue=f"meow-crash-{secrets.token_hex(4)}")
    with api_client(settings) as client:
        name = f"crash-{secrets.token_hex(3)}"
        assert client.post("/v1/models", json={"name": name, "source": str(tiny_model_dir)}).status_code == 201
        yield settings, client, name, tmp


def _running(client, job_id: str) -> bool:
    job = client.get(f"/v1/unlearn/{job_id}").json()
    return job["status"] == "running" and job["progress"] is not None


def test_killed_child_marks_job_crashed_at_once(stack, tiny_facts):
    settings, client, model, tmp = stack
    w = start_worker(settings, tmp / "worker-child.log", name="crash-child")
    try:
        job_id = client.post("/v1/unlearn", json={"model": model, "facts": tiny_facts[:1], **LONG}).json()["id"]
        wait_for(lambda: _running(client, job_id), 240, "the job to be running")
        children = w.children()
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        t0 = time.monotonic()
        job = wait_status(client, f"/v1/unlearn/{job_id}", {"crashed", "failed", "succeeded", "cancelled"}, 60)
        assert job["status"] == "crashed" and job["error"]["code"] == "worker_lost"
        assert job["crashed_at"] and job["finished_at"]
        assert "worker process exited" in job["error"]["message"]
        # marked by the parent's failure handler, well before the heartbeat could go stale
        assert time.monotonic() - t0 < settings.stale_after_s + 1
        assert w.proc.poll() is None  # the worker itself survives and replaced its child
        events = client.get(f"/v1/unlearn/{job_id}/events", params={"limit": 1000}).json()["data"]
        statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
        assert statuses == ["queued", "running", "crashed"]
        assert events[-1]["level"] == "error"
    finally:
        w.stop()


def test_killed_worker_is_reaped_by_heartbeat(stack, tiny_facts):
    settings, client, model, tmp = stack
    w = start_worker(settings, tmp / "worker-kill.log", name="crash-all")
    job_id = client.post("/v1/unlearn", json={"model": model, "facts": tiny_facts[:1], **LONG}).json()["id"]
    try:
        wait_for(lambda: _running(client, job_id), 240, "the job to be running")
        before = client.get(f"/v1/unlearn/{job_id}").json()
        assert before["heartbeat_at"] is not None
    finally:
        w.kill()  # SIGKILL parent and child: no handler runs anywhere
    assert client.get(f"/v1/unlearn/{job_id}").json()["status"] == "running"
    job = wait_status(client, f"/v1/unlearn/{job_id}", {"crashed", "failed", "succeeded", "cancelled"},
                      settings.stale_after_s + 20)
    assert job["status"] == "crashed" and job["error"]["code"] == "worker_lost"
    assert "no heartbeat" in job["error"]["message"]
    assert job["crashed_at"] - job["heartbeat_at"] >= settings.stale_after_s - 1

    # a cancel now is refused (the job is finished) and a new worker does not resurrect it
    assert client.post(f"/v1/unlearn/{job_id}/cancel").status_code == 409
    w2 = start_worker(settings, tmp / "worker-after.log", name="crash-after")
    try:
        audit = client.post("/v1/memo", params={"wait": 60}, json={"model": model, "facts": tiny_facts[:1],
                                                                  "max_new_tokens": 16})
        body = audit.json() if audit.status_code == 200 else wait_status(
            client, f"/v1/memo/{audit.json()['id']}", {"succeeded", "failed"})
        assert body["status"] == "succeeded"  # the queue works again
        assert client.get(f"/v1/unlearn/{job_id}").json()["status"] == "crashed"
    finally:
        w2.stop()


def test_default_node_names_are_unique_per_process(stack):
    from api.embedded import worker_command

    settings = stack[0]
    names = {worker_command(settings)[worker_command(settings).index("-n") + 1] for _ in range(5)}
    assert len(names) == 5 and all(n.startswith(f"meow-{os.getpid()}-") for n in names)


def test_a_namesake_worker_does_not_reap_a_live_workers_job(stack, tiny_facts):
    """Two live workers given one node name: the second one's start must not mark the first one's
    running job crashed (only that job's own heartbeat going stale may)."""
    settings, client, model, tmp = stack
    name = f"twin-{secrets.token_hex(3)}"
    a = start_worker(settings, tmp / "twin-a.log", name=name, unique=False)
    b = None
    try:
        body = {"model": model, "facts": tiny_facts[:1], **LONG, "target": {"enabled": False}}  # one long run
        job_id = client.post("/v1/unlearn", json=body).json()["id"]
        wait_for(lambda: _running(client, job_id), 240, "the job to be running")
        with session_scope(settings.db_url) as s:
            assert s.get(JobRow, job_id).worker == f"{name}@{socket.gethostname()}"
        b = start_worker(settings, tmp / "twin-b.log", name=name, unique=False)
        time.sleep(settings.stale_after_s + 2 * settings.reaper_interval_s)  # past a start-up reap and reaper passes
        job = client.get(f"/v1/unlearn/{job_id}").json()
        assert job["status"] == "running", (job["error"], b.text()[-2000:])
        assert client.post(f"/v1/unlearn/{job_id}/cancel").status_code == 200
        job = wait_status(client, f"/v1/unlearn/{job_id}", {"cancelled", "crashed", "failed", "succeeded"}, 60)
        assert job["status"] == "cancelled"
    finally:
        a.stop()
        if b is not None:
            b.stop()
