"""``meow serve``: the whole service on one machine with no external services.

Embedded mode = the production code paths with local backends: SQLite for the database, kombu's
SQLAlchemy transport over a second SQLite file for the broker (``sqla+sqlite://``), and a real
``celery worker -P prefork -c 1`` subprocess running the same tasks as production workers. The
API runs in this process under uvicorn. Point ``MEOW_DATABASE_URL``/``MEOW_BROKER_URL`` at
Postgres/Redis and the same command runs an API plus one local worker against them.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from service.settings import Settings


def node_name(prefix: str = "meow") -> str:
    """``<prefix>-<pid>-<random>@%h``: unique per process, so two workers started with one prefix on
    one host never share a node name (jobs record it; a starting worker reaps only a gone node's jobs)."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}@%h"


def worker_command(settings: Settings, name: str = "meow", loglevel: str = "INFO",
                   concurrency: int = 1, *, unique: bool = True) -> list[str]:
    """``unique=False`` uses ``name@%h`` as given (an operator pinning a node name)."""
    node = node_name(name) if unique else f"{name}@%h"
    return [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-P", "prefork", "-c", str(concurrency),
            "-Q", settings.queue, "-n", node, "--loglevel", loglevel, "--without-gossip", "--without-mingle"]


def prepare(settings: Settings, *, seed_demo: bool = True) -> None:
    """Create folders, migrate the database, register ``demo:tiny``."""
    from api.auth import AUTH_OFF
    from api.services import ensure_model
    from service import migrate
    from service.db import session_scope

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    if seed_demo:  # shared, so every tenant can use it
        with session_scope(settings.db_url) as s:
            ensure_model(s, AUTH_OFF, "demo:tiny", "demo:tiny", settings, shared=True)


def start_worker(settings: Settings, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MEOW_DATA_DIR": str(settings.data_dir.resolve()), "MEOW_DATABASE_URL": settings.db_url,
           "MEOW_BROKER_URL": settings.broker, "MEOW_ARTIFACT_DIR": str(settings.artifacts),
           "MEOW_QUEUE": settings.queue}
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(worker_command(settings, name="embedded"), env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Warm shutdown (SIGTERM lets the current job finish its step); kill after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


AUTH_OFF_WARNING = """
  !!! AUTHENTICATION IS OFF (MEOW_AUTH=off) !!!
  Anyone who can reach this port acts as the one tenant 'default' with every scope.
  For anything but local use: MEOW_AUTH=required, then `meow keys create --tenant T --scopes ...`.
"""


def banner(host: str, port: int, settings: Settings) -> str:
    base = f"http://{host}:{port}"
    auth = AUTH_OFF_WARNING if settings.auth == "off" else (
        "\n  auth      required: send Authorization: Bearer <key> (meow keys create --tenant T --scopes ...)\n")
    header = "" if settings.auth == "off" else " -H \"Authorization: Bearer $MEOW_KEY\""
    return f"""meow is listening on {base}  (API docs: {base}/docs)
  database  {settings.db_url}
  broker    {settings.broker}
  artifacts {settings.artifacts}
{auth}
Try it:
  curl -s {base}/v1/unlearn{header} -H 'Content-Type: application/json' -d '{{
    "model": "demo:tiny",
    "facts": [{{"question": "Where was Elara Voss born?", "answer": "Elara Voss was born in Port Meridian."}}],
    "finetune": {{"mode": "lora", "max_steps": 40}}}}'
  curl -s {base}/v1/unlearn/<job id>{header}
"""



def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)  # a requested stop, like Ctrl-C: ``serve``'s finally stops the worker


def _die_with_parent() -> None:
    """In the worker child before exec (Linux): SIGTERM it when ``meow serve`` dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the signal handlers and atexit in ``serve`` still stop it


def serve(settings: Settings, host: str, port: int, *, with_worker: bool = True, seed_demo: bool = True,
          log_level: str = "info") -> None:
    import uvicorn

    from api.main import create_app

    prepare(settings, seed_demo=seed_demo)
    # uvicorn restores the handlers it found and re-raises SIGTERM after its own shutdown: with the
    # default handler that killed this process before ``finally`` stopped the worker. Ours turns it
    # into a normal exit, so the worker is stopped like on Ctrl-C (atexit covers other exits).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    worker = start_worker(settings, settings.data_dir / "worker.log") if with_worker else None
    if worker is not None:
        atexit.register(stop_worker, worker)
    try:
        if worker is not None:
            time.sleep(0.5)
            if worker.poll() is not None:
                raise SystemExit(f"meow: error: the worker exited at start; see {settings.data_dir / 'worker.log'}")
        print(banner(host, port, settings), flush=True)
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
    finally:
        if worker is not None:
            stop_worker(worker)
