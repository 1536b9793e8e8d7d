"""Worker presence in the database: each worker's parent process upserts its row every
``MEOW_HEARTBEAT_S`` and deletes it at a warm shutdown; a row older than ``MEOW_STALE_AFTER_S``
is a worker that is gone (killed, machine lost).

Why the database and not a Celery ping: the embedded SQLite broker has no broadcast, a ping
needs a timeout on every probe, and the database is already the truth for jobs.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service.tables import WorkerRow, utcnow


def beat(session: Session, name: str, queue: str, pid: int) -> None:
    """Record that ``name`` (pid ``pid``) is alive and consuming ``queue``."""
    now = utcnow()
    stmt = (update(WorkerRow).where(WorkerRow.name == name).values(queue=queue, pid=pid, heartbeat_at=now)
            .execution_options(synchronize_session=False))
    if session.execute(stmt).rowcount == 0:
        session.add(WorkerRow(name=name, queue=queue, pid=pid, started_at=now, heartbeat_at=now))


def forget(session: Session, name: str, pid: int) -> None:
    """A warm shutdown: the row goes at once (only this process's, not a namesake's)."""
    session.execute(delete(WorkerRow).where(WorkerRow.name == name, WorkerRow.pid == pid))


def live_count(session: Session, queue: str, stale_after_s: float) -> int:
    """How many workers beat on ``queue`` within ``stale_after_s``."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    stmt = select(func.count()).select_from(WorkerRow).where(WorkerRow.queue == queue, WorkerRow.heartbeat_at > cutoff)
    return int(session.execute(stmt).scalar_one())


def is_live(session: Session, name: str, stale_after_s: float) -> bool:
    """True while a process named ``name`` still beats: its jobs are not to be reaped by name."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    stmt = select(WorkerRow.name).where(WorkerRow.name == name, WorkerRow.heartbeat_at > cutoff)
    return session.execute(stmt).first() is not None
