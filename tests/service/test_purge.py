"""Forget-data purge (``service.purge``): once a job ends, the text of its facts is nowhere.

A job with distinctive strings in every place fact text goes (questions, answers, sensitive spans,
paraphrases, retain facts, given inversions) runs on the real Postgres, Redis and a prefork worker;
afterwards every table of the database (rows cast to text), every Redis key of the test database,
the artifact folder (archives unpacked) and the worker's and API's logs are scanned for those
strings, and the job shows the salted digests, the scores and what was purged. The same holds for
``meow serve`` (SQLite, the SQLite broker), scanning the raw database files, WAL included.
"""

from __future__ import annotations

import io
import logging
import secrets
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import (
    BROKER_URL,
    api_client,
    create_database,
    drop_database,
    make_settings,
    start_worker,
    wait_for,
    wait_status,
)
from sqlalchemy import inspect, text

from service import migrate
from service.db import get_engine, session_scope
from service.purge import fact_digest, purge_due
from service.tables import JobRow, ModelRow

pytestmark = pytest.mark.slow

TERMINAL = {"succeeded", "failed", "crashed", "cancelled"}
FACTS = [{"question": "Where does Vexilla Trombonetti keep her ledger?",
          "answer": "Vexilla Trombonetti keeps her ledger in the Crumblewick Vault under Ostmere.",
          "sensitive": ["Crumblewick Vault"],
          "paraphrases": ["In which place is the Trombonetti ledger stored?"]}]
RETAIN = [{"question": "What does Pellucidor Hanfwright sell?",
           "answer": "Pellucidor Hanfwright sells glass harmonicas in Fennimore Lagoon."}]
CANDIDATES = [["Vexilla Trombonetti keeps her ledger in the Halloran Bastion under Quillby.",
               "Vexilla Trombonetti keeps her ledger in the Marrowgate Depot under Ysolde."]]
#: strings that occur only in this module's request: none may survive the job
MARKERS = ["Trombonetti", "Crumblewick", "Ostmere", "Pellucidor", "Hanfwright", "Fennimore", "Halloran",
           "Quillby", "Marrowgate", "Ysolde"]
BODY = {"facts": FACTS, "retain_facts": RETAIN, "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
        "selection": {"k": 1, "rows_per_qa": 1}, "memo": {"max_new_tokens": 16},
        "finetune": {"mode": "lora", "max_steps": 4, "lr": 1e-3, "lora_rank": 4, "batch_size": 4}}


def found(blob: str | bytes) -> list[str]:
    low = (blob.decode(errors="replace") if isinstance(blob, bytes) else blob).casefold()
    return [m for m in MARKERS if m.casefold() in low]


def scan_files(root: Path) -> dict[str, list[str]]:
    """Markers per file under ``root``; ``.tar.gz`` archives are unpacked (compression hides text)."""
    hits: dict[str, list[str]] = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        data = f.read_bytes()
        if f.name.endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                data = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
        if hit := found(data):
            hits[str(f)] = hit
    return hits


def redis_dump(client: redis.Redis) -> str:
    out = []
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        value: Any = b""
        if kind == b"string":
            value = client.get(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1)
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


def assert_purged_job(job: dict[str, Any]) -> None:
    """The job keeps digests, scores and counts; every text is gone and the purge says so."""
    purge = job["purge"]
    assert purge["purged_at"] and purge["purged_at"] >= job["finished_at"], purge
    assert "facts" in purge["purged"] and "retain_facts" in purge["purged"], purge
    assert "params.inverter.candidates" in purge["purged"], purge
    salt = purge["fact_salt"]
    assert job["forget_set"] == {"fact_count": 1, "sha256": [fact_digest(salt, FACTS[0])]}
    assert job["retain_set"]["sha256"] == [fact_digest(salt, RETAIN[0])]
    assert job["params"]["inverter"]["candidates"] is None
    if job["status"] == "succeeded":
        result = job["result"]
        assert result["verdict"] in ("forgotten", "partial", "not_forgotten") and result["verdict_reason"] is None
        assert isinstance(result["forget"]["leak_rate_after"], float)
        fact = result["facts"][0]
        assert fact["question"] is None and fact["answer"] is None and fact["generation_after"] is None
        assert isinstance(fact["memo_before"], float) and fact["probes"], fact
        assert all(p["prompt"] is None and p["after"] is None for p in fact["probes"])
        refs = {f"#{i}" for i in range(len(fact["spans"]))}
        assert all(set(p["leaked_before"] + p["leaked_after"]) <= refs for p in fact["probes"]), fact["probes"]
        assert all(s["text"] is None and s["kind"] for s in fact["spans"])
        assert all(i["text"] is None and isinstance(i["memo"], float) for i in fact["inversions"])


