"""``meow serve`` as a user runs it: a subprocess with SQLite, the SQLite broker and its own
worker subprocess, driven over real HTTP from registration to a downloaded adapter."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, wait_for

pytestmark = pytest.mark.slow

CANDIDATES = [["Nobody recorded any of this; the only registry burned in a fire long ago.",
               "It all happened on a ship crossing the northern sea during a storm."]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_meow_serve_end_to_end(tmp_path: Path, model_root: Path, tiny_model_dir: Path, tiny_facts):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEOW_")}
    env.update({"MEOW_MODEL_ROOTS": str(model_root), "MEOW_TORCH_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "MEOW_CACHE_DIR": os.environ.get("MEOW_CACHE_DIR", str(model_root.parent)),
                "PYTHONUNBUFFERED": "1"})
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "meow"), "serve", "--port", str(port),
                                 "--data-dir", str(data)], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 120, "meow serve to answer /readyz")
        banner = log.read_text()
        assert f"listening on {base}" in banner and "curl -s" in banner and "sqlite" in banner
        assert (data / "meow.db").is_file()

        with httpx.Client(base_url=base, timeout=30) as http:
            names = [m["name"] for m in http.get("/v1/models").json()["data"]]
            assert "demo:tiny" in names  # seeded at start
            m = http.post("/v1/models", json={"name": "tiny", "source": str(tiny_model_dir)})
            assert m.status_code == 201, m.text
            r = http.post("/v1/unlearn", json={
                "model": "tiny", "facts": tiny_facts[:1],
                "inverter": {"kind": "given", "n": 2, "candidates": CANDIDATES},
                "selection": {"k": 1, "rows_per_qa": 2}, "memo": {"max_new_tokens": 32},
                "finetune": {"mode": "lora", "max_steps": 30, "lr": 1e-3}})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            job = wait_for(lambda: (lambda j: j if j["status"] in ("succeeded", "failed", "crashed") else None)(
                http.get(f"/v1/unlearn/{job_id}").json()), 300, "the embedded job to finish")
            assert job["status"] == "succeeded", (job["error"], (data / "worker.log").read_text()[-3000:])
            f = job["result"]["forget"]
            assert f["memo_after"] < f["memo_before"]
            adapter_id = job["result"]["adapter_id"]
            archive = http.get(f"/v1/adapters/{adapter_id}/download")
            assert archive.status_code == 200
            with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
                assert f"{adapter_id}/adapter_model.safetensors" in tar.getnames()
            audit = http.post("/v1/memo", params={"wait": 60},
                              json={"adapter": adapter_id, "facts": tiny_facts[:1], "max_new_tokens": 32}).json()
            assert audit["status"] == "succeeded"
            assert audit["result"]["mean"] == pytest.approx(f["memo_after"], abs=1e-6)
            with http.stream("GET", f"/v1/unlearn/{job_id}/events", headers={"accept": "text/event-stream"}) as s:
                text = "".join(s.iter_text())
            assert text.count("event: status") == 3 and "event: progress" in text and "event: end" in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, log.read_text()[-2000:]
    time.sleep(0.5)
    r = subprocess.run(["pgrep", "-f", f"MEOW_DATA_DIR={data}"], capture_output=True)  # nothing left behind
    assert r.stdout == b""
    assert ROOT.is_dir()
