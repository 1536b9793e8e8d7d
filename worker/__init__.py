"""Celery workers that run the engine. ``worker.app`` is torch-free (the API imports it to send
tasks by name); ``worker.tasks`` and ``worker.runner`` load the engine, only in worker processes."""
