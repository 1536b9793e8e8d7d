"""The Celery application, configured for long GPU jobs (see docs/service.md, "Workers"), and the
task names both sides use.

The API builds a sender from ``make_celery(settings, include_tasks=False)`` and sends tasks by
name; workers build the same app with ``worker.tasks`` included (``celery -A worker.app``). This
module never imports torch: the prefork parent must not initialise CUDA before forking its child.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.settings import Settings, get_settings
from service.states import Status
from service.tables import JobRow, utcnow

UNLEARN_TASK = "meow.unlearn"
MEMO_TASK = "meow.memo"
REAP_TASK = "meow.reap"
TASK_NAMES = frozenset({UNLEARN_TASK, MEMO_TASK, REAP_TASK})
#: the module that registers the task bodies (imported by workers only)
TASKS_MODULE = "worker.tasks"


def celery_config(settings: Settings) -> dict:
    transport_options = {"visibility_timeout": settings.visibility_timeout_s}
    if settings.broker.startswith("sqla+"):
        transport_options = {}  # the SQLAlchemy transport has no visibility timeout
    return {
        "broker_url": settings.broker,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4,
        "broker_transport_options": transport_options,
        # JSON only: tasks carry ids, never pickled objects or fact text.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Postgres is the source of truth for job state: no result backend.
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": settings.queue,
        "task_routes": {name: {"queue": settings.queue} for name in TASK_NAMES},
        # one job at a time per GPU, acknowledged only when finished; a killed child is not
        # re-delivered (task_reject_on_worker_lost=False): the job is marked crashed instead.
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,
        "task_acks_on_failure_or_timeout": True,
        "worker_max_tasks_per_child": settings.max_tasks_per_child,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": 30.0,
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                      "interval_max": 1},
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def make_celery(settings: Settings | None = None, *, include_tasks: bool = True) -> Celery:
    settings = settings or get_settings()
    app = Celery("meow", include=[TASKS_MODULE] if include_tasks else [])
    app.conf.update(celery_config(settings))
    return app


def send_job(celery: Celery, job_id: str, kind: str, queue: str) -> None:
    """The one way a job's message is sent (at creation and by ``resend_lost``); the task id is the
    job id, so a cancel's revoke matches every copy."""
    celery.send_task(UNLEARN_TASK if kind == "unlearn" else MEMO_TASK, args=[job_id], task_id=job_id, queue=queue)


def resend_lost(session: Session, celery: Celery, settings: Settings) -> list[str]:
    """Send again the message of each job on ``settings.queue`` still ``queued`` more than
    ``MEOW_REQUEUE_AFTER_S`` after its last send: the database is the truth, and a broker that lost
    the message (flushed, restarted without persistence) would leave it queued for ever.

    Each job is re-sent at most once per period across every API and worker running this: the
    conditional UPDATE of ``sent_at`` picks one sender. A copy that finds the job taken is dropped
    by the worker's parent before the pool (``worker.tasks.JobRequest.revoked``; the claim, which
    starts only ``queued`` jobs, is the backstop); a job not yet started only because every worker
    is busy gets one such duplicate per period.
    """
    if settings.requeue_after_s <= 0:
        return []
    cutoff = utcnow() - timedelta(seconds=settings.requeue_after_s)
    last_sent = func.coalesce(JobRow.sent_at, JobRow.queued_at, JobRow.created_at)
    # only this queue's jobs: rows from before migration 0006 (no queue) could belong to any queue
    due = session.execute(select(JobRow.id, JobRow.kind).where(
        JobRow.status == Status.queued.value, JobRow.queue == settings.queue, last_sent <= cutoff)
        .order_by(JobRow.created_at)).all()
    sent = []
    for job_id, kind in due:
        won = session.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == Status.queued.value,
                                                   last_sent <= cutoff)
                              .values(sent_at=utcnow())
                              .execution_options(synchronize_session=False)).rowcount == 1
        if not won:
            continue
        session.commit()  # claim the period before sending: a crash here costs one period, not a duplicate storm
        send_job(celery, job_id, kind, settings.queue)
        sent.append(job_id)
    return sent
