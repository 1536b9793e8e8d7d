#!/usr/bin/env bash
# Container entrypoint: one image, three roles (see docker-compose.yml).
#   api      uvicorn serving the HTTP API (no torch is imported)
#   worker   one Celery worker process per GPU (prefork, one job at a time, fresh child per job)
#   migrate  alembic upgrade head, then exit (run before api/worker start)
# Anything else is executed as given (e.g. `bash`).
set -euo pipefail
role=${1:-api}
case "$role" in
  api)
    exec uvicorn api.main:app --host "${MEOW_HOST:-0.0.0.0}" --port "${MEOW_PORT:-8000}" \
      --proxy-headers --forwarded-allow-ips "*" --workers "${MEOW_API_WORKERS:-2}"
    ;;
  worker)
    exec celery -A worker.app worker -P prefork -c 1 -Q "${MEOW_QUEUE:-meow}" \
      -n "${MEOW_WORKER_NAME:-gpu0}-$$-$(printf %04x $RANDOM)@%h" --loglevel "${MEOW_LOG_LEVEL:-INFO}" --without-gossip --without-mingle
    ;;
  migrate)
    exec alembic upgrade head
    ;;
  *)
    exec "$@"
    ;;
esac
