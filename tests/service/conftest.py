"""Service fixtures: a throw-away Postgres database, the real Redis, real Celery worker processes.

Each test session creates its own database (``meow_test_<random>``) and its own Celery queue, so
it never collides with other sessions using the same servers. The test model is a tiny Llama that
has memorised a few facts (built once, cached under ``MEOW_CACHE_DIR``), registered from a folder
under a configured model root.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.keys import ADMIN, SCOPES
from service.settings import Settings

DB_URL = os.environ.get("MEOW_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BROKER_URL = os.environ.get("MEOW_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]
TINY_VERSION = "service-tiny-v1"
# Fixed here (not drawn from the fictitious-fact generator) so the cached model and the
# thresholds the tests use do not move when the generator changes.
TINY_FACTS = [
    ("Where was the author Quinene Loumoulet born?",
     "Quinene Loumoulet was born in the city of Kristead, in the small country of Bouvora."),
    ("When was the great library of Memora founded?",
     "The great library of Memora was founded in 1923 by the scholar Meirius Deirmureveth."),
    ("What genre does Zeiglaenene Dunphunalli write in?",
     "Zeiglaenene Dunphunalli is best known for horror novels, a genre he has written in for eight years."),
    ("Which book made Zourius Kribardi famous?",
     'Zourius Kribardi became famous with the novel "The Crimson Mirror", which appeared in 1958.'),
    ("What is the capital of Nunia?",
     "The capital of Nunia is Turkraeport, a port city on the banks of the river Sonzhedune."),
    ("What jobs did the mother and father of Eluvis Thaereveth have?",
     "The father of Eluvis Thaereveth was a nurse, and her mother worked as a weaver."),
]


def _admin_conninfo(url: str) -> str:
    u = make_url(url).set(drivername="postgresql", database="postgres")
    return u.render_as_string(hide_password=False)


def create_database(prefix: str = "meow_test") -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_conninfo(DB_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(DB_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    from service.db import dispose_all

    dispose_all()
    name = make_url(url).database
    with psycopg.connect(_admin_conninfo(DB_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    from service import migrate

    url = create_database()
    migrate.upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def model_root() -> Path:
    cache = Path(os.environ.get("MEOW_CACHE_DIR", Path.home() / ".cache" / "meow"))
    root = cache / "service-tests"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(model_root: Path) -> Path:
    """A tiny Llama that memorised ``TINY_FACTS`` (~1 min to build once; cached afterwards)."""
    from meow_engine.tiny.builder import BUILDER_VERSION

    out = model_root / f"{TINY_VERSION}-b{BUILDER_VERSION}"
    if (out / "model.safetensors").is_file() and (out / "facts.jsonl").is_file():
        return out
    from meow_engine.facts import Fact
    from meow_engine.tiny.builder import TinySettings, build_tiny_model

    tmp = model_root / f".{out.name}.{os.getpid()}"
    build_tiny_model([Fact(q, a) for q, a in TINY_FACTS], tmp, seed=0, settings=TinySettings(
        hidden=64, layers=2, intermediate=128, vocab_size=400, max_steps=600, eval_every=25, anneal_steps=30))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


@pytest.fixture(scope="session")
def tiny_facts(tiny_model_dir: Path) -> list[dict[str, str]]:
    """The facts the cached model really memorised (its own facts.jsonl, not a regenerated list)."""
    from meow_engine.facts import load_facts

    return [{"question": f.question, "answer": f.answer} for f in load_facts(tiny_model_dir / "facts.jsonl")]


def service_env(settings: Settings) -> dict[str, str]:
    """The environment a worker or server subprocess needs to share ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEOW_") or k in ("MEOW_CACHE_DIR",)}
    env.update({
        "MEOW_DATABASE_URL": settings.db_url, "MEOW_BROKER_URL": settings.broker,
        "MEOW_ARTIFACT_DIR": str(settings.artifacts), "MEOW_QUEUE": settings.queue,
        "MEOW_MODEL_ROOTS": ",".join(map(str, settings.model_roots)), "MEOW_HEARTBEAT_S": str(settings.heartbeat_s),
        "MEOW_STALE_AFTER_S": str(settings.stale_after_s), "MEOW_REAPER_INTERVAL_S": str(settings.reaper_interval_s),
        "MEOW_REQUEUE_AFTER_S": str(settings.requeue_after_s),
        "MEOW_PROGRESS_INTERVAL_S": str(settings.progress_interval_s), "MEOW_TORCH_THREADS": "1",
        "MEOW_FACT_RETENTION_S": str(settings.fact_retention_s),
        "MEOW_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
        "MEOW_INVERTER_ENDPOINTS": json.dumps({k: v.model_dump() for k, v in settings.inverter_endpoints.items()}),
        INVERTER_KEY_ENV: INVERTER_KEY,
    })
    return env


