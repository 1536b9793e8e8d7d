"""``meow bench service`` with a tiny N: the command starts ``meow serve`` and a bare app, drives
them, stops both, and the jobs it persisted equal the distinct Idempotency-Keys it sent (the
repeats were replays of the same jobs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MEOW = str(Path(sys.executable).parent / "meow")


def test_bench_service_persists_one_job_per_distinct_key(tmp_path: Path):
    r = subprocess.run([MEOW, "bench", "service", "-n", "20", "--reads", "10", "-c", "4", "--max-seconds", "120",
                        "-o", str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((tmp_path / "service_bench.json").read_text())
    assert result["repeated_submissions"] == 2 and result["distinct_keys"] == 18
    assert result["jobs_persisted"] == result["distinct_keys"]
    assert result["replays_with_another_id"] == 0 and result["errors"] == 0
    routes = {row["route"]: row for row in result["rows"]}
    assert routes["GET /v1/unlearn/{id}"]["requests"] == 10 and routes["GET /v1/unlearn/{id}"]["per_s"] > 0
    assert "jobs persisted 18, distinct keys 18" in r.stdout
