"""Webhooks (``service.webhooks``) on the real Postgres, Redis and a prefork worker: a receiver this
test starts on 127.0.0.1 gets a job's state changes signed as Standard Webhooks (checked with the
``standardwebhooks`` verifier), a receiver that answers 500 first is retried with the same
``webhook-id`` and both attempts are listed; private targets, unknown events, other tenants and
keys without the scope are refused."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import api_client, problem, wait_for, wait_status
from standardwebhooks.webhooks import Webhook

from service.keys import SCOPES

pytestmark = pytest.mark.slow

FACT = {"question": "Which harbour does Gorsemond Quiltavy sail from?",
        "answer": "Gorsemond Quiltavy sails from the harbour of Brindlecove every spring."}
CANDIDATES = [["Gorsemond Quiltavy sails from the harbour of Tessaly every spring.",
               "Gorsemond Quiltavy sails from the harbour of Orrinmouth every spring."]]


class Receiver:
    """An HTTP server recording every POST; ``/flaky`` answers 500 to its first call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
                first = sum(c["path"] == self.path for c in receiver.calls) == 1
                code = 500 if self.path == "/flaky" and first else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"boom" if code == 500 else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_deliveries_are_signed_retried_and_recorded(settings, receiver: Receiver, worker, tiny_model_dir):
    """The test settings allow 127.0.0.1 (``MEOW_WEBHOOK_ALLOW``) and retry after 0.5 s."""
    with api_client(settings, f"hooks-{secrets.token_hex(3)}") as c:
        every = c.post("/v1/webhook-endpoints", json={"url": receiver.url + "/ok"})
        assert every.status_code == 201, every.text
        ep = every.json()
        assert ep["secret"].startswith("whsec_") and set(ep["events"]) >= {"unlearn.job.queued",
                                                                           "unlearn.job.succeeded"}
        assert every.headers["location"] == f"/v1/webhook-endpoints/{ep['id']}"
        flaky = c.post("/v1/webhook-endpoints", json={"url": receiver.url + "/flaky",
                                                      "events": ["unlearn.job.succeeded"]}).json()
        listed = c.get("/v1/webhook-endpoints").json()["data"]
        assert {e["id"] for e in listed} == {ep["id"], flaky["id"]} and all(e["secret"] is None for e in listed)
        assert c.get(f"/v1/webhook-endpoints/{ep['id']}").json()["url"] == receiver.url + "/ok"

        assert c.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)}).status_code == 201
        r = c.post("/v1/unlearn", json={
            "model": "tiny", "facts": [FACT], "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
            "selection": {"k": 1, "rows_per_qa": 1}, "memo": {"max_new_tokens": 16},
            "finetune": {"mode": "lora", "max_steps": 4, "lr": 1e-3, "lora_rank": 4, "batch_size": 4}})
        assert r.status_code == 202, r.text
        job = wait_status(c, f"/v1/unlearn/{r.json()['id']}", {"succeeded", "failed", "crashed", "cancelled"})
        assert job["status"] == "succeeded", job["error"]

        def types(path: str) -> list[str]:
            return [json.loads(call["body"])["type"] for call in receiver.at(path)]

        wait_for(lambda: "unlearn.job.succeeded" in types("/ok") and len(receiver.at("/flaky")) >= 2, 30,
                 "deliveries to both receivers")
        assert types("/ok") == ["unlearn.job.queued", "unlearn.job.running", "unlearn.job.succeeded"]
        for call in receiver.at("/ok"):
            payload = Webhook(ep["secret"]).verify(call["body"], call["headers"])  # raises on a bad signature
            assert payload["data"]["id"] == job["id"] and payload["data"]["object"] == "unlearn.job"
        last = json.loads(receiver.at("/ok")[-1]["body"])
        assert last["data"] == {"id": job["id"], "object": "unlearn.job", "status": "succeeded",
                                "verdict": job["result"]["verdict"]}
        with pytest.raises(Exception, match="signature"):  # another endpoint's secret does not verify
            Webhook(flaky["secret"]).verify(receiver.at("/ok")[0]["body"], receiver.at("/ok")[0]["headers"])
        assert not any(w in call["body"] for call in receiver.calls for w in ("Quiltavy", "Brindlecove", "Tessaly"))

        first, second = receiver.at("/flaky")[:2]
        assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]  # a retry, not a new event
        Webhook(flaky["secret"]).verify(second["body"], second["headers"])
        deliveries = wait_for(lambda: (d := c.get(f"/v1/webhook-endpoints/{flaky['id']}/deliveries").json()["data"])
                              and len(d) == 2 and d, 10, "both attempts recorded")
        assert [(d["attempt"], d["succeeded"], d["status_code"], d["response"]) for d in deliveries] == [
            (2, True, 200, "ok"), (1, False, 500, "boom")]
        assert {d["message_id"] for d in deliveries} == {first["headers"]["webhook-id"]}
        assert all(d["message_state"] == "delivered" and d["job_id"] == job["id"] for d in deliveries)
        ok_deliveries = c.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries").json()["data"]
        assert len(ok_deliveries) == 3 and all(d["succeeded"] and d["attempt"] == 1 for d in ok_deliveries)

        assert c.delete(f"/v1/webhook-endpoints/{flaky['id']}").status_code == 204
        problem(c.get(f"/v1/webhook-endpoints/{flaky['id']}"), 404, "not_found")
        problem(c.get(f"/v1/webhook-endpoints/{flaky['id']}/deliveries"), 404, "not_found")


