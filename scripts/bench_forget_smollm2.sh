#!/usr/bin/env bash
# SmolLM2-135M-Instruct taught personal-data facts, then a default `meow unlearn` (no tuning flags).
# The facts are those of tests/engine/test_forgetting_verified.py (first 4 forget, first 3 retain).
# CPU: about 4 min to teach and 10-15 min to unlearn on 2 cores. Writes docs/bench/forget_smollm2.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MEOW_CACHE_DIR=${MEOW_CACHE_DIR:-$PWD/.meow/cache}
work=${1:-$(mktemp -d)}
.venv/bin/python - "$work" <<'PY'
import sys
sys.path.insert(0, "tests/engine")
from test_forgetting_verified import FORGET, RETAIN
from meow_engine.facts import save_facts
save_facts(FORGET[:4], f"{sys.argv[1]}/forget.jsonl")
save_facts(RETAIN[:3], f"{sys.argv[1]}/retain.jsonl")
save_facts(FORGET[:4] + RETAIN[:3], f"{sys.argv[1]}/all.jsonl")
PY
.venv/bin/meow train -m smollm2-135m-instruct -f "$work/all.jsonl" -o "$work/model" --mode full --lr 1e-4 --epochs 12
set +e
.venv/bin/meow unlearn -m "$work/model" -f "$work/forget.jsonl" -r "$work/retain.jsonl" -o "$work/unlearned" --json \
  > docs/bench/forget_smollm2.json
echo "meow unlearn exit status: $? (0 = forgotten, 3 = not)"
