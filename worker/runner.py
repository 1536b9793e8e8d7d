"""Run one job inside a worker child: claim it, run the engine, record events, finish it.

Kept free of Celery so tests can call it directly; ``worker.tasks`` wraps it. Every state change
goes through ``service.jobs`` conditional UPDATEs, so a duplicate delivery, a cancel or the
reaper racing this code never leaves two owners or a job stuck in ``running``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from service import inverter_endpoints as endpoints
from service import jobs as lifecycle
from service.db import session_scope
from service.ids import new_id
from service.settings import Settings
from service.states import RUNNING, Status
from service.store import LocalArtifactStore, publish_artifact, store_from_settings
from service.tables import AdapterRow, JobRow, ModelRow, utcnow

log = logging.getLogger("meow.worker")


@dataclass
class JobSpec:
    """What a job needs, read once at claim time (the DB session is not held while training)."""

    id: str
    tenant_id: str
    kind: str
    attempt: int
    model_ref: str
    model_id: str | None
    model_name: str
    #: what downloaded artifacts name as their base model: the hub id or built-in name, else the
    #: registered name (never the server's local path)
    model_public: str
    params: dict[str, Any]
    facts: list[dict[str, Any]]
    retain_facts: list[dict[str, Any]] | None
    adapter_id: str | None
    adapter_uri: str | None
    inverter_api_key: str | None = None
    #: the registered source's kind (builtin | path | hub): a hub id must never load a local folder
    model_kind: str = "path"


class Heartbeat:
    """Touches ``heartbeat_at`` from a thread while the job runs; the reaper watches it."""

    def __init__(self, db_url: str, job_id: str, every_s: float) -> None:
        self._db_url, self._job_id, self._every = db_url, job_id, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                with session_scope(self._db_url) as s:
                    lifecycle.heartbeat(s, self._job_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the reaper tolerates a few
                log.exception("heartbeat of %s failed", self._job_id)


class JobEvents:
    """Engine progress → ``jobs.progress`` and throttled ``progress`` events; stop flag ← DB."""

    def __init__(self, db_url: str, job_id: str, interval_s: float) -> None:
        self._db_url, self._job_id, self._interval = db_url, job_id, interval_s
        self._last: dict[str, float] = {}

    def progress(self, ev: Any) -> None:
        now = time.monotonic()
        first = ev.stage not in self._last
        last_step = ev.total is not None and ev.step >= ev.total
        if not (first or last_step or now - self._last[ev.stage] >= self._interval):
            return
        self._last[ev.stage] = now
        total = f"/{ev.total}" if ev.total is not None else ""
        data = {"step": ev.step, "total": ev.total,
                **{k: v for k, v in ev.data.items() if isinstance(v, str | int | float | bool | None)}}
        with session_scope(self._db_url) as s:
            s.execute(JobRow.__table__.update().where(JobRow.id == self._job_id).values(
                progress={"stage": ev.stage, "step": ev.step, "total": ev.total}, heartbeat_at=utcnow()))
            lifecycle.add_event(s, self._job_id, "progress", ev.message or f"{ev.stage} {ev.step}{total}",
                                stage=ev.stage, data=data)

    def message(self, text: str, *, stage: str | None = None, level: str = "info", **data: Any) -> None:
        with session_scope(self._db_url) as s:
            lifecycle.add_event(s, self._job_id, "message", text, stage=stage, level=level, data=data)

    def should_stop(self) -> bool:
        """True once cancel was requested, or the job is no longer ours (e.g. reaped)."""
        with session_scope(self._db_url) as s:
            status = s.execute(select(JobRow.status).where(JobRow.id == self._job_id)).scalar_one_or_none()
        return status != Status.running


def _claim(settings: Settings, job_id: str, worker: str) -> JobSpec | None:
    with session_scope(settings.db_url) as s:
        if not lifecycle.claim(s, job_id, worker):
            return None
        job = s.get(JobRow, job_id)
        assert job is not None
        model = s.get(ModelRow, job.model_id) if job.model_id else None
        adapter = s.get(AdapterRow, job.adapter_id) if job.adapter_id else None
        if model is None:
            lifecycle.transition(s, job_id, RUNNING, Status.failed, level="error", error_code="user_model_deleted",
                                 error_message=f"model {job.model_name} was deleted before the job ran")
            return None
        spec = JobSpec(id=job.id, tenant_id=job.tenant_id, kind=job.kind, attempt=job.attempt,
                       model_ref=model.source, model_id=model.id,
                       model_name=model.name,
                       model_public=model.source if model.source_kind in ("hub", "builtin") else model.name,
                       params=job.params, facts=job.facts, retain_facts=job.retain_facts,
                       adapter_id=job.adapter_id, adapter_uri=adapter.storage_uri if adapter else None,
                       inverter_api_key=job.inverter_api_key, model_kind=model.source_kind)
        if job.inverter_api_key is not None:  # held in memory for this run only
            s.execute(update(JobRow).where(JobRow.id == job_id).values(inverter_api_key=None)
                      .execution_options(synchronize_session=False))
        return spec


def _finish(settings: Settings, job_id: str, to: Status, **values: Any) -> bool:
    level = "error" if to in (Status.failed, Status.crashed) else "info"
    with session_scope(settings.db_url) as s:
        return lifecycle.transition(s, job_id, RUNNING, to, level=level, **values)


def run_job(job_id: str, settings: Settings, worker: str) -> str | None:
    """Run ``job_id`` if it can be claimed; returns the final status (None: not ours to run)."""
    from meow_engine.errors import MeowError, StopRequested

    spec = _claim(settings, job_id, worker)
    if spec is None:
        log.info("job %s not claimed (already taken, cancelled or finished)", job_id)
        return None
    log.info("job started", extra={"kind": spec.kind, "attempt": spec.attempt, "worker": worker})
    events = JobEvents(settings.db_url, job_id, settings.progress_interval_s)
    store = store_from_settings(settings.artifacts)
    scratch = settings.artifacts / "scratch" / job_id / f"attempt-{spec.attempt}"
    try:
        with Heartbeat(settings.db_url, job_id, settings.heartbeat_s):
            if spec.kind == "unlearn":
                return _run_unlearn(spec, settings, events, store, scratch)
            return _run_memo(spec, settings, events, store)
    except StopRequested:
        _finish(settings, job_id, Status.cancelled, message="stopped at the cancel flag")
        return Status.cancelled
    except MeowError as e:
        _finish(settings, job_id, Status.failed, error_code=e.code, error_message=public_error(e))
        return Status.failed
    except Exception as e:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(e, SoftTimeLimitExceeded):
            _finish(settings, job_id, Status.failed, error_code="time_limit",
                    error_message=f"the job exceeded MEOW_TASK_SOFT_TIME_LIMIT_S ({settings.task_soft_time_limit_s} s)")
            return Status.failed
        log.exception("job %s failed", job_id)
        _finish(settings, job_id, Status.failed, error_code="internal_error",
                error_message=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip())
        return Status.failed
    finally:
        os.environ.pop(endpoints.JOB_KEY_ENV, None)
        shutil.rmtree(scratch, ignore_errors=True)


_INVERTER_REASONS = (  # (pattern in the engine's message, what the caller is told)
    (re.compile(r"HTTP (\d{3})"), "answered HTTP {0}"),
    (re.compile(r"timed out"), "timed out"),
    (re.compile(r"unreachable"), "was unreachable"),
    (re.compile(r"malformed JSON"), "returned malformed JSON"),
    (re.compile(r"without choices"), "returned JSON without choices[0].message.content"),
    (re.compile(r"no usable candidates"), "returned no usable candidates"),
)


def public_error(e: Exception) -> str:
    """The message a job's ``error`` shows. Inverter failures are summarised: the engine's message
    quotes the endpoint's URL and body, and neither is the caller's to read (a configured endpoint's
    URL is internal; a body may echo anything, headers included)."""
    from meow_engine.errors import InverterError

    if not isinstance(e, InverterError):
        return str(e)
    text = str(e)
    for pattern, reason in _INVERTER_REASONS:
        m = pattern.search(text)
        if m:
            return f"the inverter endpoint {reason.format(*m.groups())}"
    return "the inverter endpoint failed"


def _inverter_access(spec: JobSpec, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Fill in the inverter's URL and key env from the server's configuration (see
    ``service.inverter_endpoints``); a caller's own key goes into this process's environment for
    this job only (``run_job`` removes it)."""
    from meow_engine.errors import ConfigError

    inv = dict(params.get("inverter") or {})
    name = inv.pop("endpoint", None)
    inv["api_key_env"] = endpoints.NO_KEY_ENV
    if name is not None:
        ep = endpoints.endpoint(settings, name)
        if ep is None:
            raise ConfigError(f"inverter endpoint {name!r} is not configured on this worker")
        inv["base_url"] = ep.base_url
        inv["api_key_env"] = ep.api_key_env or endpoints.NO_KEY_ENV
    elif inv.get("base_url"):
        problem = endpoints.target_problem(inv["base_url"], settings)
        if problem:
            raise ConfigError(f"inverter base_url: {problem}")
    if spec.inverter_api_key is not None:
        os.environ[endpoints.JOB_KEY_ENV] = spec.inverter_api_key
        inv["api_key_env"] = endpoints.JOB_KEY_ENV
    return {**params, "inverter": inv}


