"""Forget-data purge: once a job ends, the text of the facts it was asked to forget leaves the service.

A forget request is a data-subject request: keeping the very facts it names (and the model's
generations of them) in our database would defeat it. So when a job reaches a terminal state, and
``MEOW_FACT_RETENTION_S`` later (default 0: in the same transaction that ends it), this module

- replaces each forget and retain fact by a salted SHA-256 (``sha256(salt + "\\n" + question +
  "\\n" + answer)``, the salt shown on the job, so a caller holding the fact can check it was this
  job's), and drops given inversion candidates from the stored params;
- nulls every text of the result (questions, answers, generations, inversions, the inverter's raw
  output, span texts, probe prompts and outputs, verdict reasons), names leaked spans by index
  (``"#0"`` into the fact's ``spans``) and keeps every score and count (verdicts, MEMO, ROUGE,
  leak rates, rounds);
- redacts any of those strings that reached the job's events, its error message or a stored
  idempotent response;
- records what it removed and when (``purged``, ``purged_at``).

After the commit, SQLite's WAL is checkpointed and truncated (``secure_delete`` is on for every
connection, see ``service.db``, so freed pages hold zeros) and Postgres VACUUMs the tables the old
row versions lived in. The artifact (the adapter) is what remains of the job's data.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, select, update
from sqlalchemy.orm import Session

from service.states import TERMINAL
from service.tables import IdempotencyRow, JobEventRow, JobRow, utcnow

log = logging.getLogger("meow.purge")

#: result keys whose values are text the job was given or generated (nulled, or emptied for lists)
TEXT_KEYS = frozenset({"question", "answer", "text", "prompt", "before", "after", "generation_before",
                       "generation_after", "inverter_raw", "verdict_reason", "uninvertible"})
LIST_TEXT_KEYS = frozenset({"leaked_before", "leaked_after"})
#: what a redacted string inside a kept message reads as
REDACTED = "[purged]"
#: the tables a purge rewrites (VACUUMed on Postgres afterwards)
TABLES = ("jobs", "job_events", "idempotency_keys")
_PENDING = "meow_purge_pending"


def fact_digest(salt: str, fact: dict[str, Any]) -> str:
    """The salted SHA-256 a purged fact is kept as; callers recompute it to match their own facts."""
    text = f"{salt}\n{fact.get('question', '')}\n{fact.get('answer', '')}"
    return hashlib.sha256(text.encode()).hexdigest()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _result_texts(value: Any) -> Iterable[str]:
    """The strings under ``TEXT_KEYS``/``LIST_TEXT_KEYS`` anywhere in a result."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in TEXT_KEYS or k in LIST_TEXT_KEYS:
                yield from _strings(v)
            else:
                yield from _result_texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _result_texts(v)


def secrets_of(row: JobRow) -> list[str]:
    """Every string of the job that is fact text, longest first (so redaction replaces whole ones)."""
    found: set[str] = set()
    for fact in [*(row.facts or []), *(row.retain_facts or [])]:
        for key in ("question", "answer", "sensitive", "paraphrases"):
            found.update(_strings(fact.get(key)))
    found.update(_strings(((row.params or {}).get("inverter") or {}).get("candidates")))
    found.update(_result_texts(row.result))
    return sorted((s for s in found if len(s.strip()) >= 2), key=len, reverse=True)


def redact(value: Any, texts: list[str]) -> Any:
    """``value`` with every occurrence of ``texts`` in its strings replaced by ``REDACTED``."""
    if isinstance(value, str):
        out = value
        for t in texts:
            if t in out:
                out = out.replace(t, REDACTED)
        return out
    if isinstance(value, dict):
        return {k: redact(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, texts) for v in value]
    return value


def _span_refs(spans: Any) -> dict[str, str]:
    """A fact's span texts → ``#<index>`` (into its ``spans``): how a purged leak table names them."""
    if not isinstance(spans, list):
        return {}
    return {s["text"]: f"#{i}" for i, s in enumerate(spans) if isinstance(s, dict) and isinstance(s.get("text"), str)}


def scrub_result(value: Any, texts: list[str], refs: dict[str, str] | None = None) -> Any:
    """The result with text fields nulled and everything else kept; leaked spans (``leaked_*``) are
    named by their index in the fact's ``spans`` (``"#0"``), so each probe's leak count survives."""
    if isinstance(value, dict):
        refs = _span_refs(value["spans"]) if "spans" in value else refs
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in TEXT_KEYS and (v is None or isinstance(v, str)):
                out[k] = None
            elif k in LIST_TEXT_KEYS and isinstance(v, list):
                out[k] = [(refs or {}).get(x, "#?") if isinstance(x, str) else x for x in v]
            else:
                out[k] = scrub_result(v, texts, refs)
        return out
    if isinstance(value, list):
        return [scrub_result(v, texts, refs) for v in value]
    return redact(value, texts)  # a string under a kept key (e.g. a flag) loses any fact text it quotes


