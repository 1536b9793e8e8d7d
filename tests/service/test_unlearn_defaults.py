"""A default API job is the product: no hyper-parameters in the body, and the job's result says
whether the fact was forgotten, with the leak table to prove it (real worker, Redis, Postgres)."""

from __future__ import annotations

import pytest
from conftest import wait_status

pytestmark = pytest.mark.slow


def test_default_job_forgets_and_carries_the_verdict(client, worker, tiny_model, tiny_facts):
    r = client.post("/v1/unlearn", json={"model": tiny_model["name"], "facts": tiny_facts[:1],
                                         "retain_facts": tiny_facts[1:]})
    assert r.status_code == 202, r.text
    job = wait_status(client, f"/v1/unlearn/{r.json()['id']}", {"succeeded", "failed", "crashed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    res = job["result"]
    [fact] = res["facts"]
    assert fact["spans"], "the detector must name what it checks"
    assert fact["leaks_before"] > 0, "the test model must have said the fact before"
    assert fact["probes"] and not [p for p in fact["probes"] if p["leaked_after"]], fact["probes"]
    assert res["verdict"] == "forgotten" and fact["verdict"] == "forgotten", res["verdict_reason"]
    assert res["target_met"] is True
    assert res["retain"]["kept"] >= 0.9, res["retain"]
    assert res["rounds"] and res["rounds"][-1]["decision"] == "stop: target"
    assert res["timings"]["load_model"] > 0, "the worker's model load is what the job spent loading"
    events = client.get(f"/v1/unlearn/{job['id']}/events").json()["data"]
    verdicts = [e for e in events if e.get("stage") == "verdict"]
    assert verdicts and verdicts[0]["data"]["verdict"] == "forgotten"
    # the event names no fact text, and the result's span texts were purged when the job ended
    assert tiny_facts[0]["answer"] not in verdicts[0]["message"]
    assert all(s["text"] is None and s["kind"] for s in fact["spans"])
    assert job["purge"]["purged_at"] and "result texts" in job["purge"]["purged"]


def test_sensitive_span_not_in_the_answer_is_a_422(client, tiny_model, tiny_facts):
    fact = {**tiny_facts[0], "sensitive": ["0161 555 0199"]}
    r = client.post("/v1/unlearn", json={"model": tiny_model["name"], "facts": [fact]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "does not occur in the answer" in r.text
