"""ORM tables. Alembic migrations (``migrations/``) are the only way this schema reaches a
database; ``tests/service/test_migrations.py`` checks the two agree.

One ``jobs`` table holds both unlearn jobs and MEMO audits (``kind``): they share states,
claiming, heartbeats, cancel and events, so one worker code path and one reaper serve both.
Strings with CHECK constraints instead of native enums keep SQLite and Postgres identical.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.states import KINDS, Status

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out (SQLite drops the zone; Postgres keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(values: Any) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


#: the tenant of rows made before tenants existed, and of every request while MEOW_AUTH=off
DEFAULT_TENANT = "default"


def _tenant_column() -> Mapped[str]:
    return mapped_column(String(64), index=True, default=DEFAULT_TENANT)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (CheckConstraint(f"source_kind IN {_in(('builtin', 'path', 'hub'))}", name="source_kind"),
                      UniqueConstraint("tenant_id", "name", name="uq_models_tenant_id_name"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    #: shared models (registered by an admin) are readable by every tenant
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(1024))
    source_kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(KINDS)}", name="kind"),
        CheckConstraint(f"status IN {_in(s.value for s in Status)}", name="status"),
        Index("ix_jobs_kind_status", "kind", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=Status.queued.value)
    model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    #: memo audits: the adapter applied on top of the model (no FK: adapters point at jobs)
    adapter_id: Mapped[str | None] = mapped_column(String(40), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    facts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    retain_facts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    #: the Celery queue its messages go to, and when one was last sent: a queued job whose message
    #: was lost (broker flushed) is sent again by the reconciler (``service.queue.resend_lost``)
    queue: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    running_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelling_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    crashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: a caller's own inverter key: read by the worker at claim and wiped then (or when the job ends)
    inverter_api_key: Mapped[str | None] = mapped_column(Text)
    #: when the facts' text was purged (``service.purge``), what was removed, and the digests' salt
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purged: Mapped[list[str] | None] = mapped_column(JSON)
    fact_salt: Mapped[str | None] = mapped_column(String(32))


class JobEventRow(Base):
    __tablename__ = "job_events"
    __table_args__ = (
        CheckConstraint(f"level IN {_in(('info', 'warn', 'error'))}", name="level"),
        CheckConstraint(f"type IN {_in(('status', 'progress', 'message', 'metrics'))}", name="type"),
        Index("ix_job_events_job_id_id", "job_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    level: Mapped[str] = mapped_column(String(8), default="info")
    type: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AdapterRow(Base):
    __tablename__ = "adapters"
    __table_args__ = (CheckConstraint(f"kind IN {_in(('lora', 'full'))}", name="kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    kind: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    base_model: Mapped[str] = mapped_column(String(1024))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int | None] = mapped_column(Integer)
    alpha: Mapped[int | None] = mapped_column(Integer)
    target_modules: Mapped[list[str] | None] = mapped_column(JSON)
    files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_uri: Mapped[str] = mapped_column(String(2048))
    archive_uri: Mapped[str] = mapped_column(String(2048))
    archive_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKeyRow(Base):
    """An API key: only its HMAC is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: the key's first characters, so a listing can say which key is which without revealing it
    prefix: Mapped[str] = mapped_column(String(24))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyRow(Base):
    """One ``Idempotency-Key`` per tenant: the request's fingerprint and, once done, its response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint(f"state IN {_in(('in_flight', 'completed'))}", name="state"),
        UniqueConstraint("tenant_id", "key", name="uq_idempotency_keys_tenant_id_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


WEBHOOK_STATES = ("pending", "delivered", "failed")


class WebhookEndpointRow(Base):
    """Where a tenant wants job state changes delivered (Standard Webhooks, ``service.webhooks``)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    #: ``whsec_…``: kept (deliveries are signed with it), shown to the caller once, at creation
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookMessageRow(Base):
    """One event for one endpoint (its id is the ``webhook-id`` header, stable across retries) and
    its retry schedule; written in the transaction of the state change (an outbox)."""

    __tablename__ = "webhook_messages"
    __table_args__ = (CheckConstraint(f"state IN {_in(WEBHOOK_STATES)}", name="state"),
                      Index("ix_webhook_messages_state_next_attempt_at", "state", "next_attempt_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(String(40), index=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDeliveryRow(Base):
    """One delivery attempt: what the receiver answered (or why it could not be reached)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: the first ``service.webhooks.RESPONSE_CHARS`` characters of the receiver's body
    response: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkerRow(Base):
    """A live worker process (its Celery node name) and the queue it consumes. The worker's parent
    process beats here every ``MEOW_HEARTBEAT_S`` (``service.workers``): ``/readyz`` reads it to say
    whether anything consumes the queue, and a starting worker reads it to tell a node that is really
    gone from one that merely shares its name."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    queue: Mapped[str] = mapped_column(String(255), index=True)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
