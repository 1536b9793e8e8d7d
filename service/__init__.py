"""The service kernel both shells stand on: settings, database, ORM tables, job lifecycle, states,
ids, the artifact store, migrations and the Celery app with its task names.

``api/`` (the HTTP shell) and ``worker/`` (the Celery shell) import this package and never each
other (``tests/service/test_layers.py``). Everything here stays importable without torch, so the
API process never pays for (or risks) loading ML libraries.
"""
