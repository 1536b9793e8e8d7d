"""Service settings, read from ``MEOW_*`` environment variables (and an optional ``.env``).

One object configures the API, the workers and ``meow serve``; the defaults describe the embedded
mode (SQLite + a SQLite-backed broker under ``MEOW_DATA_DIR``) so a fresh checkout runs with no
external services, while production points the URLs at Postgres and Redis.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_list(value: object) -> object:
    """Accept ``a:b`` / ``a,b`` strings for list settings (shell-friendly like PATH)."""
    if isinstance(value, str):
        sep = "," if "," in value else ":"
        return [p for p in (s.strip() for s in value.split(sep)) if p]
    return value


class InverterEndpoint(BaseModel):
    """An OpenAI-compatible endpoint requests may pick by name; its URL and key stay on the server."""

    base_url: str = Field(description="e.g. https://api.openai.com/v1 or http://10.0.0.5:8000/v1")
    api_key_env: str | None = Field(None, description="environment variable (on the workers) holding its key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEOW_", env_file=".env", env_ignore_empty=True, extra="ignore")

    data_dir: Path = Field(Path(".meow"),
                           description="where the embedded defaults keep the database, broker and artifacts")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/meow.db")
    broker_url: str | None = Field(None, description="Celery broker; default: a SQLite broker beside a SQLite "
                                   "database (sqla+sqlite:///<database file>.broker.db), else "
                                   "<data_dir>/broker-<digest of the database URL>.db")
    artifact_dir: Path | None = Field(None, description="local artifact store root; default <data_dir>/artifacts")
    model_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="folders local model sources must lie under (':' or ',' separated)")
    allow_hub_models: bool = Field(True, description="accept Hugging Face ids as model sources")
    queue: str = Field("meow", description="Celery queue the API sends jobs to and workers consume")

    # request limits
    max_body_bytes: int = Field(2 * 1024 * 1024, description="largest accepted request body")
    max_facts: int = Field(1000, description="most forget facts per unlearn job / facts per audit")
    max_retain_facts: int = Field(1000, description="most retain facts per unlearn job")
    max_text_chars: int = Field(2000, description="longest question or answer")
    max_wait_s: float = Field(60.0, description="upper bound of ?wait= on POST /v1/memo")
    inverter_endpoints: dict[str, InverterEndpoint] = Field(
        default_factory=dict, description='JSON: {"name": {"base_url": ..., "api_key_env": ...}}; the inverter '
        "endpoints requests may pick by name (requests never send the server's keys anywhere else)")

    # trust
    auth: Literal["required", "off"] = Field(
        "required", description="required: every /v1 request needs an API key; off: one implicit admin tenant "
        "(local use only; refused with a Postgres database)")
    secret_key: SecretStr | None = Field(
        None, description="HMAC key API keys are hashed with; default for SQLite: a file under data_dir")
    idempotency_ttl_s: float = Field(24 * 3600, gt=0, description="how long an Idempotency-Key is remembered")
    fact_retention_s: float = Field(
        0, ge=0, description="how long a finished job keeps its facts' text and generations before they are "
        "purged (0: at once, in the transaction that ends the job); scores, counts and the adapter stay")

    # limits (api/ratelimit.py)
    rate_limit: str = Field(
        "600/minute", description="requests per API key (the `limits` syntax: '600/minute', several joined "
        "by ';'); empty: no limit")
    rate_limit_storage: str | None = Field(
        None, description="where rate-limit counters live (a `limits` storage URI); default: the broker's Redis "
        "when the broker is Redis (shared by every API process), else memory:// (one process: meow serve)")
    max_queued_jobs: int = Field(50, ge=1, description="most queued (not yet started) jobs and audits per tenant")

    # webhooks (service.webhooks)
    webhook_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="hosts, IPs or CIDRs webhook URLs may use although they are private, "
        "loopback or link-local (comma separated; e.g. 127.0.0.1,::1 for local receivers)")
    webhook_retry_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0],
        description="waits before each retry of a failed delivery (one more attempt than entries)")
    webhook_timeout_s: float = Field(10.0, gt=0, description="how long one delivery waits for the receiver")
    webhook_poll_s: float = Field(1.0, gt=0, description="how often the API's sender looks for due deliveries")

    # observability (service/logs.py, api/metrics.py)
    log_json: bool = Field(True, description="JSON log lines (false: plain text for a terminal)")
    log_level: str = Field("INFO", description="root log level of the API and workers")
    metrics: bool = Field(True, description="serve Prometheus metrics at /metrics (expose it to your scraper only)")

    # worker behaviour
    task_time_limit_s: int = Field(6 * 3600, description="hard per-job limit (the child is killed)")
    task_soft_time_limit_s: int = Field(6 * 3600 - 300, description="soft limit: the job fails with time_limit")
    heartbeat_s: float = Field(10.0, description="how often a running job touches heartbeat_at")
    stale_after_s: float = Field(120.0, description="running jobs with an older heartbeat are marked crashed")
    reaper_interval_s: float = Field(30.0, description="how often the API and workers look for stale jobs")
    requeue_after_s: float = Field(
        600.0, ge=0, description="a job still queued this long after its message was sent gets it sent again, "
        "once per period, by the reaper (a broker that lost messages: flushed, restarted without persistence); "
        "duplicates are dropped at claim. 0: never")
    progress_interval_s: float = Field(1.0, description="minimum seconds between progress events of a stage")
    max_tasks_per_child: int = Field(1, description="jobs per worker child before it is replaced (1 frees GPU memory)")
    device: str | None = Field(None, description="torch device for workers (None: cuda if available)")
    dtype: str | None = Field(None, description="torch dtype for workers (None: float32)")
    torch_threads: int | None = Field(None, description="torch CPU threads per worker child (None: torch default)")

    @field_validator("model_roots", "webhook_retry_s", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _split_list(v)

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _hosts(cls, v: object) -> object:
        """Comma-separated only: IPv6 addresses and CIDRs contain colons."""
        if isinstance(v, str):
            return [p for p in (s.strip() for s in v.split(",")) if p]
        return v

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse_many

        if v.strip():
            parse_many(v)  # a typo is a start-up error, not a limit that never applies
        return v

    @field_validator("database_url")
    @classmethod
    def _psycopg3(cls, v: str | None) -> str | None:
        """``postgresql://`` would pick psycopg2, which is not installed: use the psycopg 3 driver."""
        if v and v.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError("MEOW_TASK_SOFT_TIME_LIMIT_S must be below MEOW_TASK_TIME_LIMIT_S")
        if self.stale_after_s <= 2 * self.heartbeat_s:
            raise ValueError("MEOW_STALE_AFTER_S must exceed twice MEOW_HEARTBEAT_S")
        if self.auth == "off" and self.is_production:
            raise ValueError("MEOW_AUTH=off is for local use only; a Postgres database (production) needs "
                             "MEOW_AUTH=required")
        return self

    @property
    def is_production(self) -> bool:
        """A Postgres database means a shared deployment: no auth-off, no generated secrets."""
        return self.db_url.startswith(("postgresql", "postgres"))

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'meow.db').resolve()}"

    @property
    def broker(self) -> str:
        """The embedded broker follows the database, never the working folder: two ``meow serve``
        with different databases never share a queue (one's worker would drop the other's jobs)."""
        if self.broker_url:
            return self.broker_url
        from sqlalchemy.engine import make_url

        url = make_url(self.db_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return f"sqla+sqlite:///{Path(url.database).resolve()}.broker.db"
        digest = hashlib.sha256(self.db_url.encode()).hexdigest()[:12]
        return f"sqla+sqlite:///{(self.data_dir / f'broker-{digest}.db').resolve()}"

    @property
    def rate_limit_storage_uri(self) -> str:
        if self.rate_limit_storage:
            return self.rate_limit_storage
        return self.broker if self.broker.startswith(("redis://", "rediss://")) else "memory://"

    @property
    def artifacts(self) -> Path:
        return (self.artifact_dir or self.data_dir / "artifacts").resolve()

    @property
    def visibility_timeout_s(self) -> int:
        """Above the hard limit, so Redis never re-delivers a job that is still running."""
        return self.task_time_limit_s + 3600


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
