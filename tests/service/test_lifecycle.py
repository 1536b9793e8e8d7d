"""Job state transitions on Postgres: claim once, conditional finish, the stale-heartbeat reaper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from service import jobs as lifecycle
from service.db import session_scope
from service.ids import new_id
from service.states import RUNNING, Status
from service.tables import JobEventRow, JobRow, ModelRow, utcnow


@pytest.fixture()
def job_id(pg_url) -> str:
    with session_scope(pg_url) as s:
        m = ModelRow(id=new_id("model"), name=f"lc-{new_id('model')[-8:]}", source="demo:tiny", source_kind="builtin")
        s.add(m)
        s.flush()
        j = JobRow(id=new_id("unlearn"), kind="unlearn", model_id=m.id, model_name=m.name, params={}, facts=[],
                   queued_at=utcnow())
        s.add(j)
    return j.id


def _status(url: str, job_id: str) -> JobRow:
    with session_scope(url) as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        s.expunge(row)
        return row


def test_ids_sort_by_time():
    ids = [new_id("unlearn") for _ in range(50)]
    assert all(i.startswith("job_") and len(i) == 32 for i in ids)
    assert len(set(ids)) == 50
    assert [i[:16] for i in ids] == sorted(i[:16] for i in ids)  # the timestamp part never goes back


def test_claim_only_once(pg_url, job_id):
    with session_scope(pg_url) as s:
        assert lifecycle.claim(s, job_id, "w1")
    with session_scope(pg_url) as s:
        assert not lifecycle.claim(s, job_id, "w2")  # a duplicate delivery backs off
    row = _status(pg_url, job_id)
    assert row.status == "running" and row.worker == "w1" and row.attempt == 1 and row.heartbeat_at
    assert row.running_at is not None and row.running_at.tzinfo is not None


def test_transitions_are_conditional(pg_url, job_id):
    with session_scope(pg_url) as s:
        assert not lifecycle.transition(s, job_id, RUNNING, Status.succeeded)  # still queued
        assert lifecycle.transition(s, job_id, [Status.queued], Status.cancelled)
        assert not lifecycle.claim(s, job_id, "w")  # a cancelled job never starts
    row = _status(pg_url, job_id)
    assert row.status == "cancelled" and row.cancelled_at and row.finished_at
    with session_scope(pg_url) as s:
        events = s.query(JobEventRow).filter_by(job_id=job_id).order_by(JobEventRow.id).all()
        assert [e.data["status"] for e in events] == ["cancelled"]


def test_reaper_marks_only_stale_jobs(pg_url, job_id):
    with session_scope(pg_url) as s:
        assert lifecycle.claim(s, job_id, "w1")
    with session_scope(pg_url) as s:
        assert job_id not in lifecycle.reap_stale(s, 60)  # fresh heartbeat
    with session_scope(pg_url) as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    with session_scope(pg_url) as s:
        assert lifecycle.heartbeat(s, job_id)  # a late beat from a slow (not dead) worker rescues it
    with session_scope(pg_url) as s:
        assert job_id not in lifecycle.reap_stale(s, 60)
        s.execute(update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    with session_scope(pg_url) as s:
        assert lifecycle.reap_stale(s, 60, job_ids=[job_id]) == [job_id]
    row = _status(pg_url, job_id)
    assert row.status == "crashed" and row.error_code == "worker_lost" and row.crashed_at
    with session_scope(pg_url) as s:
        assert not lifecycle.heartbeat(s, job_id)  # a crashed job takes no more beats
        assert not lifecycle.transition(s, job_id, RUNNING, Status.succeeded)  # nor a late success
