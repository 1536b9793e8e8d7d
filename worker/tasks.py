"""Celery tasks: thin wrappers around ``worker.runner`` taking job ids only.

Crash handling, in two layers:
- a child killed mid-job (OOM, SIGKILL, hard time limit) is seen by the parent worker, whose
  ``JobRequest`` marks the job ``crashed`` (``worker_lost``) or ``failed`` (``time_limit``) at once;
- a whole worker lost (machine gone, parent killed) stops the job's heartbeat, and the reaper (in
  the API, in every worker, and at worker start) marks it ``crashed`` after ``MEOW_STALE_AFTER_S``.
Messages of lost jobs are not re-delivered (``task_reject_on_worker_lost=False``); if Redis
re-delivers one anyway, the claim only starts ``queued`` jobs, so it is dropped.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import structlog
from billiard.exceptions import WorkerLostError
from celery import Task, signals
from celery.exceptions import TimeLimitExceeded
from celery.worker.request import Request
from sqlalchemy import select

from service import jobs as lifecycle
from service import workers as presence
from service.db import dispose_all, session_scope
from service.logs import configure_logging
from service.purge import purge_due
from service.queue import MEMO_TASK, REAP_TASK, UNLEARN_TASK, resend_lost
from service.settings import get_settings
from service.states import RUNNING, Status
from service.tables import JobRow
from worker.app import app
from worker.runner import run_job

log = logging.getLogger("meow.worker")


def _job_id(request: Request) -> str | None:
    args = request.args or []
    return args[0] if args else None


class JobRequest(Request):
    """Runs in the parent worker process, which survives its child's death."""

    def revoked(self) -> bool:
        """Also "revoked": a job the database no longer has ``queued`` (cancelled while it waited,
        finished, run by another delivery). Celery asks this in the parent before handing the
        message to the pool, so such a message is acknowledged and dropped there, without using up
        a pool child (with ``MEOW_MAX_TASKS_PER_CHILD=1`` each one costs a child's replacement,
        seconds per message). A database error leaves the decision to the child's claim."""
        if super().revoked():
            return True
        job_id = _job_id(self)
        if not job_id or self.name not in (UNLEARN_TASK, MEMO_TASK):
            return False
        try:
            settings = get_settings()
            with session_scope(settings.db_url) as s:
                status = s.execute(select(JobRow.status).where(JobRow.id == job_id)).scalar_one_or_none()
        except Exception:  # noqa: BLE001
            log.warning("could not look up job %s before running it", job_id, exc_info=True)
            return False
        if status == Status.queued:
            return False
        if status is None:  # jobs are never deleted: it was sent by a deployment with another database
            log.error("dropped the message of job %s: it is not in this worker's database; another deployment "
                      "sends to queue %r on this broker (give each its own MEOW_QUEUE or broker)", job_id,
                      settings.queue)
        else:
            log.info("dropped the message of job %s: it is %s", job_id, status)
        self._announce_revoked("job not queued", False, None, False)  # acks it and frees the slot
        return True

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        job_id = _job_id(self)
        if not soft and job_id:
            settings = get_settings()
            with session_scope(settings.db_url) as s:
                lifecycle.transition(s, job_id, RUNNING, Status.failed, level="error", error_code="time_limit",
                                     error_message=f"the job exceeded MEOW_TASK_TIME_LIMIT_S ({timeout:g} s) "
                                     "and its process was killed")

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # billiard wraps errors from the pool in ExceptionWithTraceback
        job_id = _job_id(self)
        if job_id and isinstance(exc, WorkerLostError | TimeLimitExceeded):
            settings = get_settings()
            with session_scope(settings.db_url) as s:
                lifecycle.reap_stale(s, 0, job_ids=[job_id], reason=f"worker process exited: {exc}")


class JobTask(Task):
    Request = JobRequest
    acks_late = True
    ignore_result = True


@app.task(name=UNLEARN_TASK, base=JobTask, bind=True)
def unlearn_task(self: Task, job_id: str) -> str | None:
    return run_job(job_id, get_settings(), self.request.hostname or "worker")


@app.task(name=MEMO_TASK, base=JobTask, bind=True)
def memo_task(self: Task, job_id: str) -> str | None:
    return run_job(job_id, get_settings(), self.request.hostname or "worker")