def test_refused_targets_events_tenants_and_scopes(settings, receiver: Receiver):
    strict = settings.model_copy(update={"webhook_allow": []})
    with api_client(strict, f"hooks-{secrets.token_hex(3)}") as c:  # no MEOW_WEBHOOK_ALLOW
        for url in ("http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://192.168.0.10:8080/",
                    "http://[::1]:8000/", "http://localhost:9/", receiver.url + "/ok"):
            body = problem(c.post("/v1/webhook-endpoints", json={"url": url}), 422, "validation_error")
            assert "MEOW_WEBHOOK_ALLOW" in body["detail"], body
        problem(c.post("/v1/webhook-endpoints", json={"url": "ftp://example.com/x"}), 422, "validation_error")
    with api_client(settings, f"hooks-{secrets.token_hex(3)}") as a, \
            api_client(settings, f"hooks-{secrets.token_hex(3)}") as b:
        body = problem(a.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["unlearn.job.done"]}),
                       422, "validation_error")
        assert "unlearn.job.done" in body["detail"]
        problem(a.post("/v1/webhook-endpoints", json={"url": "http://10.1.2.3/hook"}), 422, "validation_error")
        ep = a.post("/v1/webhook-endpoints", json={"url": receiver.url + "/ok"}).json()
        problem(b.get(f"/v1/webhook-endpoints/{ep['id']}"), 404, "not_found")
        problem(b.delete(f"/v1/webhook-endpoints/{ep['id']}"), 404, "not_found")
        assert b.get("/v1/webhook-endpoints").json()["data"] == []
    without = [s for s in SCOPES if s not in ("webhooks:write", "admin")]
    with api_client(settings, f"hooks-{secrets.token_hex(3)}", without) as c:
        problem(c.get("/v1/webhook-endpoints"), 403, "forbidden")


def test_meow_serve_sqlite_delivers_and_counts(tmp_path, receiver: Receiver):
    """The embedded mode (SQLite database and broker, auth off): the same outbox, sender and metrics."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from service import migrate
    from service.settings import Settings

    local = Settings(data_dir=tmp_path, auth="off", reaper_interval_s=0, webhook_allow=["127.0.0.1"],
                     webhook_poll_s=0.2, queue=f"meow-test-idle-{secrets.token_hex(3)}")
    migrate.upgrade(local.db_url)
    with TestClient(create_app(local)) as c:
        ep = c.post("/v1/webhook-endpoints", json={"url": receiver.url + "/local",
                                                   "events": ["memo.audit.queued", "memo.audit.cancelled"]}).json()
        assert c.post("/v1/models", json={"name": "m", "source": "demo:tiny"}).status_code == 201
        r = c.post("/v1/memo", json={"model": "m", "facts": [FACT], "max_new_tokens": 4})  # no worker: stays queued
        assert r.status_code == 202, r.text
        audit = r.json()["id"]
        assert c.post(f"/v1/memo/{audit}/cancel").json()["status"] == "cancelled"
        calls = wait_for(lambda: len(receiver.at("/local")) >= 2 and receiver.at("/local"), 15, "two deliveries")
        payloads = [Webhook(ep["secret"]).verify(call["body"], call["headers"]) for call in calls]
        assert [(p["type"], p["data"]["id"]) for p in payloads] == [("memo.audit.queued", audit),
                                                                     ("memo.audit.cancelled", audit)]
        metrics = c.get("/metrics").text
        assert 'meow_jobs{kind="memo",status="cancelled"} 1.0' in metrics
        assert f'meow_queue_depth{{queue="{local.queue}"}} 0.0' in metrics  # SQLite broker: queued jobs
