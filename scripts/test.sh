#!/usr/bin/env bash
# The one test command (README and .ci/run). Creates the environment, checks the services the
# tests need, then runs pytest offline. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Tiny models run faster single-threaded, and the tests run a worker process beside pytest.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export MEOW_TEST_DATABASE_URL=${MEOW_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
export MEOW_TEST_BROKER_URL=${MEOW_TEST_BROKER_URL:-redis://127.0.0.1:6379/15}
export MEOW_CACHE_DIR=${MEOW_CACHE_DIR:-$PWD/.meow/cache}
.venv/bin/python scripts/check_services.py
exec .venv/bin/python -m pytest "$@"
