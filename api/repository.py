"""Every database read of a tenant's resources goes through here: one place applies the tenant filter.

A tenant reads its own models, jobs, audits and adapters, plus models an admin shared; anything
else does not exist for it (404 / "unknown" 422, never 403). ``tests/service/test_tenancy.py``
checks that no other API module queries the resource tables directly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from api.auth import Principal
from service.tables import (
    AdapterRow,
    IdempotencyRow,
    JobEventRow,
    JobRow,
    ModelRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookMessageRow,
)


def readable_models(principal: Principal) -> Select[Any]:
    return select(ModelRow).where(or_(ModelRow.tenant_id == principal.tenant, ModelRow.shared.is_(True)))


def find_model(session: Session, principal: Principal, ref: str) -> ModelRow | None:
    """By id or name: an id wins over a name (no name can shadow an id), then a tenant's own model
    over a shared one of the same name."""
    stmt = (readable_models(principal).where((ModelRow.id == ref) | (ModelRow.name == ref))
            .order_by(case((ModelRow.id == ref, 0), else_=1), case((ModelRow.tenant_id == principal.tenant, 0),
                                                                     else_=1), ModelRow.id))
    return session.execute(stmt.limit(1)).scalars().first()


def lock_model(session: Session, model_id: str) -> ModelRow | None:
    """The model row, locked until the transaction ends (``FOR UPDATE``; a no-op on SQLite)."""
    return session.execute(select(ModelRow).where(ModelRow.id == model_id).with_for_update()).scalars().first()


def own_model_named(session: Session, principal: Principal, name: str) -> ModelRow | None:
    stmt = select(ModelRow).where(ModelRow.tenant_id == principal.tenant, ModelRow.name == name)
    return session.execute(stmt).scalars().first()


def model_by_id(session: Session, principal: Principal, model_id: str) -> ModelRow | None:
    return session.execute(readable_models(principal).where(ModelRow.id == model_id)).scalars().first()


def active_job_on_model(session: Session, model_id: str, active: list[str]) -> str | None:
    """Any tenant's unfinished job on a model (deleting a shared model must wait for all of them)."""
    row = session.execute(select(JobRow.id).where(JobRow.model_id == model_id, JobRow.status.in_(active))
                          .limit(1)).first()
    return row[0] if row else None


def readable_jobs(principal: Principal, kind: str) -> Select[Any]:
    return select(JobRow).where(JobRow.tenant_id == principal.tenant, JobRow.kind == kind)


def queued_jobs(session: Session, principal: Principal) -> int:
    """How many of the tenant's jobs and audits wait for a worker (``MEOW_MAX_QUEUED_JOBS``)."""
    stmt = select(func.count()).select_from(JobRow).where(JobRow.tenant_id == principal.tenant,
                                                         JobRow.status == "queued")
    return int(session.execute(stmt).scalar_one())


def get_job(session: Session, principal: Principal, kind: str, job_id: str) -> JobRow | None:
    return session.execute(readable_jobs(principal, kind).where(JobRow.id == job_id)).scalars().first()


def job_events(session: Session, principal: Principal, kind: str, job_id: str, after: int | None,
               limit: int) -> list[JobEventRow]:
    stmt = (select(JobEventRow).join(JobRow, JobRow.id == JobEventRow.job_id)
            .where(JobEventRow.job_id == job_id, JobRow.tenant_id == principal.tenant, JobRow.kind == kind))
    if after is not None:
        stmt = stmt.where(JobEventRow.id > after)
    return list(session.execute(stmt.order_by(JobEventRow.id).limit(limit)).scalars())


def readable_adapters(principal: Principal) -> Select[Any]:
    return select(AdapterRow).where(AdapterRow.tenant_id == principal.tenant)


def get_adapter(session: Session, principal: Principal, adapter_id: str) -> AdapterRow | None:
    return session.execute(readable_adapters(principal).where(AdapterRow.id == adapter_id)).scalars().first()


def idempotency_record(session: Session, tenant: str, key: str) -> IdempotencyRow | None:
    stmt = select(IdempotencyRow).where(IdempotencyRow.tenant_id == tenant, IdempotencyRow.key == key)
    return session.execute(stmt).scalars().first()


def readable_webhook_endpoints(principal: Principal) -> Select[Any]:
    return select(WebhookEndpointRow).where(WebhookEndpointRow.tenant_id == principal.tenant)


def get_webhook_endpoint(session: Session, principal: Principal, endpoint_id: str) -> WebhookEndpointRow | None:
    stmt = readable_webhook_endpoints(principal).where(WebhookEndpointRow.id == endpoint_id)
    return session.execute(stmt).scalars().first()


def webhook_deliveries(session: Session, principal: Principal, endpoint_id: str, after: int | None,
                       limit: int) -> list[tuple[WebhookDeliveryRow, WebhookMessageRow]]:
    """An endpoint's delivery attempts, newest first, with the message each one carried."""
    stmt = (select(WebhookDeliveryRow, WebhookMessageRow)
            .join(WebhookMessageRow, WebhookMessageRow.id == WebhookDeliveryRow.message_id)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookEndpointRow.tenant_id == principal.tenant))
    if after is not None:
        stmt = stmt.where(WebhookDeliveryRow.id < after)
    return [(d, m) for d, m in session.execute(stmt.order_by(WebhookDeliveryRow.id.desc()).limit(limit)).all()]