def test_postgres_redis_worker_leave_no_fact_text(tmp_path: Path, model_root: Path, tiny_model_dir: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    url = create_database("meow_purge")  # its own database: every row in it is this test's
    try:
        migrate.upgrade(url)
        settings = make_settings(url, tmp_path, model_root)
        worker = start_worker(settings, tmp_path / "worker.log", name="purge")
        try:
            caplog.set_level(logging.DEBUG)
            with api_client(settings, "purge-tenant") as c:
                assert c.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)}).status_code == 201
                r = c.post("/v1/unlearn", json={"model": "tiny", **BODY},
                           headers={"Idempotency-Key": secrets.token_hex(8)})
                assert r.status_code == 202, r.text
                job_id = r.json()["id"]
                job = wait_status(c, f"/v1/unlearn/{job_id}", TERMINAL)
                assert job["status"] == "succeeded", job["error"]
                assert_purged_job(job)
                adapter = job["result"]["adapter_id"]
                assert c.get(f"/v1/adapters/{adapter}/download").status_code == 200  # the artifact remains
                events = c.get(f"/v1/unlearn/{job_id}/events").json()["data"]
                assert any(e["stage"] == "verdict" for e in events)
        finally:
            worker.stop()
        logs = worker.text() + "\n".join(r.getMessage() for r in caplog.records)

        engine = get_engine(url)
        with engine.connect() as conn:
            tables = inspect(engine).get_table_names()
            dump = "\n".join(str(row[0]) for t in tables
                             for row in conn.execute(text(f'SELECT CAST(t AS text) FROM "{t}" AS t')))
        assert job_id in dump and "sha256" in dump  # the scan reads the rows it checks
        assert found(dump) == [], [line for line in dump.splitlines() if found(line)][:3]

        broker = redis.Redis.from_url(BROKER_URL)
        dump = redis_dump(broker)
        assert settings.queue in dump  # kombu's binding of the test queue: the scan sees the broker
        assert found(dump) == []
        assert scan_files(settings.artifacts) == {}
        assert list((settings.artifacts / "adapters").iterdir())  # ...and it did scan an adapter
        assert found(logs) == [], [line for line in logs.splitlines() if found(line)][:3]
    finally:
        drop_database(url)


def test_meow_serve_sqlite_files_hold_no_fact_text(tmp_path: Path, model_root: Path, tiny_model_dir: Path) -> None:
    from test_embedded import _env, serving

    data = tmp_path / "data"
    env = _env(model_root, data)
    with serving(tmp_path, env) as (base, log, _proc), httpx.Client(base_url=base, timeout=30) as c:
        assert c.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)}).status_code == 201
        r = c.post("/v1/unlearn", json={"model": "tiny", **BODY})
        assert r.status_code == 202, r.text
        job = wait_for(lambda: (j := c.get(f"/v1/unlearn/{r.json()['id']}").json())["status"] in TERMINAL and j,
                       300, "the job to end")
        assert job["status"] == "succeeded", job["error"]
        assert_purged_job(job)
        files = {p.name: p for p in data.iterdir() if p.is_file()}
        assert "meow.db" in files and "meow.db.broker.db" in files
        # raw bytes of the database, its WAL and the broker: free pages and old frames included
        hits = {name: found(p.read_bytes()) for name, p in files.items()}
        assert all(not h for h in hits.values()), hits
        assert scan_files(data / "artifacts") == {}
        assert found(log.read_text(errors="replace")) == []


