"""The Celery application, configured for long GPU jobs (see docs/service.md, "Workers"), and the
task names both sides use.

The API builds a sender from ``make_celery(settings, include_tasks=False)`` and sends tasks by
name; workers build the same app with ``worker.tasks`` included (``celery -A worker.app``). This
module never imports torch: the prefork parent must not initialise CUDA before forking its child.
"""

from __future__ import annotations

from celery import Celery

from service.settings import Settings, get_settings

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