@app.task(name=REAP_TASK, ignore_result=True)
def reap_task() -> list[str]:
    """For deployments that prefer celery beat over the built-in reaper threads. Also purges the
    facts of jobs whose ``MEOW_FACT_RETENTION_S`` has passed (``service.purge``)."""
    settings = get_settings()
    with session_scope(settings.db_url) as s:
        reaped = lifecycle.reap_stale(s, settings.stale_after_s)
    with session_scope(settings.db_url) as s:
        purge_due(s, settings.fact_retention_s)
    with session_scope(settings.db_url) as s:
        resent = resend_lost(s, app, settings)  # works with no API running, e.g. after a broker flush
    if resent:
        log.warning("sent %d queued job(s) again: %s", len(resent), ", ".join(resent))
    return reaped


# ---------------------------------------------------------------- worker process hooks
_reaper_stop = threading.Event()


def _reap_loop() -> None:
    settings = get_settings()
    while not _reaper_stop.wait(settings.reaper_interval_s):
        try:
            reap_task()
        except Exception:  # noqa: BLE001
            log.exception("reaper pass failed")


@signals.worker_init.connect
def _preload_engine(**_: Any) -> None:
    """Import the engine in the parent so each forked child starts fast (no CUDA is touched)."""
    import meow_engine.memo  # noqa: F401
    import meow_engine.pipeline  # noqa: F401


def _presence_loop(name: str) -> None:
    """The parent's own heartbeat (``service.workers``): /readyz counts live workers from it."""
    settings = get_settings()
    while not _reaper_stop.wait(settings.heartbeat_s):
        try:
            with session_scope(settings.db_url) as s:
                presence.beat(s, name, settings.queue, os.getpid())
        except Exception:  # noqa: BLE001 - a missed beat is retried; readiness tolerates a few
            log.exception("worker heartbeat failed")


@signals.worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    """A worker starting under a name that still owns running jobs, while no live process of that
    name beats (``service.workers``), is their restarted owner: they died. A namesake that still
    beats is another live process (two workers given one node name): its jobs are left alone, and
    only their own heartbeat going stale can mark them crashed."""
    settings = get_settings()
    hostname = getattr(sender, "hostname", None)
    with session_scope(settings.db_url) as s:
        gone = bool(hostname) and not presence.is_live(s, hostname, settings.stale_after_s)
        mine = [] if not gone else list(s.execute(
            JobRow.__table__.select().with_only_columns(JobRow.id)
            .where(JobRow.worker == hostname, JobRow.status.in_([st.value for st in RUNNING]))).scalars())
        reaped = lifecycle.reap_stale(s, 0, job_ids=mine, reason="its worker restarted") if mine else []
        reaped += lifecycle.reap_stale(s, settings.stale_after_s)
    if reaped:
        log.warning("marked %d job(s) crashed at start: %s", len(reaped), ", ".join(reaped))
    if hostname:
        with session_scope(settings.db_url) as s:
            presence.beat(s, hostname, settings.queue, os.getpid())
        _presence["name"] = hostname
        threading.Thread(target=_presence_loop, args=(hostname,), name="meow-presence", daemon=True).start()
    if settings.reaper_interval_s > 0:
        threading.Thread(target=_reap_loop, name="meow-reaper", daemon=True).start()


#: this worker's node name once it is ready (its row in ``workers``)
_presence: dict[str, str] = {}


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    _reaper_stop.set()
    name = _presence.get("name")
    if name:
        try:
            settings = get_settings()
            with session_scope(settings.db_url) as s:
                presence.forget(s, name, os.getpid())
        except Exception:  # noqa: BLE001 - the row then goes stale on its own
            log.exception("could not remove this worker's heartbeat row")


@signals.setup_logging.connect
def _logging(**_: Any) -> None:
    """JSON lines like the API's (``service.logs``); connecting here makes Celery leave logging to us."""
    settings = get_settings()
    configure_logging(json_logs=settings.log_json, level=settings.log_level)


@signals.task_prerun.connect
def _bind_job(task_id: str | None = None, args: Any = None, **_: Any) -> None:
    """Every line a job's child writes names the job (jobs carry their id as the only argument)."""
    structlog.contextvars.clear_contextvars()
    if args:
        structlog.contextvars.bind_contextvars(job_id=args[0])


@signals.task_postrun.connect
def _unbind_job(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@signals.worker_process_init.connect
def _child_init(**_: Any) -> None:
    """Connections inherited through fork belong to the parent: start the child with none."""
    dispose_all()