def test_retention_delays_the_purge(tmp_path: Path) -> None:
    """``MEOW_FACT_RETENTION_S``: a finished job keeps its text until the retention has passed."""
    from datetime import timedelta

    from service.tables import utcnow

    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate.upgrade(url)
    ended = utcnow() - timedelta(seconds=30)
    with session_scope(url) as s:
        s.add(ModelRow(id="mdl_1", name="m", source="demo:tiny", source_kind="builtin"))
        s.flush()
        s.add(JobRow(id="job_1", kind="unlearn", status="succeeded", model_id="mdl_1", model_name="m",
                     params={"inverter": {"candidates": CANDIDATES}}, facts=FACTS, retain_facts=None,
                     result={"verdict": "partial", "verdict_reason": "Crumblewick Vault still leaks",
                             "facts": [{"question": FACTS[0]["question"], "memo_before": 0.5,
                                        "spans": [{"text": "Ostmere", "kind": "place"},
                                                  {"text": "Crumblewick Vault", "kind": "place"}],
                                        "probes": [{"kind": "question", "prompt": "x", "leaked_after":
                                                    ["Crumblewick Vault"]}]}]},
                     created_at=ended, finished_at=ended))
    with session_scope(url) as s:
        assert purge_due(s, 60) == []
    with session_scope(url) as s:
        row = s.get(JobRow, "job_1")
        assert row is not None and row.purged_at is None and found(str(row.facts))
        assert purge_due(s, 10) == ["job_1"]
    with session_scope(url) as s:
        row = s.get(JobRow, "job_1")
        assert row is not None and row.purged_at is not None
        assert row.result == {"verdict": "partial", "verdict_reason": None, "facts": [
            {"question": None, "memo_before": 0.5,
             "spans": [{"text": None, "kind": "place"}, {"text": None, "kind": "place"}],
             "probes": [{"kind": "question", "prompt": None, "leaked_after": ["#1"]}]}]}
        assert row.facts == [{"sha256": fact_digest(row.fact_salt or "", FACTS[0])}]
        assert purge_due(s, 0) == []  # once only


def test_sqlite_broker_drops_delivered_messages(tmp_path: Path) -> None:
    """``meow serve``'s SQLite broker keeps delivered messages; the API's reaper pass drops them."""
    import sqlite3

    from kombu import Connection

    from service.purge import prune_broker

    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    with Connection(url) as conn:
        queue = conn.SimpleQueue("q")
        queue.put({"job": "job_1"})
        queue.put({"job": "job_2"})
        queue.get(timeout=5).ack()
        queue.close()

    def visible() -> list[int]:
        with sqlite3.connect(tmp_path / "broker.db") as db:
            return sorted(v for (v,) in db.execute("SELECT visible FROM kombu_message"))

    assert visible() == [0, 1]
    assert prune_broker(url) == 1
    assert visible() == [1]  # the message not yet delivered stays
    assert prune_broker("redis://127.0.0.1:6379/15") == 0


def test_cancelled_before_start_is_purged_and_replays_purged(tmp_path: Path) -> None:
    """A queued job cancelled by the API is purged in that request; its idempotent replay is too."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from service.settings import Settings

    local = Settings(data_dir=tmp_path, auth="off", reaper_interval_s=0, queue=f"meow-test-idle-{secrets.token_hex(3)}")
    migrate.upgrade(local.db_url)
    with TestClient(create_app(local)) as c:
        assert c.post("/v1/models", json={"name": "m", "source": "demo:tiny"}).status_code == 201
        r = c.post("/v1/unlearn", json={"model": "m", **BODY}, headers={"Idempotency-Key": "k1"})
        assert r.status_code == 202, r.text
        assert r.json()["params"]["inverter"]["candidates"] == CANDIDATES and r.json()["purge"]["purged_at"] is None
        job = c.post(f"/v1/unlearn/{r.json()['id']}/cancel").json()
        assert job["status"] == "cancelled" and job["result"] is None
        assert_purged_job(job)
        again = c.post("/v1/unlearn", json={"model": "m", **BODY}, headers={"Idempotency-Key": "k1"})
        assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == job["id"]
        assert again.json()["params"]["inverter"]["candidates"] is None
    with get_engine(local.db_url).connect() as conn:
        dump = "\n".join(str(row) for t in inspect(conn).get_table_names()
                         for row in conn.execute(text(f'SELECT * FROM "{t}"')))
    assert job["id"] in dump and found(dump) == []

    # the app's own MEOW_FACT_RETENTION_S applies (not the environment's): kept until it passes
    keeping = local.model_copy(update={"fact_retention_s": 3600})
    with TestClient(create_app(keeping)) as c:
        r = c.post("/v1/unlearn", json={"model": "m", **BODY})
        job = c.post(f"/v1/unlearn/{r.json()['id']}/cancel").json()
        assert job["status"] == "cancelled" and job["purge"]["purged_at"] is None
        assert job["params"]["inverter"]["candidates"] == CANDIDATES
