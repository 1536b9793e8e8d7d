"""Engines and sessions, one engine per (URL, process).

Celery forks its children after the parent may have opened connections; a connection shared
across a fork corrupts both sides, so the cache is keyed by PID and a child builds its own.
SQLite (embedded mode) gets WAL and a busy timeout so the API and a worker can write at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[tuple[str, int, str], Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA secure_delete=ON")  # purged fact text is overwritten, not left in free pages
    cur.close()


def get_engine(url: str, pool: str = "main") -> Engine:
    """``pool``: a name for a separate connection pool (background senders keep out of the one
    requests draw from)."""
    key = (url, os.getpid(), pool)
    engine = _engines.get(key)
    if engine is None:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        _engines[key] = engine
    return engine


def dispose_all() -> None:
    """Drop every cached engine; ones inherited through fork are dropped without closing the
    parent's sockets (``close=False``), as SQLAlchemy advises for multiprocessing."""
    for (_, pid, _pool), engine in list(_engines.items()):
        engine.dispose(close=pid == os.getpid())
    _engines.clear()


def session_factory(url: str, pool: str = "main") -> sessionmaker[Session]:
    return sessionmaker(get_engine(url, pool), expire_on_commit=False)


@contextmanager
def session_scope(url: str, pool: str = "main") -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url, pool)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