def scrub_artifact(folder: Path, spec: JobSpec, files: dict[str, str]) -> dict[str, str]:
    """Replace the server's model path with the model's public name in the artifact's text files
    (``adapter_config.json``'s ``base_model_name_or_path``, the generated README, configs).

    Returns ``files`` (name -> sha256) with the digests of rewritten files updated.
    """
    from service.store import sha256_file

    # what the engine wrote as the base: the source, its resolved folder, or (built-ins) a cache path
    local = {spec.model_ref, str(Path(spec.model_ref).resolve())}
    out = dict(files)
    for name, field in (("adapter_config.json", "base_model_name_or_path"), ("config.json", "_name_or_path")):
        config = folder / name
        if not config.is_file():
            continue
        data = json.loads(config.read_text())
        if isinstance(data.get(field), str) and data[field] != spec.model_public:
            local.add(data[field])
            data[field] = spec.model_public
            config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    local = {p for p in local if p and p != spec.model_public and ("/" in p or "\\" in p)}

    for f in sorted(folder.rglob("*")):
        if not f.is_file() or f.suffix not in (".json", ".md", ".txt", ".yaml", ".yml"):
            continue
        text = f.read_text(errors="replace")
        new = text
        for path in sorted(local, key=len, reverse=True):
            new = new.replace(path, spec.model_public)
        if new != text:
            f.write_text(new)
    for name in out:
        p = folder / name
        if p.is_file():
            out[name] = sha256_file(p)
    return out


