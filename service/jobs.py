"""Job lifecycle in the database: every state change is one conditional UPDATE.

Postgres (or SQLite) is the source of truth, never Celery. Each transition names the states it
may start from, so racing actors (API cancel vs worker finish, two deliveries of one task, the
reaper vs a late heartbeat) resolve by whichever UPDATE matches first; the loser sees rowcount 0
and backs off. Each successful transition also writes a ``status`` event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.states import RUNNING, TERMINAL, Status
from service.tables import JobEventRow, JobRow, utcnow


def add_event(session: Session, job_id: str, type_: str, message: str = "", *, stage: str | None = None,
              level: str = "info", data: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    session.add(JobEventRow(job_id=job_id, type=type_, message=message, stage=stage, level=level,
                            data=data or {}, created_at=at or utcnow()))
    if type_ == "status" and data and data.get("status"):
        from service.webhooks import enqueue_status

        enqueue_status(session, job_id, data["status"])  # delivered later by the API's sender, never here


def transition(session: Session, job_id: str, from_states: Iterable[str], to: Status, *,
               message: str | None = None, level: str = "info", extra_where: Any = None,
               **values: Any) -> bool:
    """Move ``job_id`` to ``to`` if it is in ``from_states``; stamps ``<to>_at`` (and ``finished_at``)."""
    now = utcnow()
    values = {"status": to.value, f"{to.value}_at": now, "updated_at": now, **values}
    if to in TERMINAL:
        values.setdefault("finished_at", now)
        values.setdefault("inverter_api_key", None)  # a caller's key never outlives its job
    stmt = update(JobRow).where(JobRow.id == job_id, JobRow.status.in_([str(s) for s in from_states]))
    if extra_where is not None:
        stmt = stmt.where(extra_where)
    rows = session.execute(stmt.values(**values).execution_options(synchronize_session=False)).rowcount
    if rows != 1:
        return False
    data: dict[str, Any] = {"status": to.value}
    if values.get("error_code"):
        data["error"] = {"code": values["error_code"], "message": values.get("error_message")}
    add_event(session, job_id, "status", message or f"job {to.value}", level=level, data=data, at=now)
    if to in TERMINAL:
        from service.purge import on_terminal

        on_terminal(session, job_id)  # the facts' text leaves with the job (MEOW_FACT_RETENTION_S)
    return True


def claim(session: Session, job_id: str, worker: str) -> bool:
    """The only way a job starts: ``queued → running``. False: another delivery owns it, or it is gone."""
    stmt = select(JobRow.attempt).where(JobRow.id == job_id)
    attempt = session.execute(stmt).scalar_one_or_none()
    if attempt is None:
        return False
    return transition(session, job_id, [Status.queued], Status.running, message=f"started on {worker}",
                      worker=worker, attempt=attempt + 1, heartbeat_at=utcnow(),
                      extra_where=JobRow.attempt == attempt)


def heartbeat(session: Session, job_id: str) -> bool:
    now = utcnow()
    stmt = (update(JobRow).where(JobRow.id == job_id, JobRow.status.in_([s.value for s in RUNNING]))
            .values(heartbeat_at=now).execution_options(synchronize_session=False))
    return session.execute(stmt).rowcount == 1


def reap_stale(session: Session, stale_after_s: float, *, job_ids: Iterable[str] | None = None,
               reason: str = "no heartbeat") -> list[str]:
    """Mark running/cancelling jobs whose worker stopped heart-beating as ``crashed`` (``worker_lost``).

    ``job_ids`` with ``stale_after_s=0`` reaps specific jobs at once (a worker saw its child die).
    """
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    stmt = select(JobRow.id, JobRow.heartbeat_at).where(JobRow.status.in_([s.value for s in RUNNING]))
    if job_ids is not None:
        stmt = stmt.where(JobRow.id.in_(list(job_ids)))
    reaped = []
    for job_id, beat in session.execute(stmt).all():
        if beat is not None and beat > cutoff:
            continue
        stale = (JobRow.heartbeat_at.is_(None)) | (JobRow.heartbeat_at <= cutoff)
        ok = transition(session, job_id, RUNNING, Status.crashed, level="error",
                        message=f"worker lost ({reason})", error_code="worker_lost",
                        error_message=f"the worker running this job stopped ({reason}); the job was not finished",
                        extra_where=stale)
        if ok:
            reaped.append(job_id)
    return reaped
