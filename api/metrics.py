"""Request ids, access logs and Prometheus metrics (``GET /metrics``).

``RequestContext`` (pure ASGI, so streamed responses are not buffered) gives every request an id
(a sane incoming ``X-Request-ID``, else a new one), binds it for the request's log lines, returns
it as ``X-Request-ID``, writes one access-log line (route template, status, duration, tenant) and
counts the request. Job metrics are read from the database at scrape time, because workers are
other processes (and machines) and Postgres is the source of truth:

- ``meow_http_requests_total{method,route,status}``, ``meow_http_request_duration_seconds``;
- ``meow_jobs{kind,status}``: jobs and audits per state now;
- ``meow_queue_depth{queue}``: messages waiting in the broker (Redis), else queued jobs;
- ``meow_job_stage_duration_seconds{kind,stage}``: each finished job's stage timings, folded in
  once by the process that scrapes (per API process: do not sum it over replicas).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import logs
from service.db import session_scope
from service.settings import Settings
from service.states import Status
from service.tables import JobRow, utcnow

log = logging.getLogger("meow.api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
STAGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600)


class JobCollector(Collector):
    """Jobs per state and queue depth from the database and broker; folds new stage timings."""

    def __init__(self, settings: Settings, stages: Histogram) -> None:
        self.settings, self.stages = settings, stages
        self._since: datetime = utcnow()  # stage timings of jobs that finish from now on
        self._seen: set[str] = set()

    def _fold_stages(self, session: Any) -> None:
        rows = session.execute(select(JobRow.id, JobRow.kind, JobRow.result, JobRow.finished_at)
                               .where(JobRow.finished_at >= self._since, JobRow.status == Status.succeeded.value)
                               .order_by(JobRow.finished_at).limit(1000)).all()
        for job_id, kind, result, finished in rows:
            if job_id in self._seen:
                continue
            self._seen.add(job_id)
            timings = (result or {}).get("timings") or {}
            if kind == "memo" and isinstance((result or {}).get("seconds"), int | float):
                timings = {"memo": result["seconds"]}
            for stage, seconds in timings.items():
                if isinstance(seconds, int | float) and seconds >= 0:
                    self.stages.labels(kind, str(stage)).observe(float(seconds))
            self._since = max(self._since, finished)
        if len(self._seen) > 10_000:  # only ids at the window's edge matter
            self._seen = {r[0] for r in rows[-100:]}

    def _queue_depth(self, queued: int) -> float:
        if self.settings.broker.startswith(("redis://", "rediss://")):
            import redis

            try:
                client = redis.Redis.from_url(self.settings.broker, socket_timeout=2)
                return float(client.llen(self.settings.queue))
            except Exception:  # noqa: BLE001 - a scrape must not fail on the broker
                log.warning("queue depth: broker unreachable")
        return float(queued)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("meow_jobs", "Jobs (unlearn) and audits (memo) per state", labels=["kind", "status"])
        with session_scope(self.settings.db_url) as s:
            counts = {(k, st): n for k, st, n in s.execute(
                select(JobRow.kind, JobRow.status, func.count()).group_by(JobRow.kind, JobRow.status)).all()}
            self._fold_stages(s)
        for kind in ("unlearn", "memo"):
            for st in Status:
                jobs.add_metric([kind, st.value], counts.get((kind, st.value), 0))
        yield jobs
        depth = GaugeMetricFamily("meow_queue_depth", "Job messages waiting in the broker", labels=["queue"])
        depth.add_metric([self.settings.queue], self._queue_depth(sum(n for (_, st), n in counts.items()
                                                                      if st == Status.queued.value)))
        yield depth


class Metrics:
    """One registry per app (tests build several apps in one process)."""

    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        stages = Histogram("meow_job_stage_duration_seconds", "Seconds per stage of finished jobs",
                           ["kind", "stage"], buckets=STAGE_BUCKETS, registry=None)
        # the collector folds new timings into the histogram, so it is collected first
        self.registry.register(JobCollector(settings, stages))
        self.registry.register(stages)
        self.requests = Counter("meow_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("meow_http_request_duration_seconds", "HTTP request duration",
                                 ["method", "route"], registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics | None) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        token = logs.start_request(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                seconds = time.perf_counter() - started
                if self.metrics is not None:
                    self.metrics.requests.labels(scope["method"], route, str(status)).inc()
                    self.metrics.latency.labels(scope["method"], route).observe(seconds)
                if route != "/metrics":
                    log.info("request", extra={"method": scope["method"], "path": scope["path"], "route": route,
                                               "status": status, "duration_ms": round(seconds * 1000, 1)})
            finally:
                logs.end_request(token)
