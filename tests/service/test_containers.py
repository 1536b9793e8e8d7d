"""Dockerfile and docker-compose.yml, checked without a Docker engine: the compose file parses with
the expected services, the image's entrypoint exists and its roles really start."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from conftest import ROOT, wait_for

ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services_and_wiring():
    c = _compose()
    assert set(c["services"]) == {"postgres", "redis", "migrate", "api", "worker"}
    s = c["services"]
    for name in ("migrate", "api", "worker"):
        assert s[name]["image"] == "meow:latest" and s[name]["build"]["context"] == "."
        env = s[name]["environment"]
        assert env["MEOW_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["MEOW_DATABASE_URL"]
        assert env["MEOW_BROKER_URL"].startswith("redis://redis:6379/")
    assert s["migrate"]["command"] == ["migrate"] and s["api"]["command"] == ["api"]
    assert s["worker"]["command"] == ["worker"]
    for name in ("api", "worker"):
        assert s[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert {"artifacts:/artifacts", "models:/models"} <= set(s[name]["volumes"])
    gpu = s["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["driver"] == "nvidia"
    assert s["worker"]["build"]["args"]["TORCH_VARIANT"].startswith("cu")
    assert "noeviction" in s["redis"]["command"]
    assert set(c["volumes"]) >= {"pgdata", "artifacts", "models"}


def test_dockerfile_copies_existing_paths_and_uses_the_entrypoint():
    text = (ROOT / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (.+?) \S+$", text, flags=re.M):
        for p in src.split():
            assert (ROOT / p).exists(), p
    assert 'ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]' in text
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in text
    assert os.access(ENTRYPOINT, os.X_OK)
    assert subprocess.run(["bash", "-n", str(ENTRYPOINT)]).returncode == 0
    roles = set(re.findall(r"^\s+(\w+)\)$", ENTRYPOINT.read_text(), flags=re.M))
    assert {"api", "worker", "migrate"} <= roles


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEOW_")}
    env.update({"MEOW_DATA_DIR": str(tmp), "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"})
    return env


def test_entrypoint_migrate_and_api_roles_run(tmp_path: Path):
    env = _env(tmp_path)
    r = subprocess.run([str(ENTRYPOINT), "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "meow.db").is_file()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update({"MEOW_HOST": "127.0.0.1", "MEOW_PORT": str(port), "MEOW_API_WORKERS": "1"})
    proc = subprocess.Popen([str(ENTRYPOINT), "api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["status"] == "ok"
            except httpx.TransportError:
                return False

        wait_for(up, 60, "the api role to answer")
    finally:
        proc.terminate()
        proc.wait(20)
