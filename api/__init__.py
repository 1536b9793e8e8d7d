"""The meow HTTP service (FastAPI). Stands on ``service``, never imports ``worker`` or torch: workers
load models, the API only queues."""
