"""What the routes do with the database: look-ups, job creation with enqueue-after-commit,
cancel, pagination, serialisation. Routes stay thin; reads of tenant resources go through
``api.repository`` (the one place that filters by tenant)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import repository as repo
from api.auth import Principal
from api.problems import ApiProblem, invalid, not_found
from api.schemas import (
    Adapter,
    Event,
    FactIn,
    FactSet,
    JobError,
    MemoAudit,
    Model,
    Progress,
    Purge,
    UnlearnCreate,
    UnlearnJob,
    unix,
)
from meow_engine.inverters.guided import GUIDE_TARGET
from service import inverter_endpoints as endpoints
from service import jobs as lifecycle
from service import logs
from service.catalog import BUILTIN_MODELS
from service.ids import new_id
from service.queue import send_job
from service.settings import Settings
from service.states import RUNNING, TERMINAL, Status
from service.tables import AdapterRow, JobEventRow, JobRow, ModelRow, utcnow

log = logging.getLogger("meow.api")

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
KIND_NAMES = {"unlearn": "unlearn job", "memo": "memo audit"}


# ---------------------------------------------------------------- models
def classify_source(source: str, settings: Settings) -> tuple[str, str]:
    """(kind, normalised source) for a model source, or a 422 explaining what is accepted."""
    if source in BUILTIN_MODELS:
        return "builtin", source
    if source.startswith(("/", "~", "./", "../")) or source in (".", ".."):
        roots = [r.expanduser().resolve() for r in settings.model_roots]
        where = ", ".join(map(str, roots)) or "none configured (set MEOW_MODEL_ROOTS)"
        outside = invalid("body/source", f"{source}: local models must lie under a model root ({where})",
                          "path_outside_roots")
        # Lexically first: the answer for a path outside the roots never depends on what exists
        # there (no probing the server's file system), and odd paths are 422s, not OSError 500s.
        try:
            lexical = Path(os.path.abspath(Path(source).expanduser()))
        except (RuntimeError, ValueError):  # ~user of no such user
            raise outside from None
        lexical_roots = roots + [Path(os.path.abspath(r.expanduser())) for r in settings.model_roots]
        if not any(lexical.is_relative_to(r) for r in lexical_roots):
            raise outside
        try:
            resolved = lexical.resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, not a folder, name too long, symlink loop
            raise invalid("body/source", f"{source}: no such folder", "path_not_found") from None
        if not any(resolved.is_relative_to(r) for r in roots):  # a symlink out of the roots
            raise outside
        try:
            is_model = (resolved / "config.json").is_file()
        except OSError:
            is_model = False
        if not is_model:
            raise invalid("body/source", f"{source}: not a Hugging Face model folder (no config.json)",
                          "not_a_model_folder")
        return "path", str(resolved)
    if HUB_ID.match(source):
        if not settings.allow_hub_models:
            raise invalid("body/source", "Hugging Face ids are disabled on this server (MEOW_ALLOW_HUB_MODELS)",
                          "hub_disabled")
        return "hub", source
    raise invalid("body/source", f"{source!r} is not a built-in ({', '.join(BUILTIN_MODELS)}), a local folder "
                  "path, or a Hugging Face id (org/name)", "unknown_source")


def find_model(session: Session, principal: Principal, ref: str) -> ModelRow | None:
    return repo.find_model(session, principal, ref)


def model_out(row: ModelRow) -> Model:
    return Model(id=row.id, name=row.name, source=row.source, source_kind=row.source_kind,  # type: ignore[arg-type]
                 shared=row.shared, created_at=unix(row.created_at) or 0)


def register_model(session: Session, principal: Principal, name: str, source: str, settings: Settings, *,
                   shared: bool = False) -> ModelRow:
    if shared and not principal.is_admin:
        raise ApiProblem(403, "forbidden", "only an admin key may share a model with every tenant")
    kind, normalised = classify_source(source, settings)
    if repo.own_model_named(session, principal, name) is not None:
        raise ApiProblem(409, "conflict", f"a model named {name!r} already exists")
    row = ModelRow(id=new_id("model"), tenant_id=principal.tenant, shared=shared, name=name, source=normalised,
                   source_kind=kind)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # a concurrent registration of the name won between the check and the insert
        session.rollback()
        raise ApiProblem(409, "conflict", f"a model named {name!r} already exists") from None
    return row


def ensure_model(session: Session, principal: Principal, name: str, source: str, settings: Settings, *,
                 shared: bool = False) -> ModelRow:
    """Register ``name`` unless it exists (``meow serve`` seeding ``demo:tiny``)."""
    row = find_model(session, principal, name)
    return row if row is not None else register_model(session, principal, name, source, settings, shared=shared)


def delete_model(session: Session, principal: Principal, ref: str) -> None:
    row = find_model(session, principal, ref)
    if row is None:
        raise not_found("model", ref)
    if row.tenant_id != principal.tenant and not principal.is_admin:
        raise ApiProblem(403, "forbidden", f"model {row.name} is shared by an admin; only an admin key may "
                         "delete it")
    # Lock the row before looking for jobs: a job being inserted holds a key-share lock on it (its
    # foreign key), so either that job is seen below (409) or its insert waits and then fails
    # (create_job's 422); without the lock a job could slip in between and lose its model.
    if repo.lock_model(session, row.id) is None:
        raise not_found("model", ref)  # deleted meanwhile
    active = repo.active_job_on_model(session, row.id, [Status.queued, Status.running, Status.cancelling])
    if active:
        raise ApiProblem(409, "model_in_use", f"model {row.name} is used by job {active}, which has not "
                         "finished; cancel it or wait")
    session.delete(row)
    session.commit()


def list_models(session: Session, principal: Principal, after: str | None, limit: int) -> tuple[list[ModelRow], bool]:
    return page(session, repo.readable_models(principal), ModelRow.id, after, limit)


# ---------------------------------------------------------------- pagination
def clamp_limit(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))


def page(session: Session, stmt: Select[Any], id_col: Any, after: str | None, limit: int) -> tuple[list[Any], bool]:
    """Newest first by time-sortable id; ``after`` is the last id of the previous page."""
    if after:
        stmt = stmt.where(id_col < after)
    rows = list(session.execute(stmt.order_by(id_col.desc()).limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit


# ---------------------------------------------------------------- jobs
def check_facts(facts: list[FactIn], loc: str, max_count: int, settings: Settings) -> None:
    if len(facts) > max_count:
        raise invalid(loc, f"{len(facts)} facts given; the limit is {max_count}", "too_many_facts")
    for i, f in enumerate(facts):
        for field in ("question", "answer"):
            n = len(getattr(f, field))
            if n > settings.max_text_chars:
                raise invalid(f"{loc}/{i}/{field}", f"{n} characters; the limit is {settings.max_text_chars}",
                              "text_too_long")


def resolve_model(session: Session, principal: Principal, ref: str, loc: str = "body/model") -> ModelRow:
    row = find_model(session, principal, ref)
    if row is None:
        raise invalid(loc, f"no model {ref!r}; register it with POST /v1/models", "unknown_model")
    return row


def unlearn_params(session: Session, principal: Principal, settings: Settings,
                   body: UnlearnCreate) -> tuple[dict[str, Any], str | None]:
    """The job's stored params and the caller's own inverter key (kept apart: never stored in params).

    Requests never name worker paths (``hf`` inverter models are registered models) nor server
    environment variables; inverter endpoints are configured ones, picked by name, or a public URL
    with the caller's own key (``service.inverter_endpoints``).
    """
    inv = body.inverter
    if "api_key_env" in inv.model_fields_set:
        raise invalid("body/inverter/api_key_env", "requests never name server environment variables; pick a "
                      "configured endpoint (inverter.endpoint) or bring your own key (inverter.api_key)",
                      "forbidden_env")
    api_key = inv.api_key.get_secret_value() if inv.api_key is not None else None
    name = inv.endpoint
    configured = ", ".join(sorted(settings.inverter_endpoints)) or "none (MEOW_INVERTER_ENDPOINTS)"
    if name is not None:
        if endpoints.endpoint(settings, name) is None:
            raise invalid("body/inverter/endpoint", f"no inverter endpoint {name!r}; configured: {configured}",
                          "unknown_endpoint")
        if inv.base_url or api_key:
            raise invalid("body/inverter/endpoint", "a configured endpoint brings its own URL and key; leave "
                          "base_url and api_key out", "endpoint_conflict")
    elif inv.base_url:
        name = endpoints.configured_name(settings, inv.base_url)
        if name is None and api_key is None:
            raise invalid("body/inverter/base_url", "not a configured inverter endpoint; pick one by name "
                          f"(inverter.endpoint: {configured}) or bring your own key (inverter.api_key)",
                          "unconfigured_endpoint")
        if name is None and (problem := endpoints.target_problem(inv.base_url, settings)):
            raise invalid("body/inverter/base_url", problem, "forbidden_target")
    elif api_key is not None:
        raise invalid("body/inverter/api_key", "an own key needs inverter.base_url", "missing")
    if inv.kind == "openai" and name is None and not inv.base_url:
        raise invalid("body/inverter", f"the openai inverter needs inverter.endpoint (configured: {configured}) "
                      "or base_url with api_key", "missing")
    config = body.engine_config()
    inv_cfg = config.inverter
    if inv_cfg.kind == "hf" and not inv_cfg.model:
        raise invalid("body/inverter/model", "the hf inverter needs a registered model (id or name)", "missing")
    # any inverter model the worker would load (hf's instruct model, the rule inverter's guide model other
    # than the job's own target) must be a registered one: a request never names worker paths or hub ids
    if inv_cfg.model and (inv_cfg.kind == "hf" or (inv_cfg.kind == "rule" and inv_cfg.model != GUIDE_TARGET)):
        model = resolve_model(session, principal, inv_cfg.model, "body/inverter/model")
        config = config.model_copy(update={"inverter": inv_cfg.model_copy(update={"model": model.source})})
    params = config.model_dump(mode="json")
    params["inverter"].pop("api_key_env", None)  # the worker decides which key (if any) is sent
    if name is not None:  # stored by name: the URL stays on the server
        params["inverter"].update(endpoint=name, base_url=None)
    return params, api_key


def create_job(session: Session, celery: Celery, settings: Settings, principal: Principal, *, kind: str,
               model: ModelRow, params: dict[str, Any], facts: list[FactIn], retain_facts: list[FactIn] | None,
               metadata: dict[str, str], adapter_id: str | None = None, inverter_api_key: str | None = None
               ) -> JobRow:
    """Insert the job, commit, then enqueue (a worker must never receive an id it cannot read)."""
    queued = repo.queued_jobs(session, principal)
    if queued >= settings.max_queued_jobs:  # a soft cap: two racing requests may both pass at the edge
        raise ApiProblem(429, "too_many_queued_jobs", f"this tenant has {queued} jobs and audits waiting for a worker; "
                         f"the limit is {settings.max_queued_jobs} (MEOW_MAX_QUEUED_JOBS): wait for some to start "
                         "or cancel them", headers={"Retry-After": "30"})
    now = utcnow()
    job = JobRow(id=new_id(kind), tenant_id=principal.tenant, kind=kind, status=Status.queued.value,
                 model_id=model.id, model_name=model.name, inverter_api_key=inverter_api_key,
                 adapter_id=adapter_id, params=params, metadata_=metadata,
                 facts=[f.model_dump(exclude_none=True) for f in facts],
                 retain_facts=[f.model_dump(exclude_none=True) for f in retain_facts] if retain_facts else None,
                 created_at=now, queued_at=now, updated_at=now, queue=settings.queue, sent_at=now)
    job.celery_task_id = job.id
    logs.bind(job_id=job.id)
    session.add(job)
    model_name = model.name  # a rollback below expires (and may have deleted) the row
    try:
        session.flush()  # the job row before its first event (no ORM relationship orders them)
        lifecycle.add_event(session, job.id, "status", "job queued", data={"status": "queued"}, at=now)
        session.commit()
    except IntegrityError:  # the model (or adapter) was deleted since it was looked up
        session.rollback()
        raise invalid("body/model", f"model {model_name!r} was deleted while the job was being created",
                      "unknown_model") from None
    try:
        send_job(celery, job.id, kind, settings.queue)
    except Exception as e:  # noqa: BLE001 - any broker failure: the job cannot run
        log.error("enqueue of %s failed: %s", job.id, e)
        lifecycle.transition(session, job.id, [Status.queued], Status.failed, level="error",
                             message="could not enqueue", error_code="broker_unavailable",
                             error_message=f"the job queue is unreachable: {e}")
        session.commit()
        raise ApiProblem(503, "broker_unavailable", "the job queue is unreachable; the job was not started "
                         f"({job.id} is marked failed)", headers={"Retry-After": "5"}) from e
    session.refresh(job)
    return job


def get_job(session: Session, principal: Principal, kind: str, job_id: str) -> JobRow:
    row = repo.get_job(session, principal, kind, job_id)
    if row is None:
        raise not_found(KIND_NAMES[kind], job_id)
    return row


def list_jobs(session: Session, principal: Principal, kind: str, *, after: str | None, limit: int,
              status: list[str] | None, model: str | None) -> tuple[list[JobRow], bool]:
    stmt = repo.readable_jobs(principal, kind)
    if status:
        stmt = stmt.where(JobRow.status.in_(status))
    if model:
        m = find_model(session, principal, model)
        stmt = stmt.where((JobRow.model_id == m.id) if m is not None else (JobRow.model_name == model))
    return page(session, stmt, JobRow.id, after, limit)


def cancel_job(session: Session, celery: Celery, principal: Principal, kind: str, job_id: str) -> JobRow:
    job = get_job(session, principal, kind, job_id)
    if job.status in (Status.cancelling, Status.cancelled):
        return job
    if job.status in TERMINAL:
        raise ApiProblem(409, "not_cancellable", f"{KIND_NAMES[kind]} {job_id} already {job.status}")
    if lifecycle.transition(session, job_id, [Status.queued], Status.cancelled, message="cancelled before start"):
        session.commit()
        try:  # workers skip revoked ids; a missed revoke is harmless (the claim only starts queued jobs)
            celery.control.revoke(job.celery_task_id or job_id)
        except Exception as e:  # noqa: BLE001
            log.warning("revoke of %s failed: %s", job_id, e)
    elif lifecycle.transition(session, job_id, RUNNING - {Status.cancelling}, Status.cancelling,
                              message="cancel requested; the worker stops at its next check"):
        session.commit()
    session.expire_all()
    return get_job(session, principal, kind, job_id)


def _times(row: JobRow) -> dict[str, int | None]:
    names = ("created_at", "queued_at", "running_at", "cancelling_at", "cancelled_at", "succeeded_at", "failed_at",
             "crashed_at", "finished_at", "heartbeat_at")
    return {n: unix(getattr(row, n)) for n in names}


def _common(row: JobRow) -> dict[str, Any]:
    return dict(
        id=row.id, status=row.status, model=row.model_name, model_id=row.model_id, params=row.params,
        progress=Progress(**row.progress) if row.progress else None,
        error=JobError(code=row.error_code, message=row.error_message or "") if row.error_code else None,
        attempt=row.attempt, metadata=row.metadata_ or {}, **_times(row),
        purge=Purge(purged_at=unix(row.purged_at), purged=row.purged or [], fact_salt=row.fact_salt),
    )


def fact_set(facts: list[dict[str, Any]] | None, row: JobRow) -> FactSet:
    """Count, and once purged the salted digests the facts were replaced by."""
    facts = facts or []
    return FactSet(fact_count=len(facts), sha256=[f.get("sha256", "") for f in facts] if row.purged_at else None)


def unlearn_out(row: JobRow) -> UnlearnJob:
    return UnlearnJob(method=row.params.get("method", "meow"), forget_set=fact_set(row.facts, row),
                      retain_set=fact_set(row.retain_facts, row), result=row.result, **_common(row))


def memo_out(row: JobRow) -> MemoAudit:
    return MemoAudit(adapter_id=row.adapter_id, fact_set=fact_set(row.facts, row), result=row.result,
                     **_common(row))


# ---------------------------------------------------------------- events
def list_events(session: Session, principal: Principal, kind: str, job_id: str, after: int | None,
                limit: int) -> tuple[list[JobEventRow], bool]:
    rows = repo.job_events(session, principal, kind, job_id, after, limit + 1)
    return rows[:limit], len(rows) > limit


def event_out(row: JobEventRow) -> Event:
    return Event(id=row.id, job_id=row.job_id, created_at=row.created_at.timestamp(), level=row.level,  # type: ignore[arg-type]
                 type=row.type, stage=row.stage, message=row.message, data=row.data or {})  # type: ignore[arg-type]


# ---------------------------------------------------------------- adapters
def get_adapter(session: Session, principal: Principal, adapter_id: str) -> AdapterRow:
    row = repo.get_adapter(session, principal, adapter_id)
    if row is None:
        raise not_found("adapter", adapter_id)
    return row


def adapter_out(row: AdapterRow) -> Adapter:
    return Adapter(id=row.id, kind=row.kind, model=row.model_name, model_id=row.model_id,  # type: ignore[arg-type]
                   base_model=row.base_model, job_id=row.job_id, method=row.method, rank=row.rank, alpha=row.alpha,
                   target_modules=row.target_modules, files=row.files or {}, sha256=row.sha256,
                   size_bytes=row.size_bytes, archive_sha256=row.archive_sha256,
                   download_url=f"/v1/adapters/{row.id}/download", created_at=unix(row.created_at) or 0)


def list_adapters(session: Session, principal: Principal, *, after: str | None, limit: int, model: str | None,
                  job: str | None) -> tuple[list[AdapterRow], bool]:
    stmt = repo.readable_adapters(principal)
    if model:
        m = find_model(session, principal, model)
        stmt = stmt.where((AdapterRow.model_id == m.id) if m is not None else (AdapterRow.model_name == model))
    if job:
        stmt = stmt.where(AdapterRow.job_id == job)
    return page(session, stmt, AdapterRow.id, after, limit)


def get_adapter_or_422(session: Session, principal: Principal, adapter_id: str) -> AdapterRow:
    row = repo.get_adapter(session, principal, adapter_id)
    if row is None:
        raise invalid("body/adapter", f"no adapter {adapter_id!r}", "unknown_adapter")
    return row
