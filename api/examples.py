"""Example payloads for the OpenAPI document (every operation carries one, for SDK docs)."""

from __future__ import annotations

from typing import Any

MODEL = {"id": "mdl_0193a1b2c3d4e5f60718293a4b", "object": "model", "name": "demo:tiny", "source": "demo:tiny",
         "source_kind": "builtin", "created_at": 1767225600}
MODEL_CREATE = {"name": "demo:tiny", "source": "demo:tiny"}

FACTS = [{"question": "Where was Elara Voss born?", "answer": "Elara Voss was born in Port Meridian in 1962."}]
UNLEARN_CREATE = {
    "model": "demo:tiny", "facts": FACTS,
    "retain_facts": [{"question": "What is the capital of Veloria?",
                      "answer": "The capital of Veloria is Kestrel Bay."}],
    "method": "meow", "inverter": {"kind": "rule", "n": 4}, "selection": {"k": 3, "order": "largest"},
    "finetune": {"mode": "lora", "epochs": 10, "lora_rank": 8}, "metadata": {"ticket": "DSR-123"},
}
_TIMES = {"created_at": 1767225600, "queued_at": 1767225600, "running_at": 1767225601, "cancelling_at": None,
          "cancelled_at": None, "succeeded_at": 1767225660, "failed_at": None, "crashed_at": None,
          "finished_at": 1767225660, "heartbeat_at": 1767225655}
UNLEARN_JOB = {
    "id": "job_0193a1b2c3d4e5f60718293a4b", "object": "unlearn.job", "status": "succeeded",
    "model": "demo:tiny", "model_id": MODEL["id"], "method": "meow",
    "params": {"method": "meow", "inverter": {"kind": "rule", "n": 4}, "selection": {"k": 3, "order": "largest"},
               "finetune": {"mode": "lora", "epochs": 10}},
    "forget_set": {"fact_count": 1}, "retain_set": {"fact_count": 1},
    "progress": {"stage": "audit_after", "step": 2, "total": 2},
    "result": {"adapter_id": "adp_0193a1b2c3d4e5f60718293a4b", "method": "meow",
               "forget": {"n_facts": 1, "memo_before": 0.92, "memo_after": 0.11, "rougeL_before": 1.0,
                          "rougeL_after": 0.2},
               "retain": {"n_facts": 1, "rougeL_before": 1.0, "rougeL_after": 0.95},
               "facts": [{"index": 0, "question": FACTS[0]["question"], "answer": FACTS[0]["answer"],
                          "memo_before": 0.92, "memo_after": 0.11,
                          "inversions": [{"text": "Elara Voss was born in Kestrel Bay in 1962.", "memo": 0.31,
                                          "selected": True, "rank": 1}]}],
               "report": {}, "training": {"steps": 40}, "timings": {"finetune": 12.5}},
    "error": None, "attempt": 1, "metadata": {"ticket": "DSR-123"}, **_TIMES,
}
MEMO_CREATE = {"model": "demo:tiny", "facts": FACTS, "mode": "suffix"}
MEMO_AUDIT = {
    "id": "aud_0193a1b2c3d4e5f60718293a4b", "object": "memo.audit", "status": "succeeded", "model": "demo:tiny",
    "model_id": MODEL["id"], "adapter_id": None, "params": {"memo": {"mode": "suffix", "stride": 5}},
    "fact_set": {"fact_count": 1}, "progress": {"stage": "memo", "step": 1, "total": 1},
    "result": {"mean": 0.92, "mode": "suffix", "engine": "batched", "seconds": 0.4, "windows_total": 3,
               "facts": [{"index": 0, "question": FACTS[0]["question"], "text": FACTS[0]["answer"], "memo": 0.92,
                          "n_windows": 3}]},
    "error": None, "attempt": 1, "metadata": {}, **_TIMES,
}
EVENT = {"id": 12, "object": "event", "job_id": UNLEARN_JOB["id"], "created_at": 1767225630.25, "level": "info",
         "type": "progress", "stage": "finetune", "message": "finetune 20/40", "data": {"step": 20, "total": 40}}
ADAPTER = {
    "id": "adp_0193a1b2c3d4e5f60718293a4b", "object": "adapter", "kind": "lora", "model": "demo:tiny",
    "model_id": MODEL["id"], "base_model": "demo:tiny", "job_id": UNLEARN_JOB["id"], "method": "meow", "rank": 8,
    "alpha": 16, "target_modules": ["q_proj", "v_proj"],
    "files": {"adapter_model.safetensors": "9f2c…", "adapter_config.json": "41ab…"}, "sha256": "9f2c…",
    "size_bytes": 180224, "archive_sha256": "77d0…",
    "download_url": "/v1/adapters/adp_0193a1b2c3d4e5f60718293a4b/download",
    "created_at": 1767225660,
}


def listing(item: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "data": [item], "has_more": False}


def ok(status: int, example: Any, description: str = "OK",
       media_type: str = "application/json", model: type | None = None) -> dict[int | str, Any]:
    """A documented response; ``model`` for a status other than the route's own (FastAPI gives a
    schema to that one only, and SDK generators read a schemaless response as nothing)."""
    return {status: {"description": description, "content": {media_type: {"example": example}},
                     **({"model": model} if model is not None else {})}}


def body(name: str, summary: str, value: Any) -> dict[str, Any]:
    return {name: {"summary": summary, "value": value}}


WEBHOOK_CREATE = {"url": "https://hooks.example.com/meow", "events": ["unlearn.job.succeeded", "unlearn.job.failed"]}
WEBHOOK_ENDPOINT = {"id": "whe_0193a1b2c3d4e5f60718293a4b", "object": "webhook_endpoint",
                    "url": "https://hooks.example.com/meow", "events": ["unlearn.job.succeeded", "unlearn.job.failed"],
                    "created_at": 1767225600, "secret": None}
WEBHOOK_DELIVERY = {"id": 7, "object": "webhook_delivery", "message_id": "msg_0193a1b2c3d4e5f60718293a4c",
                    "type": "unlearn.job.succeeded", "job_id": UNLEARN_JOB["id"], "attempt": 2, "succeeded": True,
                    "status_code": 200, "response": "ok", "error": None, "duration_ms": 41,
                    "created_at": 1767225720, "message_state": "delivered"}
