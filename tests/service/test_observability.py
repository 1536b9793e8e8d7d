"""Observability (``service/logs.py``, ``api/metrics.py``) with the real Postgres, Redis and worker:
``/metrics`` moves when a job runs (jobs per state, HTTP counts, stage durations, queue depth),
and log lines are JSON carrying the request id, tenant and job id, in the API and the worker."""

from __future__ import annotations

import io
import json
import logging
import secrets
from typing import Any

import pytest
from conftest import api_client, wait_for, wait_status
from prometheus_client.parser import text_string_to_metric_families

from service.logs import HANDLER_NAME

pytestmark = pytest.mark.slow

CANDIDATES = [["Nobody recorded any of this; the only registry burned in a fire long ago.",
               "It all happened on a ship crossing the northern sea during a storm."]]


def scrape(c: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text[:200]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(m: dict, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_and_logs_follow_a_job(settings, worker, tiny_model_dir, tiny_facts):
    root = logging.getLogger()
    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    tenant = f"obs-{secrets.token_hex(3)}"
    try:
        with api_client(settings, tenant) as c:  # the app installs the structured handler
            [ours] = [h for h in root.handlers if h.get_name() == HANDLER_NAME]
            capture.setFormatter(ours.formatter)
            root.addHandler(capture)
            before = scrape(c)
            assert ("meow_queue_depth", (("queue", settings.queue),)) in before
            assert c.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)}).status_code == 201
            r = c.post("/v1/unlearn", headers={"X-Request-ID": "req-obs-1"}, json={
                "model": "tiny", "facts": tiny_facts[:1],
                "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
                "selection": {"k": 1, "rows_per_qa": 1}, "memo": {"max_new_tokens": 16},
                "finetune": {"mode": "lora", "max_steps": 4, "lr": 1e-3, "lora_rank": 4, "batch_size": 4}})
            assert r.status_code == 202 and r.headers["x-request-id"] == "req-obs-1", r.text
            job_id = r.json()["id"]
            assert len(c.get("/v1/models").headers["x-request-id"]) == 32  # made up when none is sent
            job = wait_status(c, f"/v1/unlearn/{job_id}", {"succeeded", "failed", "crashed", "cancelled"})
            assert job["status"] == "succeeded", job["error"]
            after = scrape(c)
    finally:
        root.removeHandler(capture)

    assert value(after, "meow_jobs", kind="unlearn", status="succeeded") \
        >= value(before, "meow_jobs", kind="unlearn", status="succeeded") + 1
    key = dict(method="POST", route="/v1/unlearn", status="202")
    assert value(after, "meow_http_requests_total", **key) >= value(before, "meow_http_requests_total", **key) + 1
    assert value(after, "meow_http_request_duration_seconds_count", method="POST", route="/v1/unlearn") >= 1
    stages = {dict(labels)["stage"]: v for (name, labels), v in after.items()
              if name == "meow_job_stage_duration_seconds_count" and dict(labels)["kind"] == "unlearn"}
    assert stages and all(v >= 1 for v in stages.values()), stages
    for stage in stages:
        assert value(after, "meow_job_stage_duration_seconds_sum", kind="unlearn", stage=stage) >= 0

    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    posted = [e for e in lines if e.get("event") == "request" and e.get("request_id") == "req-obs-1"]
    assert posted, lines[-5:]
    assert posted[0]["tenant"] == tenant and posted[0]["job_id"] == job_id and posted[0]["status"] == 202
    assert posted[0]["route"] == "/v1/unlearn" and posted[0]["level"] == "info" and posted[0]["timestamp"]

    def worker_line() -> dict[str, Any] | None:
        for line in worker.text().splitlines():
            if line.startswith("{") and f'"{job_id}"' in line:
                entry = json.loads(line)
                if entry.get("job_id") == job_id and entry.get("event") == "job started":
                    return entry
        return None

    entry = wait_for(worker_line, 10, "the worker's JSON line naming the job")
    assert entry["logger"] == "meow.worker" and entry["attempt"] == 1
