"""Unlearn jobs and MEMO audits through the API with no worker on the queue (jobs stay queued):
validation, limits, cancel of queued jobs, events (JSON and SSE), listing, broker failures."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from conftest import api_client, problem


@pytest.fixture(scope="module")
def idle(settings) -> Any:
    """A client whose queue no worker consumes, with small limits to test them."""
    s = settings.model_copy(update={"queue": f"meow-idle-{secrets.token_hex(4)}", "max_facts": 3,
                                    "max_text_chars": 100, "max_body_bytes": 20_000, "max_wait_s": 2})
    with api_client(s) as c:
        yield c


@pytest.fixture(scope="module")
def model(idle) -> dict[str, Any]:
    r = idle.post("/v1/models", json={"name": f"idle-{secrets.token_hex(3)}", "source": "demo:tiny"})
    assert r.status_code == 201
    return r.json()


FACTS = [{"question": "Where was Elara Voss born?", "answer": "Elara Voss was born in Port Meridian."},
         {"question": "What does Tomas Quill write?", "answer": "Tomas Quill writes gothic mystery novels.",
          "id": "q1"}]


def _job(idle, model, **extra) -> Any:
    return idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS, **extra})


def test_submit_get_list_unlearn(idle, model):
    r = _job(idle, model, retain_facts=FACTS[:1], selection={"k": 2, "order": "smallest"},
             finetune={"mode": "lora", "max_steps": 5}, metadata={"ticket": "DSR-1"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["id"].startswith("job_") and job["object"] == "unlearn.job"
    assert r.headers["location"] == f"/v1/unlearn/{job['id']}"
    assert job["status"] == "queued" and job["queued_at"] and job["running_at"] is None
    assert job["forget_set"] == {"fact_count": 2, "sha256": None}  # digests once the job ends and is purged
    assert job["retain_set"] == {"fact_count": 1, "sha256": None}
    assert job["params"]["selection"]["k"] == 2 and job["params"]["finetune"]["max_steps"] == 5
    assert job["params"]["inverter"]["kind"] == "rule"  # engine defaults are filled in
    assert job["model_id"] == model["id"] and job["metadata"] == {"ticket": "DSR-1"}
    assert job["result"] is None and job["error"] is None and job["progress"] is None
    assert idle.get(f"/v1/unlearn/{job['id']}").json() == job
    listed = idle.get("/v1/unlearn", params={"model": model["name"], "status": "queued", "limit": 100}).json()
    assert job["id"] in [j["id"] for j in listed["data"]]
    assert all(j["status"] == "queued" for j in listed["data"])
    none = idle.get("/v1/unlearn", params={"model": model["name"], "status": "succeeded"}).json()
    assert none["data"] == [] and none["has_more"] is False
    problem(idle.get("/v1/unlearn", params={"status": "bogus"}), 422, "validation_error")
    problem(idle.get("/v1/unlearn/job_nope"), 404, "not_found")
    problem(idle.get(f"/v1/memo/{job['id']}"), 404, "not_found")  # a job id is not an audit id


def test_hf_inverter_model_resolves_to_registered_source(idle, model):
    job = _job(idle, model, inverter={"kind": "hf", "model": model["name"]}).json()
    assert job["params"]["inverter"]["model"] == model["source"]
    idle.post(f"/v1/unlearn/{job['id']}/cancel")


def test_rule_inverter_guide_model_is_target_or_registered(idle, model):
    job = _job(idle, model, inverter={"kind": "rule", "model": "target"}).json()
    assert job["params"]["inverter"]["model"] == "target"
    idle.post(f"/v1/unlearn/{job['id']}/cancel")
    job = _job(idle, model, inverter={"kind": "rule", "model": model["name"]}).json()
    assert job["params"]["inverter"]["model"] == model["source"]
    idle.post(f"/v1/unlearn/{job['id']}/cancel")


def test_unlearn_list_pagination(idle, model):
    ids = [_job(idle, model).json()["id"] for _ in range(3)]
    p1 = idle.get("/v1/unlearn", params={"model": model["id"], "limit": 2}).json()
    assert [j["id"] for j in p1["data"]] == ids[::-1][:2] and p1["has_more"]
    p2 = idle.get("/v1/unlearn", params={"model": model["id"], "limit": 2, "after": p1["data"][-1]["id"]}).json()
    assert p2["data"][0]["id"] == ids[0]


@pytest.mark.parametrize(("body", "loc", "needle"), [
    ({"model": "no-such-model"}, "body/model", "register it"),
    ({"method": "forget-it"}, "body/method", "Input should be"),
    ({"selection": {"k": 5, "rows_per_qa": 4}}, "body/selection", "must not exceed rows_per_qa"),
    ({"finetune": {"mode": "qlora"}}, "body/finetune/mode", "'lora' or 'full'"),
    ({"finetune": {"max_steps": 0}}, "body/finetune/max_steps", "greater than or equal to 1"),
    ({"inverter": {"kind": "magic"}}, "body", "inverter.kind must be one of"),
    ({"inverter": {"kind": "given", "candidates": [["x"]]}}, "body", "one list per fact"),
    ({"inverter": {"kind": "openai", "api_key_env": "MEOW_DATABASE_URL"}}, "body/inverter/api_key_env",
     "never name server environment variables"),
    # the server's key never goes to a URL a request chose
    ({"inverter": {"kind": "openai", "model": "m", "base_url": "https://llm.example/v1"}},
     "body/inverter/base_url", "not a configured inverter endpoint"),
    ({"inverter": {"kind": "openai", "model": "m"}}, "body/inverter", "needs inverter.endpoint"),
    ({"inverter": {"kind": "openai", "model": "m", "endpoint": "nope"}}, "body/inverter/endpoint",
     "no inverter endpoint 'nope'"),
    # an own key may go to a public URL, never to the server's networks
    *[({"inverter": {"kind": "openai", "model": "m", "base_url": url, "api_key": "sk-own"}},
       "body/inverter/base_url", "private, loopback or link-local")
      for url in ("http://127.0.0.1:8000/v1", "http://169.254.169.254/latest", "http://10.1.2.3/v1",
                  "http://[::1]:8000/v1", "http://localhost:9/v1")],
    ({"inverter": {"kind": "openai", "model": "m", "base_url": "ftp://93.184.215.14/v1", "api_key": "k"}},
     "body/inverter/base_url", "http:// or https://"),
    # requests never name worker paths; method parameters are checked before queueing
    ({"method": "idk", "retain_facts": FACTS, "method_params": {"refusals_file": "/etc/passwd"}},
     "body/method_params", "never name worker paths"),
    ({"method": "gd", "method_params": {"retain_coef": 2}}, "body/method_params", "unknown parameter 'retain_coef'"),
    ({"method": "npo", "method_params": {"beta": -1}}, "body/method_params", "beta"),

    ({"inverter": {"kind": "hf", "model": "/etc"}}, "body/inverter/model", "register it"),
    ({"inverter": {"kind": "hf"}}, "body/inverter/model", "needs a registered model"),
    # the rule inverter's guide model is loaded by the worker too: only "target" or a registered model
    ({"inverter": {"kind": "rule", "model": "/etc"}}, "body/inverter/model", "register it"),
    ({"inverter": {"kind": "rule", "model": "zz/tiny"}}, "body/inverter/model", "register it"),
    ({"facts": []}, "body/facts", "at least 1"),
    ({"facts": [{"question": "q?", "answer": "  "}]}, "body/facts/0/answer", "must not be blank"),
    ({"facts": [{"question": "q?"}]}, "body/facts/0/answer", "Field required"),
    ({"facts": FACTS * 2}, "body/facts", "the limit is 3"),
    ({"retain_facts": [{"question": "q?", "answer": "a" * 101}]}, "body/retain_facts/0/answer", "the limit is 100"),
    ({"metadata": {str(i): "v" for i in range(17)}}, "body/metadata", "at most 16"),
    ({"surprise": 1}, "body/surprise", "Extra inputs"),
])
def test_unlearn_validation(idle, model, body, loc, needle):
    payload = {"model": model["name"], "facts": FACTS, **body}
    err = problem(idle.post("/v1/unlearn", json=payload), 422, "validation_error")
    assert err["errors"][0]["loc"] == loc, err
    assert needle in err["detail"], err
    assert err["instance"] == "/v1/unlearn"


def test_body_size_limit(idle, model):
    big = {"model": model["name"], "facts": [{"question": "q?", "answer": "x" * 30_000}]}
    err = problem(idle.post("/v1/unlearn", json=big), 413, "request_too_large")
    assert "20000 bytes" in err["detail"]

    def chunks():  # no Content-Length: counted while streaming
        yield b'{"model": "x", "facts": ['
        for _ in range(300):
            yield b'{"question": "q?", "answer": "' + b"y" * 90 + b'"},'
        yield b"]}"

    problem(idle.post("/v1/unlearn", content=chunks(), headers={"content-type": "application/json"}), 413,
            "request_too_large")


def test_cancel_queued_job_and_events(idle, model):
    job = _job(idle, model).json()
    r = idle.post(f"/v1/unlearn/{job['id']}/cancel")
    assert r.status_code == 200
    cancelled = r.json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] and cancelled["finished_at"]
    again = idle.post(f"/v1/unlearn/{job['id']}/cancel")  # idempotent
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    events = idle.get(f"/v1/unlearn/{job['id']}/events").json()
    assert [e["data"]["status"] for e in events["data"]] == ["queued", "cancelled"]
    assert [e["id"] for e in events["data"]] == sorted(e["id"] for e in events["data"])
    first = events["data"][0]["id"]
    tail = idle.get(f"/v1/unlearn/{job['id']}/events", params={"after": first}).json()
    assert [e["data"]["status"] for e in tail["data"]] == ["cancelled"]
    one = idle.get(f"/v1/unlearn/{job['id']}/events", params={"limit": 1}).json()
    assert len(one["data"]) == 1 and one["has_more"] is True
    problem(idle.post("/v1/unlearn/job_missing/cancel"), 404, "not_found")


def test_events_as_server_sent_events(idle, model):
    job = _job(idle, model).json()
    idle.post(f"/v1/unlearn/{job['id']}/cancel")
    with idle.stream("GET", f"/v1/unlearn/{job['id']}/events", headers={"accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    frames = [f for f in text.split("\n\n") if f.strip()]
    assert frames[0] == "retry: 2000"
    kinds = [line.removeprefix("event: ") for f in frames for line in f.splitlines() if line.startswith("event: ")]
    assert kinds == ["status", "status", "end"]
    datas = [json.loads(line.removeprefix("data: ")) for f in frames[1:3] for line in f.splitlines()
             if line.startswith("data: ")]
    assert [d["data"]["status"] for d in datas] == ["queued", "cancelled"]
    # resume after the first event via Last-Event-ID
    with idle.stream("GET", f"/v1/unlearn/{job['id']}/events",
                     headers={"accept": "text/event-stream", "last-event-id": str(datas[0]["id"])}) as r:
        resumed = "".join(r.iter_text())
    assert resumed.count("event: status") == 1 and "event: end" in resumed


def test_delete_model_refused_while_jobs_use_it(idle):
    m = idle.post("/v1/models", json={"name": f"busy-{secrets.token_hex(3)}", "source": "demo:tiny"}).json()
    job = idle.post("/v1/unlearn", json={"model": m["id"], "facts": FACTS}).json()
    err = problem(idle.delete(f"/v1/models/{m['id']}"), 409, "model_in_use")
    assert job["id"] in err["detail"]
    idle.post(f"/v1/unlearn/{job['id']}/cancel")
    assert idle.delete(f"/v1/models/{m['id']}").status_code == 204
    gone = idle.get(f"/v1/unlearn/{job['id']}").json()  # history survives the model
    assert gone["model_id"] is None and gone["model"] == m["name"]


def test_broker_down_fails_the_job_with_503(settings):
    s = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0", "reaper_interval_s": 0})
    with api_client(s) as c:
        m = c.post("/v1/models", json={"name": f"nb-{secrets.token_hex(3)}", "source": "demo:tiny"}).json()
        err = problem(c.post("/v1/unlearn", json={"model": m["name"], "facts": FACTS}), 503, "broker_unavailable")
        assert err["detail"].count("job_") == 1
        job_id = next(w for w in err["detail"].replace("(", " ").split() if w.startswith("job_"))
        job = c.get(f"/v1/unlearn/{job_id}").json()
        assert job["status"] == "failed" and job["error"]["code"] == "broker_unavailable"
        problem(c.post(f"/v1/unlearn/{job_id}/cancel"), 409, "not_cancellable")


def test_memo_submit_validation_and_cancel(idle, model):
    r = idle.post("/v1/memo", json={"model": model["name"], "facts": FACTS, "mode": "prefix"})
    assert r.status_code == 202, r.text
    audit = r.json()
    assert audit["id"].startswith("aud_") and audit["status"] == "queued" and audit["object"] == "memo.audit"
    assert audit["params"]["memo"]["mode"] == "prefix" and audit["fact_set"] == {"fact_count": 2, "sha256": None}
    assert idle.get(f"/v1/memo/{audit['id']}").json()["id"] == audit["id"]
    assert audit["id"] in [a["id"] for a in idle.get("/v1/memo", params={"model": model["id"]}).json()["data"]]
    waited = idle.post("/v1/memo", params={"wait": 0.5}, json={"model": model["name"], "facts": FACTS})
    assert waited.status_code == 202 and waited.json()["status"] == "queued"  # no worker: still queued
    assert idle.post(f"/v1/memo/{audit['id']}/cancel").json()["status"] == "cancelled"
    events = idle.get(f"/v1/memo/{audit['id']}/events").json()["data"]
    assert [e["data"]["status"] for e in events] == ["queued", "cancelled"]
    err = problem(idle.post("/v1/memo", json={"facts": FACTS}), 422, "validation_error")
    assert "give a model or an adapter" in err["detail"]
    err = problem(idle.post("/v1/memo", json={"adapter": "adp_missing", "facts": FACTS}), 422, "validation_error")
    assert err["errors"][0]["loc"] == "body/adapter"
    err = problem(idle.post("/v1/memo", params={"wait": 5}, json={"model": model["name"], "facts": FACTS}), 422,
                  "validation_error")
    assert err["errors"][0]["loc"] == "query/wait"
    problem(idle.post("/v1/memo", json={"model": model["name"], "facts": FACTS, "mode": "middle"}), 422,
            "validation_error")
    problem(idle.post("/v1/memo", json={"model": model["name"], "facts": FACTS, "stride": 0}), 422,
            "validation_error")


def test_adapters_empty_and_missing(idle):
    body = idle.get("/v1/adapters", params={"model": "idle-nothing"}).json()
    assert body == {"object": "list", "data": [], "has_more": False}
    problem(idle.get("/v1/adapters/adp_missing"), 404, "not_found")
    problem(idle.get("/v1/adapters/adp_missing/download"), 404, "not_found")


def test_inverter_endpoints_by_name_or_own_key(idle, model, settings):
    from service.db import session_scope
    from service.tables import JobRow

    url = settings.inverter_endpoints["probe"].base_url
    named = _job(idle, model, inverter={"kind": "openai", "model": "m", "endpoint": "probe"})
    assert named.status_code == 202, named.text
    inv = named.json()["params"]["inverter"]
    assert inv["endpoint"] == "probe" and inv["base_url"] is None and "api_key_env" not in inv
    assert url not in named.text
    by_url = _job(idle, model, inverter={"kind": "openai", "model": "m", "base_url": url + "/"}).json()
    assert by_url["params"]["inverter"]["endpoint"] == "probe"  # the configured URL is that endpoint
    # an own key to a public address: accepted, never echoed, held only until the job ends
    own = _job(idle, model, inverter={"kind": "openai", "model": "m", "base_url": "https://93.184.215.14/v1",
                                      "api_key": "sk-own-secret-1"})
    assert own.status_code == 202, own.text
    assert "sk-own-secret-1" not in own.text
    assert "sk-own-secret-1" not in idle.get(f"/v1/unlearn/{own.json()['id']}").text

    with session_scope(settings.db_url) as s:
        assert s.get(JobRow, own.json()["id"]).inverter_api_key == "sk-own-secret-1"
    assert idle.post(f"/v1/unlearn/{own.json()['id']}/cancel").json()["status"] == "cancelled"
    with session_scope(settings.db_url) as s:
        assert s.get(JobRow, own.json()["id"]).inverter_api_key is None
    for job in (named.json(), by_url):
        idle.post(f"/v1/unlearn/{job['id']}/cancel")


def test_production_settings_refuse_auth_off(tmp_path):
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValidationError, match="MEOW_AUTH=off is for local use only"):
        Settings(database_url="postgresql://u@db/meow", auth="off")
    assert Settings(database_url=f"sqlite:///{tmp_path}/x.db", auth="off").auth == "off"
    assert Settings(data_dir=tmp_path).auth == "required"  # the default is safe


def test_api_refuses_to_start_without_a_secret_in_production():
    from api.main import create_app
    from service.settings import Settings

    with pytest.raises(ValueError, match="MEOW_SECRET_KEY must be set"):
        create_app(Settings(database_url="postgresql://u@db/meow", auth="required"))