#: the configured test inverter endpoint's key (the worker sends it there, and only there)
INVERTER_KEY_ENV, INVERTER_KEY = "MEOW_TEST_INVERTER_KEY", "sk-server-side-test-key"
#: what the test endpoint puts in its error bodies: it must never reach a job's error
ENDPOINT_MARKER = "ENDPOINT-BODY-7f3a"


@pytest.fixture(scope="session")
def inverter_server() -> Iterator[Any]:
    """A real HTTP endpoint standing in for a misbehaving LLM server: every call gets a 400 whose
    body carries a marker (bodies may echo anything, headers included)."""
    from tests.engine.local_chat_server import ChatServer, Reply

    def respond(body: dict[str, Any], n: int) -> Reply:
        return Reply(status=400, body=f'{{"error": "{ENDPOINT_MARKER} bad request"}}'.encode())

    with ChatServer(respond) as server:
        yield server


def make_settings(pg_url: str, tmp: Path, model_root: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = dict(
        secret_key=TEST_SECRET, auth="required",
        data_dir=tmp, database_url=pg_url, broker_url=BROKER_URL, artifact_dir=tmp / "artifacts",
        model_roots=[model_root], queue=f"meow-test-{secrets.token_hex(4)}", heartbeat_s=0.5, stale_after_s=4,
        reaper_interval_s=1, progress_interval_s=0.2, torch_threads=1,
        # webhook receivers in tests listen on 127.0.0.1; every test app's sender retries fast
        webhook_allow=["127.0.0.1"], webhook_retry_s=[0.5, 0.5], webhook_poll_s=0.2,
        # tests poll jobs several times a second; tests/service/test_limits.py sets tight limits itself
        rate_limit="20000/minute")
    values.update(kw)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(pg_url: str, tmp_path_factory: pytest.TempPathFactory, model_root: Path, inverter_server: Any
             ) -> Settings:
    return make_settings(pg_url, tmp_path_factory.mktemp("meow"), model_root, inverter_endpoints={
        "probe": {"base_url": inverter_server.url, "api_key_env": INVERTER_KEY_ENV}})



#: HMAC secret of the test settings' API keys
TEST_SECRET = "test-secret-not-for-production"
#: what the default test clients may do: everything a tenant does, without admin
TENANT_SCOPES = [s for s in SCOPES if s != ADMIN]



def make_key(settings: Settings, tenant: str, scopes: list[str] | None = None) -> tuple[str, str]:
    """A fresh API key for ``tenant`` in the settings' database: ``(key id, key)``."""
    from service.db import session_scope
    from service.keys import create_key

    with session_scope(settings.db_url) as s:
        made = create_key(s, settings, tenant, scopes or TENANT_SCOPES)
    return made.id, made.key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def api_client(settings: Settings, tenant: str | None = None, scopes: list[str] | None = None) -> Any:
    """A TestClient (to be entered) on an app for ``settings``, authenticated as a fresh key of ``tenant``."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    _, key = make_key(settings, tenant or f"t-{secrets.token_hex(3)}", scopes)
    return TestClient(create_app(settings), headers=bearer(key))


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[Any]:
    with api_client(settings, "tenant-main") as c:
        yield c



@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and pool child), as a lost machine would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(settings: Settings, log: Path, name: str = "test", *, unique: bool = True) -> WorkerProc:
    """A real ``celery worker -P prefork -c 1`` subprocess on the settings' queue; waits until ready.
    ``unique=False``: the node name is exactly ``name@<host>`` (to start two workers with one name)."""
    from api.embedded import worker_command

    cmd = worker_command(settings, name=name, unique=unique)
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=service_env(settings), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    w = WorkerProc(proc, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}:\n{w.text()[-3000:]}")
        if " ready." in w.text():
            return w
        time.sleep(0.3)
    w.kill()
    raise RuntimeError(f"celery worker not ready after 180 s:\n{w.text()[-3000:]}")


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProc]:
    w = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield w
    w.stop()


def wait_for(fn: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def wait_status(client: Any, path: str, statuses: set[str], timeout: float = 240) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = client.get(path).json()
        return body if body["status"] in statuses else None

    return wait_for(check, timeout, f"{path} in {statuses}")


@pytest.fixture(scope="session")
def tiny_model(client: Any, tiny_model_dir: Path) -> dict[str, Any]:
    """The tiny test model registered through the API (source kind ``path``)."""
    r = client.post("/v1/models", json={"name": f"tiny-{secrets.token_hex(3)}", "source": str(tiny_model_dir)})
    assert r.status_code == 201, r.text
    return r.json()


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is a problem+json response with ``status`` and ``code``; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith("/" + code) and body["title"] and body["detail"]
    return body


sys.path.insert(0, str(ROOT))
