#!/usr/bin/env bash
# The one command that runs the service on a fresh machine: creates .venv if needed, then starts
# the embedded default (API + one worker, SQLite, no Redis). Extra arguments go to `meow serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/meow serve "$@"
