"""``meow bench service``: the API under bounded concurrent load, over loopback, from this process.

Starts ``meow serve`` (SQLite in a temporary folder, ``MEOW_AUTH=required``, a key from ``meow keys
create``, ``--no-worker`` so jobs only queue) and a bare FastAPI app (``api.bench_bare``) under
uvicorn, then drives both with httpx at a fixed concurrency: submissions with Idempotency-Keys (a
tenth of them repeat an earlier key, sent after the originals so they are replays, not in-flight
duplicates), then reads of single jobs, of a page of jobs and of ``/healthz``. Why: to prove the
idempotency path keeps one job per distinct key under load, and to say what a read costs against
FastAPI's floor. Rate limits and the queued-jobs cap are lifted in the served process (the bench
would otherwise measure 429s)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

MEOW = str(Path(sys.executable).parent / "meow")
START_TIMEOUT_S = 120.0
REPEAT_EVERY = 10  # one submission in this many repeats an earlier key
BODY_TEMPLATE: dict[str, Any] = {
    "model": "demo:tiny",
    "inverter": {"kind": "given", "n": 2, "candidates": [["It was never written down.", "Nobody knows it."]]},
    "selection": {"k": 1, "rows_per_qa": 2}, "finetune": {"mode": "lora", "max_steps": 10},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {log.read_text()[-1500:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def _phase(name: str, n: int, concurrency: int, call: Callable[[int], Awaitable[httpx.Response]],
                 ok: Callable[[int, httpx.Response], bool]) -> dict[str, Any]:
    """Send ``n`` requests, ``concurrency`` at a time; time each and the phase."""
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    bad: list[str] = []

    async def one(i: int) -> None:
        async with sem:
            t = time.perf_counter()
            r = await call(i)
            lat.append(time.perf_counter() - t)
            if not ok(i, r):
                bad.append(f"{r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    return {"route": name, "requests": n, "errors": len(bad), "first_error": bad[0] if bad else None,
            "seconds": wall, "per_s": n / wall if wall else float("nan"),
            "p50_ms": _pct(lat, 0.5) * 1e3, "p99_ms": _pct(lat, 0.99) * 1e3}


async def _drive(base: str, bare: str, key: str, n: int, reads: int, concurrency: int, seed: int
                 ) -> dict[str, Any]:
    rng = random.Random(seed)
    n_repeat = n // REPEAT_EVERY
    distinct = n - n_repeat
    ids: dict[int, str] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as c, \
            httpx.AsyncClient(base_url=bare, timeout=30, limits=limits) as b:
        def body(i: int) -> dict[str, Any]:
            return {**BODY_TEMPLATE, "facts": [{"question": f"What is secret number {i}?", "answer": f"It is {i}."}]}

        async def submit(i: int) -> httpx.Response:
            r = await c.post("/v1/unlearn", json=body(i), headers={"Idempotency-Key": f"bench-{i}"})
            if r.status_code == 202:
                ids[i] = r.json()["id"]
            return r

        repeats = [rng.randrange(distinct) for _ in range(n_repeat)]
        mismatched: list[int] = []

        async def resubmit(j: int) -> httpx.Response:
            i = repeats[j]
            r = await c.post("/v1/unlearn", json=body(i), headers={"Idempotency-Key": f"bench-{i}"})
            if r.status_code == 202 and r.json()["id"] != ids.get(i):
                mismatched.append(i)
            return r

        rows = [await _phase("POST /v1/unlearn (new key)", distinct, concurrency, submit,
                             lambda _i, r: r.status_code == 202)]
        rows.append(await _phase("POST /v1/unlearn (repeated key)", n_repeat, concurrency, resubmit,
                                 lambda _i, r: r.status_code == 202 and r.headers.get("idempotent-replayed") == "true"))
        known = list(ids.values()) or ["job_missing"]
        picks = [rng.choice(known) for _ in range(reads)]
        rows.append(await _phase("GET /v1/unlearn/{id}", reads, concurrency,
                                 lambda i: c.get(f"/v1/unlearn/{picks[i]}"), lambda _i, r: r.status_code == 200))
        rows.append(await _phase("GET /v1/unlearn?limit=10", reads, concurrency,
                                 lambda _i: c.get("/v1/unlearn", params={"limit": 10}),
                                 lambda _i, r: r.status_code == 200 and len(r.json()["data"]) == min(10, len(ids))))
        rows.append(await _phase("GET /healthz", reads, concurrency, lambda _i: c.get("/healthz"),
                                 lambda _i, r: r.status_code == 200))
        rows.append(await _phase("bare FastAPI GET /v1/unlearn/{id}", reads, concurrency,
                                 lambda i: b.get(f"/v1/unlearn/{picks[i]}"), lambda _i, r: r.status_code == 200))
    return {"rows": rows, "distinct_keys": distinct, "repeated_submissions": n_repeat,
            "replays_with_another_id": len(mismatched)}


def run_service_bench(n: int = 1000, reads: int | None = None, concurrency: int = 16, seed: int = 0,
                      max_seconds: float = 900.0) -> dict[str, Any]:
    """Run the whole bench and return its result (``ok`` false when persisted jobs ≠ distinct keys,
    a replay named another job, or any request failed)."""
    if n < 1 or concurrency < 1:
        raise ValueError("n and concurrency must be at least 1")
    reads = n if reads is None else reads
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meow-bench-service-") as tmp:
        data = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEOW_")}
        env.update({"MEOW_DATA_DIR": str(data), "MEOW_AUTH": "required", "MEOW_RATE_LIMIT": "1000000/minute",
                    "MEOW_MAX_QUEUED_JOBS": str(n + 10), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                    "MEOW_CACHE_DIR": os.environ.get("MEOW_CACHE_DIR", str(Path(tmp) / "cache"))})
        made = subprocess.run([MEOW, "keys", "create", "--tenant", "bench", "--scopes", "jobs:read,jobs:write",
                               "--json"], env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if made.returncode != 0:
            raise RuntimeError(f"meow keys create failed: {made.stderr.strip()[-500:]}")
        key = json.loads(made.stdout)["key"]
        port, bare_port = _free_port(), _free_port()
        log, bare_log = Path(tmp) / "serve.log", Path(tmp) / "bare.log"
        with log.open("wb") as out, bare_log.open("wb") as bout:
            serve = subprocess.Popen([MEOW, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
                                      str(data), "--no-worker", "--auth", "required"], cwd=tmp, env=env,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.bench_bare:app", "--host", "127.0.0.1",
                                     "--port", str(bare_port), "--log-level", "warning"], env=env,
                                    stdout=bout, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            _wait_up(f"http://127.0.0.1:{port}/healthz", serve, log, deadline)
            _wait_up(f"http://127.0.0.1:{bare_port}/v1/unlearn/x", bare, bare_log, deadline)
            left = max_seconds - (time.monotonic() - started)
            driven = asyncio.run(asyncio.wait_for(
                _drive(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}", key, n, reads, concurrency,
                       seed), timeout=left))
        except TimeoutError:
            raise RuntimeError(f"the bench ran past --max-seconds {max_seconds:.0f}") from None
        finally:
            _stop(serve)
            _stop(bare)
        with sqlite3.connect(data / "meow.db") as db:
            persisted = int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
    rows = {r["route"]: r for r in driven["rows"]}
    ratio = rows["GET /v1/unlearn/{id}"]["per_s"] / rows["bare FastAPI GET /v1/unlearn/{id}"]["per_s"]
    errors = sum(r["errors"] for r in driven["rows"])
    return {"bench": "service", "n": n, "reads": reads, "concurrency": concurrency, "seed": seed,
            "database": "sqlite", "auth": "required", "worker": False, "rows": driven["rows"],
            "distinct_keys": driven["distinct_keys"], "repeated_submissions": driven["repeated_submissions"],
            "jobs_persisted": persisted, "replays_with_another_id": driven["replays_with_another_id"],
            "errors": errors, "read_vs_bare_ratio": ratio, "ratio_goal": 0.5,
            "seconds": time.monotonic() - started,
            "ok": persisted == driven["distinct_keys"] and driven["replays_with_another_id"] == 0 and errors == 0}


def format_table(result: dict[str, Any]) -> str:
    """The result as a Markdown table plus the checks, for the terminal and the README."""
    lines = ["| route | requests | errors | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['route']} | {r['requests']} | {r['errors']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} "
                     f"| {r['p99_ms']:.1f} |")
    lines.append("")
    lines.append(f"jobs persisted {result['jobs_persisted']}, distinct keys {result['distinct_keys']} "
                 f"({result['repeated_submissions']} repeated submissions, "
                 f"{result['replays_with_another_id']} replays named another job)")
    lines.append(f"GET /v1/unlearn/{{id}} vs bare FastAPI: {result['read_vs_bare_ratio']:.2f}x "
                 f"(goal >= {result['ratio_goal']})")
    lines.append(f"n {result['n']}, reads {result['reads']}, concurrency {result['concurrency']}, "
                 f"{result['seconds']:.1f}s; {'OK' if result['ok'] else 'FAILED'}")
    return "\n".join(lines)