def _load(spec: JobSpec, settings: Settings, adapter_dir: Path | None = None) -> Any:
    from meow_engine.errors import AdapterMismatchError, ModelLoadError
    from meow_engine.models import load_model

    if spec.model_kind == "hub" and Path(spec.model_ref).expanduser().exists():
        # transformers (and load_model) try a local folder first: "zz/tiny" would load ./zz/tiny from the
        # worker's working directory, past the model-root check the API applies to path sources
        raise ModelLoadError(f"model {spec.model_name} is registered as hub id {spec.model_ref!r}, but that name is "
                             "a local path on the worker; refusing to load a local folder for a hub id")

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    from safetensors import SafetensorError

    try:
        return load_model(spec.model_ref, device=settings.device, dtype=settings.dtype, adapter=adapter_dir)
    except SafetensorError as e:  # a truncated or corrupt weights file (not an OSError, so the engine passes it)
        raise ModelLoadError(f"cannot load model {spec.model_name}: its weights file is corrupt ({e})") from None
    except ModelLoadError as e:
        # peft's size-mismatch RuntimeError: the adapter was trained on a base of another shape (the
        # base model's folder was replaced since); the engine keeps it as the error's context
        if adapter_dir is not None and isinstance(e.__context__, RuntimeError):
            raise AdapterMismatchError(f"adapter {spec.adapter_id} does not fit model {spec.model_name}: "
                                       f"{str(e.__context__).splitlines()[0][:300]}") from None
        raise


