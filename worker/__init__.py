"""Celery workers that run the engine. They stand on ``service`` (settings, database, job
lifecycle, store, the Celery app) and never import ``api``; ``worker.tasks`` and ``worker.runner``
load the engine, only in worker processes."""