def purge_job(session: Session, job_id: str) -> bool:
    """Purge one terminal job in ``session``'s transaction; False if it is not terminal or already purged."""
    row = session.execute(select(JobRow).where(JobRow.id == job_id).execution_options(populate_existing=True)
                          ).scalar_one_or_none()
    if row is None or row.purged_at is not None or row.status not in TERMINAL:
        return False
    texts = secrets_of(row)
    salt = secrets.token_hex(16)
    purged: list[str] = ["facts"]
    values: dict[str, Any] = {"facts": [{"sha256": fact_digest(salt, f)} for f in row.facts or []]}
    if row.retain_facts:
        values["retain_facts"] = [{"sha256": fact_digest(salt, f)} for f in row.retain_facts]
        purged.append("retain_facts")
    params = dict(row.params or {})
    inverter = dict(params.get("inverter") or {})
    if inverter.get("candidates"):
        inverter["candidates"] = None
        params["inverter"] = inverter
        values["params"] = params
        purged.append("params.inverter.candidates")
    if row.result is not None:
        values["result"] = scrub_result(row.result, texts)
        purged.append("result texts")
    if row.error_message:
        values["error_message"] = redact(row.error_message, texts)
    n_events = 0
    for ev in session.execute(select(JobEventRow).where(JobEventRow.job_id == job_id)).scalars():
        message, data = redact(ev.message, texts), redact(ev.data or {}, texts)
        if message != ev.message or data != (ev.data or {}):
            ev.message, ev.data = message, data
            n_events += 1
    if n_events:
        purged.append(f"text in {n_events} event(s)")
    window = (row.created_at - timedelta(minutes=10), row.created_at + timedelta(minutes=1))
    stored = select(IdempotencyRow).where(IdempotencyRow.tenant_id == row.tenant_id,
                                          IdempotencyRow.created_at.between(*window),
                                          IdempotencyRow.response.is_not(None))
    for idem in session.execute(stored).scalars():
        if isinstance(idem.response, dict) and idem.response.get("id") == job_id:
            response = dict(idem.response)
            if "params" in values:
                response["params"] = values["params"]
            idem.response = redact(response, texts)
            purged.append("idempotent response")
    values.update(purged_at=utcnow(), purged=purged, fact_salt=salt)
    session.flush()
    session.execute(update(JobRow).where(JobRow.id == job_id).values(**values)
                    .execution_options(synchronize_session=False))
    session.expire(row)
    session.info[_PENDING] = True
    return True


def purge_due(session: Session, retention_s: float) -> list[str]:
    """Purge every terminal job that ended at least ``retention_s`` ago and is not purged yet."""
    cutoff = utcnow() - timedelta(seconds=retention_s)
    stmt = select(JobRow.id).where(JobRow.status.in_([s.value for s in TERMINAL]), JobRow.purged_at.is_(None),
                                   JobRow.finished_at <= cutoff).limit(100)
    return [job_id for job_id in session.execute(stmt).scalars() if purge_job(session, job_id)]


def prune_broker(broker_url: str) -> int:
    """Drop delivered messages from the SQLite broker of ``meow serve``, which keeps them (``visible =
    0``) forever; they carry job ids only, but a broker should not grow with every job. Redis
    deletes a message once it is acknowledged."""
    if not broker_url.startswith("sqla+sqlite:"):
        return 0
    path = make_url(broker_url.removeprefix("sqla+")).database
    if not path or not Path(path).is_file():
        return 0
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        try:
            n = conn.execute("DELETE FROM kombu_message WHERE visible = 0").rowcount
        except sqlite3.OperationalError:  # no such table yet, or the broker is busy: next pass
            return 0
        conn.commit()
    return n


#: ``session.info`` key through which a process whose settings are not the environment's (an API app
#: built by ``create_app(settings)``) passes its ``MEOW_FACT_RETENTION_S``
RETENTION_KEY = "meow_fact_retention_s"


def on_terminal(session: Session, job_id: str) -> None:
    """Called by ``service.jobs.transition`` when a job ends: purge now unless a retention applies."""
    retention = session.info.get(RETENTION_KEY)
    if retention is None:
        from service.settings import get_settings

        retention = get_settings().fact_retention_s
    if retention > 0:
        return
    try:
        purge_job(session, job_id)
    except Exception:  # noqa: BLE001 - never keep a job from ending; the reapers' sweep purges it later
        log.exception("purge of %s failed; the next sweep retries", job_id)


@event.listens_for(Session, "after_commit")
def _compact(session: Session) -> None:
    """After a purge commits: leave no copy of the old rows in SQLite's WAL; VACUUM on Postgres."""
    if not session.info.pop(_PENDING, False):
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    try:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout=2000")  # never stall the caller on a long reader
                try:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    conn.exec_driver_sql("PRAGMA busy_timeout=30000")
        elif engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"VACUUM {', '.join(TABLES)}")
    except Exception:  # noqa: BLE001 - the purge itself is committed; compaction is retried by the next one
        log.warning("compaction after a purge failed", exc_info=True)
