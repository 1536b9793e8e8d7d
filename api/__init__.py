"""The meow HTTP service (FastAPI). Never imports torch: workers load models, the API only queues."""