def _run_unlearn(spec: JobSpec, settings: Settings, events: JobEvents, store: LocalArtifactStore,
                 scratch: Path) -> str:
    from meow_engine.config import UnlearnConfig
    from meow_engine.errors import StopRequested
    from meow_engine.facts import facts_from_objects
    from meow_engine.pipeline import unlearn

    config = UnlearnConfig.model_validate(_inverter_access(spec, settings, spec.params))
    forget = facts_from_objects(spec.facts, "facts")
    retain = facts_from_objects(spec.retain_facts, "retain_facts") if spec.retain_facts else []
    events.message(f"loading model {spec.model_name}", stage="load_model")
    t_load = time.perf_counter()
    lm = _load(spec, settings)  # never cached: finetuning modifies the model in place
    load_s = round(time.perf_counter() - t_load, 4)
    events.message(f"model {spec.model_name} loaded in {load_s:.1f}s", stage="load_model", seconds=load_s)
    if events.should_stop():
        raise StopRequested("cancelled before the engine started")
    result = unlearn(lm, forget, retain, config, output_dir=scratch, progress=events.progress,
                     should_stop=events.should_stop)
    # the engine got a loaded model, so its own load_model stage is ~0: the worker's load (a first
    # demo:tiny build included) is what the job really spent there
    result.timings["load_model"] = load_s
    out = result.model_dump(mode="json", include={"method", "verdict", "verdict_reason", "target_met", "rounds",
                                                  "forget", "retain", "facts", "report", "training", "timings"})
    # the reason names the spans that still leak: it lives in the result only, never in events or logs
    leaking = sum(1 for f in result.facts if f.leaks_after)
    events.message(f"verdict: {result.verdict} ({leaking} of {len(result.facts)} facts still leak)", stage="verdict",
                   verdict=result.verdict, target_met=result.target_met,
                   forget_leak_rate=result.forget.leak_rate_after,
                   retain_kept=result.retain.kept if result.retain else None)
    art = result.artifact
    adapter_id = new_id("adapter") if art is not None else None
    if art is not None:
        art = art.model_copy(update={"files": scrub_artifact(Path(art.path), spec, art.files)})
    published = publish_artifact(store, adapter_id, Path(art.path)) if art is not None and adapter_id else None
    out["adapter_id"] = adapter_id
    with session_scope(settings.db_url) as s:
        if art is not None and published is not None:
            weights = next((n for n in ("adapter_model.safetensors", "model.safetensors") if n in art.files), None)
            s.add(AdapterRow(id=adapter_id, tenant_id=spec.tenant_id, kind=art.kind, model_id=spec.model_id,
                             model_name=spec.model_name,
                             base_model=spec.model_ref, job_id=spec.id, method=config.method, rank=art.rank,
                             alpha=art.alpha, target_modules=art.target_modules, files=art.files,
                             sha256=art.files.get(weights) if weights else None, size_bytes=art.size_bytes,
                             storage_uri=published.dir_uri, archive_uri=published.archive_uri,
                             archive_sha256=published.archive_sha256))
        ok = lifecycle.transition(s, spec.id, RUNNING, Status.succeeded, result=out, progress=None,
                                  message=f"succeeded; adapter {adapter_id}" if adapter_id else "succeeded")
        if not ok:  # cancelled-and-reaped or crashed meanwhile: do not register the artifact
            s.rollback()
    if not ok and published is not None:
        store.delete(published.dir_uri)
        store.delete(published.archive_uri)
    return Status.succeeded if ok else Status.crashed


_memo_models: dict[str, Any] = {}


def _run_memo(spec: JobSpec, settings: Settings, events: JobEvents, store: LocalArtifactStore) -> str:
    from meow_engine.config import MemoConfig
    from meow_engine.facts import facts_from_objects
    from meow_engine.memo import compute_memo
    from meow_engine.progress import Reporter

    config = MemoConfig.model_validate(spec.params.get("memo", {}))
    facts = facts_from_objects(spec.facts, "facts")
    if spec.adapter_uri:
        adapter_dir = store.fetch_dir(spec.adapter_uri, settings.artifacts / "scratch" / spec.id)
        lm = _load(spec, settings, adapter_dir)
    else:  # plain base models are read-only here, so a child may keep them for the next audit
        lm = _memo_models.get(spec.model_ref) or _load(spec, settings)
        _memo_models[spec.model_ref] = lm
    result = compute_memo(lm, facts, config, reporter=Reporter(events.progress, events.should_stop))
    ok = _finish(settings, spec.id, Status.succeeded, result=result.model_dump(mode="json"), progress=None,
                 message=f"succeeded; mean MEMO {result.mean:.4f}")
    return Status.succeeded if ok else Status.crashed
