"""``Idempotency-Key`` on the creating POSTs, against the real Postgres (jobs stay queued: no worker
consumes this module's queue)."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import pytest
from conftest import api_client, make_key, problem

FACTS = [{"question": "Where was Elara Voss born?", "answer": "Elara Voss was born in Port Meridian."}]


@pytest.fixture(scope="module")
def idle_settings(settings) -> Any:
    return settings.model_copy(update={"queue": f"meow-idem-{secrets.token_hex(4)}", "max_wait_s": 3})


@pytest.fixture(scope="module")
def idle(idle_settings) -> Any:
    with api_client(idle_settings, "idem-a") as c:
        yield c


@pytest.fixture(scope="module")
def model(idle) -> dict[str, Any]:
    r = idle.post("/v1/models", json={"name": f"idem-{secrets.token_hex(3)}", "source": "demo:tiny"})
    assert r.status_code == 201
    return r.json()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{secrets.token_hex(8)}"}


def _count(client, model) -> int:
    return len(client.get("/v1/unlearn", params={"model": model["id"], "limit": 100}).json()["data"])


def test_same_key_same_body_replays_the_first_response(idle, model):
    key = _key()
    body = {"model": model["name"], "facts": FACTS, "metadata": {"n": "1"}}
    first = idle.post("/v1/unlearn", json=body, headers=key)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    n = _count(idle, model)
    # the same request again, its JSON keys in another order
    again = idle.post("/v1/unlearn", json=dict(reversed(list(body.items()))), headers=key)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert _count(idle, model) == n  # no second job
    # without a key every POST creates
    assert idle.post("/v1/unlearn", json=body).json()["id"] != first.json()["id"]
    # models too
    mkey, mbody = _key(), {"name": f"idem-m-{secrets.token_hex(3)}", "source": "demo:tiny"}
    m1, m2 = idle.post("/v1/models", json=mbody, headers=mkey), idle.post("/v1/models", json=mbody, headers=mkey)
    assert m1.status_code == m2.status_code == 201 and m1.json()["id"] == m2.json()["id"]


def test_same_key_other_body_is_422(idle, model):
    key = _key()
    assert idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS}, headers=key).status_code == 202
    err = problem(idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS * 2}, headers=key), 422,
                  "idempotency_key_reused")
    assert "different request" in err["detail"]
    # another endpoint is another request too
    problem(idle.post("/v1/memo", json={"model": model["name"], "facts": FACTS}, headers=key), 422,
            "idempotency_key_reused")


def test_in_flight_is_409(idle, model):
    """The first request waits (?wait=) for an audit no worker runs; the retry arrives meanwhile."""
    key = _key()
    body = {"model": model["name"], "facts": FACTS}
    out: dict[str, Any] = {}

    def first() -> None:
        out["r"] = idle.post("/v1/memo", params={"wait": 2}, json=body, headers=key)

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.8)
    r = idle.post("/v1/memo", params={"wait": 2}, json=body, headers=key)
    t.join()
    problem(r, 409, "idempotency_in_flight")
    assert r.headers["retry-after"] == "1"
    assert out["r"].status_code == 202
    replay = idle.post("/v1/memo", params={"wait": 2}, json=body, headers=key)  # finished now: replayed at once
    assert replay.json()["id"] == out["r"].json()["id"] and replay.headers["idempotent-replayed"] == "true"


def test_keys_are_per_tenant(idle, idle_settings, model):
    key = _key()
    body = {"name": f"idem-t-{secrets.token_hex(3)}", "source": "demo:tiny"}
    mine = idle.post("/v1/models", json=body, headers=key)
    with api_client(idle_settings, "idem-b") as other:
        theirs = other.post("/v1/models", json=body, headers=key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"] and "idempotent-replayed" not in theirs.headers


def test_failed_requests_store_nothing_and_keys_expire(idle_settings):
    short = idle_settings.model_copy(update={"idempotency_ttl_s": 1.5})
    with api_client(short, "idem-ttl") as idle:
        key = _key()
        name = f"late-{secrets.token_hex(3)}"
        body = {"model": name, "facts": FACTS}
        problem(idle.post("/v1/unlearn", json=body, headers=key), 422, "validation_error")  # no such model yet
        assert idle.post("/v1/models", json={"name": name, "source": "demo:tiny"}).status_code == 201
        first = idle.post("/v1/unlearn", json=body, headers=key)
        assert first.status_code == 202 and "idempotent-replayed" not in first.headers  # ran again, succeeded
        problem(idle.post("/v1/unlearn", json={**body, "metadata": {"x": "y"}}, headers=key), 422,
                "idempotency_key_reused")
        time.sleep(short.idempotency_ttl_s + 0.5)
        later = idle.post("/v1/unlearn", json={**body, "metadata": {"x": "y"}}, headers=key)  # expired: new request
        assert later.status_code == 202 and later.json()["id"] != first.json()["id"]



def test_idempotency_key_header_is_validated(idle, model):
    problem(idle.post("/v1/models", json={"name": "x", "source": "demo:tiny"}, headers={"Idempotency-Key": "k" * 300}),
            422, "validation_error")


def test_revoked_key_cannot_replay(idle_settings, model):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from service.db import session_scope
    from service.keys import revoke_key

    key_id, key = make_key(idle_settings, "idem-a")
    with TestClient(create_app(idle_settings), headers={"Authorization": f"Bearer {key}"}) as c:
        idem = _key()
        assert c.post("/v1/memo", json={"model": model["id"], "facts": FACTS}, headers=idem).status_code == 202
        with session_scope(idle_settings.db_url) as s:
            assert revoke_key(s, key_id)
        problem(c.post("/v1/memo", json={"model": model["id"], "facts": FACTS}, headers=idem), 401, "unauthorized")


def test_expired_records_are_purged(idle_settings, model):
    from api import repository as repo
    from api.idempotency import purge_expired
    from service.db import session_scope

    short = idle_settings.model_copy(update={"idempotency_ttl_s": 0.5})
    with api_client(short, "idem-purge") as c:
        key = _key()
        assert c.post("/v1/models", json={"name": f"p-{secrets.token_hex(3)}", "source": "demo:tiny"},
                      headers=key).status_code == 201
    with session_scope(short.db_url) as s:
        assert repo.idempotency_record(s, "idem-purge", key["Idempotency-Key"]) is not None
        purge_expired(s)  # not yet expired: kept
        assert repo.idempotency_record(s, "idem-purge", key["Idempotency-Key"]) is not None
    time.sleep(0.7)
    with session_scope(short.db_url) as s:
        # the module's open API app runs the same purge from its reaper every second, so it may
        # have deleted the record first: what is checked is that it is gone, by one or the other
        purge_expired(s)
    with session_scope(short.db_url) as s:
        assert repo.idempotency_record(s, "idem-purge", key["Idempotency-Key"]) is None
