"""``meow serve`` as a user runs it: a subprocess with SQLite, the SQLite broker and its own
worker subprocess, driven over real HTTP from registration to a downloaded adapter, with
``MEOW_AUTH=required`` and keys made by ``meow keys create``: two tenants cannot see, cancel,
audit with or download each other's resources; a revoked key is refused; Idempotency-Key works;
bad requests are 422s. Without ``MEOW_AUTH``, ``meow serve`` runs with auth off and says so."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, wait_for

pytestmark = pytest.mark.slow

MEOW = str(Path(sys.executable).parent / "meow")
CANDIDATES = [["Nobody recorded any of this; the only registry burned in a fire long ago.",
               "It all happened on a ship crossing the northern sea during a storm."]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(model_root: Path, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEOW_")}
    env.update({"MEOW_MODEL_ROOTS": str(model_root), "MEOW_TORCH_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "MEOW_CACHE_DIR": os.environ.get("MEOW_CACHE_DIR", str(model_root.parent)),
                "MEOW_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1", **extra})
    return env


@contextmanager
def serving(tmp_path: Path, env: dict[str, str], *args: str, probe: str = "/readyz"
            ) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    port = _free_port()
    data = Path(env["MEOW_DATA_DIR"])
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([MEOW, "serve", "--port", str(port), "--data-dir", str(data), *args], cwd=tmp_path,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}{probe}", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 120, f"meow serve to answer {probe}")
        yield base, log, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, log.read_text()[-2000:]


def _key(env: dict[str, str], tenant: str, scopes: str) -> dict[str, Any]:
    r = subprocess.run([MEOW, "keys", "create", "--tenant", tenant, "--scopes", scopes, "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    return body


def test_meow_serve_end_to_end_with_keys(tmp_path: Path, model_root: Path, tiny_model_dir: Path, tiny_facts):
    data = tmp_path / "data"
    env = _env(model_root, data, MEOW_AUTH="required")
    scopes = "models:read,models:write,jobs:read,jobs:write,memo:write,adapters:read"
    ka, kb = _key(env, "tenant-a", scopes), _key(env, "tenant-b", scopes)  # before the server: same SQLite
    with serving(tmp_path, env) as (base, log, _proc):
        banner = log.read_text()
        assert f"listening on {base}" in banner and "curl -s" in banner and "sqlite" in banner
        assert "auth      required" in banner and "AUTHENTICATION IS OFF" not in banner
        assert (data / "meow.db").is_file()
        assert httpx.get(f"{base}/v1/models").status_code == 401
        a = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {ka['key']}"})
        b = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {kb['key']}"})
        with a, b:
            assert "demo:tiny" in [m["name"] for m in b.get("/v1/models").json()["data"]]  # seeded, shared
            m = a.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)})
            assert m.status_code == 201, m.text
            body = {"model": "tiny", "facts": tiny_facts[:1],
                    "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
                    "selection": {"k": 1, "rows_per_qa": 2}, "memo": {"max_new_tokens": 32},
                    "finetune": {"mode": "lora", "max_steps": 30, "lr": 1e-3}}
            r = a.post("/v1/unlearn", json=body, headers={"Idempotency-Key": "job-1"})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            again = a.post("/v1/unlearn", json=body, headers={"Idempotency-Key": "job-1"})
            assert again.json()["id"] == job_id and again.headers["idempotent-replayed"] == "true"
            _problem(a.post("/v1/unlearn", json={**body, "metadata": {"x": "1"}}, headers={"Idempotency-Key": "job-1"}),
                     422, "idempotency_key_reused")
            # B's same key is B's own
            assert b.post("/v1/models", json={"name": "b1", "source": "demo:tiny"},
                          headers={"Idempotency-Key": "job-1"}).status_code == 201

            # an in-flight duplicate is a 409: the first request waits on an audit queued behind A's job
            # (the one worker runs one job at a time)
            out: dict[str, httpx.Response] = {}
            memo = {"model": "b1", "facts": tiny_facts[:1], "max_new_tokens": 8}

            def first() -> None:
                out["r"] = b.post("/v1/memo", params={"wait": 2}, json=memo, headers={"Idempotency-Key": "m-1"})

            t = threading.Thread(target=first)
            t.start()
            time.sleep(0.5)
            dup = b.post("/v1/memo", params={"wait": 2}, json=memo, headers={"Idempotency-Key": "m-1"})
            t.join()
            _problem(dup, 409, "idempotency_in_flight")
            assert out["r"].status_code == 202 and out["r"].json()["status"] == "queued"

            job = wait_for(lambda: (lambda j: j if j["status"] in ("succeeded", "failed", "crashed") else None)(
                a.get(f"/v1/unlearn/{job_id}").json()), 300, "the embedded job to finish")
            assert job["status"] == "succeeded", (job["error"], (data / "worker.log").read_text()[-3000:])
            f = job["result"]["forget"]
            assert f["memo_after"] < f["memo_before"]
            adapter_id = job["result"]["adapter_id"]
            archive = a.get(f"/v1/adapters/{adapter_id}/download")
            assert archive.status_code == 200
            with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
                assert f"{adapter_id}/adapter_model.safetensors" in tar.getnames()
                config = json.loads(tar.extractfile(f"{adapter_id}/adapter_config.json").read())
            assert config["base_model_name_or_path"] == "tiny"
            audit = a.post("/v1/memo", params={"wait": 60},
                           json={"adapter": adapter_id, "facts": tiny_facts[:1], "max_new_tokens": 32}).json()
            assert audit["status"] == "succeeded"
            assert audit["result"]["mean"] == pytest.approx(f["memo_after"], abs=1e-6)
            with a.stream("GET", f"/v1/unlearn/{job_id}/events", headers={"accept": "text/event-stream"}) as s:
                text = "".join(s.iter_text())
            assert text.count("event: status") == 3 and "event: progress" in text and "event: end" in text

            # tenant B: nothing of A's exists
            for path in (f"/v1/unlearn/{job_id}", f"/v1/unlearn/{job_id}/events", f"/v1/adapters/{adapter_id}",
                         f"/v1/adapters/{adapter_id}/download", f"/v1/memo/{audit['id']}", "/v1/models/tiny"):
                _problem(b.get(path), 404, "not_found")
            _problem(b.post(f"/v1/unlearn/{job_id}/cancel"), 404, "not_found")
            _problem(b.post(f"/v1/memo/{audit['id']}/cancel"), 404, "not_found")
            err = _problem(b.post("/v1/memo", json={"adapter": adapter_id, "facts": tiny_facts[:1]}), 422,
                           "validation_error")
            assert err["errors"][0]["type"] == "unknown_adapter"
            assert b.get("/v1/unlearn").json()["data"] == [] and b.get("/v1/adapters").json()["data"] == []

            # bad requests are 422s before anything is queued
            for bad, loc in (({"method": "gd", "method_params": {"retain_coef": 1}}, "body/method_params"),
                             ({"method": "idk", "method_params": {"refusals_file": "/etc/passwd"}},
                              "body/method_params"),
                             ({"inverter": {"kind": "openai", "model": "m", "base_url": "https://x.example/v1"}},
                              "body/inverter/base_url")):
                e = _problem(a.post("/v1/unlearn", json={**body, **bad}), 422, "validation_error")
                assert e["errors"][0]["loc"] == loc, e

            # a revoked key is refused
            r = subprocess.run([MEOW, "keys", "revoke", kb["id"]], env=env, capture_output=True, text=True,
                               timeout=120)
            assert r.returncode == 0, r.stderr
            _problem(b.get("/v1/models"), 401, "unauthorized")
    time.sleep(0.5)
    r = subprocess.run(["pgrep", "-f", f"MEOW_DATA_DIR={data}"], capture_output=True)  # nothing left behind
    assert r.stdout == b""
    assert ROOT.is_dir()


def test_meow_serve_defaults_to_auth_off_and_says_so(tmp_path: Path, model_root: Path):
    env = _env(model_root, tmp_path / "data")
    with serving(tmp_path, env, "--no-worker", probe="/healthz") as (base, log, _proc):
        assert "AUTHENTICATION IS OFF" in log.read_text()
        assert httpx.get(f"{base}/v1/models").status_code == 200  # no key needed
        # alive, but with no worker it is not ready: a job sent now would only wait
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok", "workers": 0}
        r = httpx.get(f"{base}/readyz")
        assert r.status_code == 503 and r.json()["code"] == "no_worker", r.text


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_stops_the_embedded_worker_and_the_broker_follows_the_database(tmp_path: Path, model_root: Path):
    """``kill <meow serve>`` (SIGTERM, as systemd or docker send) stops its worker too; and the embedded
    broker lies beside the database it serves, not in the data folder a second server may share."""
    import sqlite3

    data, dbs = tmp_path / "data", tmp_path / "dbs"
    dbs.mkdir()
    env = _env(model_root, data, MEOW_DATABASE_URL=f"sqlite:///{dbs / 'other.db'}")
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([MEOW, "serve", "--port", str(port), "--data-dir", str(data)], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 120, "meow serve and its worker to be ready")
        assert f"broker    sqla+sqlite:///{dbs / 'other.db'}.broker.db" in log.read_text()
        assert (dbs / "other.db.broker.db").is_file() and not list(data.glob("*broker*"))
        with sqlite3.connect(dbs / "other.db") as db:
            (worker_pid,) = db.execute("SELECT pid FROM workers").fetchone()
        assert _pid_alive(worker_pid)
        proc.send_signal(signal.SIGTERM)  # the server process only, not its group
        proc.wait(30)
        assert proc.returncode == 0, log.read_text()[-2000:]
        wait_for(lambda: not _pid_alive(worker_pid), 10, "the embedded worker to exit after SIGTERM")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in _leftovers(data):
            os.kill(p, signal.SIGKILL)


def _leftovers(data: Path) -> list[int]:
    """Any process left with this test's data folder in its environment (cleanup only)."""
    import psutil

    left = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("MEOW_DATA_DIR") == str(data.resolve()):
                left.append(p.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return left
