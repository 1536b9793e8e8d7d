"""The worker's Celery app: ``celery -A worker.app worker -P prefork -c 1`` (or ``meow worker``).

The configuration and task names live in ``service.queue`` (shared with the API, which only sends
tasks); this module adds the task bodies from ``worker.tasks``. It never imports torch.
"""

from __future__ import annotations

from service.queue import make_celery

#: the worker's app; tasks are registered by ``worker.tasks``
app = make_celery()
