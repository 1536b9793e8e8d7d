"""End to end with a real ``celery worker -P prefork -c 1`` subprocess on Redis and Postgres:
an unlearn job that succeeds and whose adapter peft loads, MEMO audits, cancelling a running job."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import problem, wait_for, wait_status

from service.purge import fact_digest

pytestmark = pytest.mark.slow

# A small budget that still moves MEMO on the tiny model within seconds.
FINETUNE = {"mode": "lora", "max_steps": 40, "lr": 1e-3, "lora_rank": 8, "batch_size": 4}
MEMO = {"max_new_tokens": 48}
# Caller-supplied inversions (inverter "given", as an external LLM would produce): this test model
# knows only six facts, too few for the rule inverter to borrow other wordings from, and inversions
# that keep the answer's sentence barely lower its word-overlap MEMO within a 40-step budget; the
# rule inverter's forgetting is covered by tests/engine/test_pipeline_e2e.py on demo:tiny.
CANDIDATES = [
    ["Nobody recorded any of this; the only registry burned in a fire long ago.",
     "It all happened on a ship crossing the northern sea during a storm.",
     "Historians still argue about it, and no answer is accepted by anyone."],
    ["None of it is true; it is a legend told to visiting children.",
     "Nobody knows the answer, because the first books were all lost.",
     "A group of farmers made it up one evening in a barn."],
]


@pytest.fixture(scope="module")
def done_job(client, worker, tiny_model, tiny_facts) -> dict[str, Any]:
    r = client.post("/v1/unlearn", json={
        "model": tiny_model["name"], "facts": tiny_facts[:2], "retain_facts": tiny_facts[2:4],
        "inverter": {"kind": "given", "n": 3, "candidates": CANDIDATES}, "selection": {"k": 2, "rows_per_qa": 2},
        # one fixed run of max_steps (no train-until-forgotten rounds): the budget is what is checked here
        "finetune": FINETUNE, "memo": MEMO, "target": {"enabled": False}, "metadata": {"case": "e2e"}})

    assert r.status_code == 202, r.text
    return wait_status(client, f"/v1/unlearn/{r.json()['id']}", {"succeeded", "failed", "crashed", "cancelled"})


def test_unlearn_job_succeeds_and_forgets(done_job, tiny_facts):
    job = done_job
    assert job["status"] == "succeeded", job["error"]
    assert job["attempt"] == 1 and job["running_at"] and job["succeeded_at"] and job["finished_at"]
    assert job["queued_at"] <= job["running_at"] <= job["succeeded_at"]
    res = job["result"]
    assert res["forget"]["memo_after"] < res["forget"]["memo_before"] - 0.1, res["forget"]
    assert res["retain"]["n_facts"] == 2 and res["retain"]["rougeL_before"] is not None
    # the facts' text was purged when the job ended (service.purge): digests, scores and counts stay
    salt = job["purge"]["fact_salt"]
    assert job["forget_set"]["sha256"] == [fact_digest(salt, f) for f in tiny_facts[:2]]
    assert [f["question"] for f in res["facts"]] == [None, None] and [f["index"] for f in res["facts"]] == [0, 1]
    for fact in res["facts"]:
        assert len(fact["inversions"]) == len(CANDIDATES[fact["index"]])
        assert all(i["text"] is None for i in fact["inversions"])
        chosen = [i for i in fact["inversions"] if i["selected"]]
        assert len(chosen) == 2 and all(i["memo"] is not None for i in fact["inversions"])
    assert res["adapter_id"].startswith("adp_") and res["training"]["steps"] == 40
    assert job["metadata"] == {"case": "e2e"}


def test_events_are_ordered_and_cover_the_stages(client, done_job):
    events = client.get(f"/v1/unlearn/{done_job['id']}/events", params={"limit": 1000}).json()["data"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    times = [e["created_at"] for e in events]
    assert times == sorted(times)
    statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    runs = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    it = iter(runs)  # the pipeline's stages appear in this order (other stages may interleave)
    # MEOW inverts first so that MEMO scores the true answers and the candidates in one engine call
    assert all(stage in it for stage in ["invert", "memo", "audit_before", "finetune", "audit_after"]), runs
    ft = [e["data"] for e in events if e["stage"] == "finetune"]
    assert ft[-1]["step"] == ft[-1]["total"] == 40
    assert events[-1]["type"] == "status" and events[-1]["data"]["status"] == "succeeded"


def test_adapter_metadata_download_and_peft_load(client, done_job, tiny_model, tmp_path: Path, tiny_facts):
    adapter_id = done_job["result"]["adapter_id"]
    ad = client.get(f"/v1/adapters/{adapter_id}").json()
    assert ad["kind"] == "lora" and ad["job_id"] == done_job["id"] and ad["model_id"] == tiny_model["id"]
    assert ad["rank"] == 8 and ad["alpha"] == 16 and "q_proj" in ad["target_modules"]
    assert ad["sha256"] == ad["files"]["adapter_model.safetensors"] and ad["size_bytes"] > 0
    assert ad["base_model"] == tiny_model["source"]
    listed = client.get("/v1/adapters", params={"job": done_job["id"]}).json()["data"]
    assert [a["id"] for a in listed] == [adapter_id]
    by_model = client.get("/v1/adapters", params={"model": tiny_model["name"]}).json()["data"]
    assert adapter_id in [a["id"] for a in by_model]

    r = client.get(ad["download_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    import base64
    import hashlib

    digest = hashlib.sha256(r.content).hexdigest()
    assert digest == ad["archive_sha256"]
    assert r.headers["digest"] == "sha-256=" + base64.b64encode(bytes.fromhex(digest)).decode()
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        names = tar.getnames()
        assert {f"{adapter_id}/adapter_config.json", f"{adapter_id}/adapter_model.safetensors"} <= set(names)
        assert all(n == adapter_id or n.startswith(f"{adapter_id}/") for n in names), names
        # The safe "data" filter exists from Python 3.11.4 (Debian's 3.11.2 lacks it); the names were
        # just checked to stay inside one folder, so a plain extract is safe there.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path, **safe)
    folder = tmp_path / adapter_id
    assert hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest() == ad["sha256"]

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model["source"])
    before = {k: v.clone() for k, v in base.state_dict().items()}
    peft_model = PeftModel.from_pretrained(base, str(folder))
    lora = [n for n, _ in peft_model.named_parameters() if "lora_B" in n]
    assert lora and any(p.abs().sum() > 0 for n, p in peft_model.named_parameters() if "lora_B" in n)
    merged = peft_model.merge_and_unload()
    changed = [k for k, v in merged.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert changed  # the adapter really changes the base weights


def test_memo_audit_with_wait(client, worker, tiny_model, tiny_facts, done_job):
    r = client.post("/v1/memo", params={"wait": 60},
                    json={"model": tiny_model["id"], "facts": tiny_facts[:2], "max_new_tokens": 48})
    assert r.status_code in (200, 202), r.text
    audit = r.json() if r.status_code == 200 else wait_status(client, f"/v1/memo/{r.json()['id']}", {"succeeded"})
    assert audit["status"] == "succeeded", audit["error"]
    res = audit["result"]
    assert len(res["facts"]) == 2 and all(0 <= f["memo"] <= 1 for f in res["facts"])
    assert res["mean"] == pytest.approx(sum(f["memo"] for f in res["facts"]) / 2)
    # the job's own before-number used the same MEMO settings, so the audit reproduces it
    assert res["mean"] == pytest.approx(done_job["result"]["forget"]["memo_before"], abs=1e-6)

    # audit the produced adapter: the forget facts score lower than on the base model
    adapter_id = done_job["result"]["adapter_id"]
    r2 = client.post("/v1/memo", params={"wait": 60},
                     json={"adapter": adapter_id, "facts": tiny_facts[:2], "max_new_tokens": 48})
    after = r2.json() if r2.status_code == 200 else wait_status(client, f"/v1/memo/{r2.json()['id']}", {"succeeded"})
    assert after["status"] == "succeeded" and after["adapter_id"] == adapter_id
    assert after["model_id"] == tiny_model["id"]
    assert after["result"]["mean"] == pytest.approx(done_job["result"]["forget"]["memo_after"], abs=1e-6)
    assert after["result"]["mean"] < res["mean"]


def test_cancel_running_job(client, worker, tiny_model, tiny_facts):
    r = client.post("/v1/unlearn", json={
        "model": tiny_model["name"], "facts": tiny_facts[:2], "inverter": {"kind": "rule", "n": 2},
        "selection": {"k": 1, "rows_per_qa": 1}, "finetune": {**FINETUNE, "max_steps": 100000}, "memo": MEMO})
    job_id = r.json()["id"]
    wait_for(lambda: (client.get(f"/v1/unlearn/{job_id}").json().get("progress") or {}).get("stage") == "finetune",
             240, "the job to reach finetune")
    c = client.post(f"/v1/unlearn/{job_id}/cancel")
    assert c.status_code == 200 and c.json()["status"] in ("cancelling", "cancelled")
    assert c.json()["cancelling_at"]
    job = wait_status(client, f"/v1/unlearn/{job_id}", {"cancelled", "succeeded", "failed", "crashed"}, 120)
    assert job["status"] == "cancelled" and job["cancelling_at"] and job["cancelled_at"]
    assert job["result"] is None and job["error"] is None
    events = client.get(f"/v1/unlearn/{job_id}/events", params={"limit": 1000}).json()["data"]
    statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "cancelling", "cancelled"]
    problem(client.post(f"/v1/unlearn/{done_job_id(client)}/cancel"), 409, "not_cancellable")
    assert client.get("/v1/adapters", params={"job": job_id}).json()["data"] == []


def done_job_id(client) -> str:
    return client.get("/v1/unlearn", params={"status": "succeeded", "limit": 1}).json()["data"][0]["id"]


def test_failed_job_reports_engine_error_code(client, worker, tiny_model, tiny_facts):
    # gd needs retain facts: the API refuses at once (the engine would raise ConfigError later)
    body = {"model": tiny_model["name"], "facts": tiny_facts[:1], "method": "gd",
            "finetune": {**FINETUNE, "max_steps": 2}, "memo": MEMO}
    err = problem(client.post("/v1/unlearn", json=body), 422, "validation_error")
    assert "retain" in err["detail"]
    # what only the worker can find out fails the job with the engine's code: here the configured
    # inverter endpoint rejects every call (its answer stays out of the error)
    r = client.post("/v1/unlearn", json={**body, "method": "meow", "inverter": {
        "kind": "openai", "endpoint": "probe", "model": "m", "n": 2, "max_retries": 0}, "selection": {"k": 1}})
    assert r.status_code == 202, r.text
    job = wait_status(client, f"/v1/unlearn/{r.json()['id']}", {"failed", "succeeded", "crashed"})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "inverter_failed" and job["error"]["message"].startswith("the inverter endpoint")

