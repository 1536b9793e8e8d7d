"""The FastAPI application: ``uvicorn api.main:app`` (or ``meow serve``).

``create_app(settings)`` builds an app bound to one configuration (tests build several);
``app`` is the module-level instance from the environment. The lifespan runs the stale-job
reaper so that jobs of a dead worker end ``crashed`` even when no worker is left to notice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api import problems
from api.guards import reject_unstorable_request
from api.idempotency import purge_expired
from api.limits import BodySizeLimit
from api.metrics import Metrics, RequestContext
from api.ratelimit import RateLimiter
from api.routes import adapters, health, memo, methods, models, unlearn, webhooks
from service.db import session_scope
from service.jobs import reap_stale
from service.keys import hmac_secret
from service.logs import configure_logging
from service.purge import RETENTION_KEY, prune_broker, purge_due
from service.queue import make_celery, resend_lost
from service.settings import Settings, get_settings
from service.store import store_from_settings
from service.webhooks import deliver_due

log = logging.getLogger("meow.api")

TAGS = [
    {"name": "models", "description": "Base models jobs run on."},
    {"name": "unlearn", "description": "Unlearn jobs: forget facts, get an adapter and before/after evidence."},
    {"name": "memo", "description": "MEMO audits: how strongly a model has memorised facts."},
    {"name": "adapters", "description": "Adapters produced by unlearn jobs, downloadable in PEFT layout."},
    {"name": "webhooks", "description": "Job state changes delivered to your endpoints (Standard Webhooks)."},
    {"name": "methods", "description": "The unlearning methods `method` may name, with aliases and parameters."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def operation_id(route: APIRoute) -> str:
    """``<tag>-<function>``: stable, readable SDK method names."""
    return f"{route.tags[0]}-{route.name}"


def _reaper_loop(settings: Settings, stop: threading.Event) -> None:
    celery = make_celery(settings, include_tasks=False)
    while not stop.wait(settings.reaper_interval_s):
        try:
            with session_scope(settings.db_url) as session:
                session.info[RETENTION_KEY] = settings.fact_retention_s
                reaped = reap_stale(session, settings.stale_after_s)
                purge_expired(session)
            with session_scope(settings.db_url) as session:
                resent = resend_lost(session, celery, settings)  # queued jobs whose message the broker lost
            if resent:
                log.warning("sent %d queued job(s) again: %s", len(resent), ", ".join(resent))
            with session_scope(settings.db_url) as session:
                purge_due(session, settings.fact_retention_s)  # facts kept past MEOW_FACT_RETENTION_S
            prune_broker(settings.broker)
            if reaped:
                log.warning("marked %d stale job(s) crashed: %s", len(reaped), ", ".join(reaped))
        except Exception:  # noqa: BLE001 - keep reaping after a transient DB error
            log.exception("reaper pass failed")


def _webhook_loop(settings: Settings, stop: threading.Event) -> None:
    """Sends due webhook deliveries (``service.webhooks``): off the request path and off the workers."""
    while not stop.wait(settings.webhook_poll_s):
        try:
            while deliver_due(settings) and not stop.is_set():
                pass
        except Exception:  # noqa: BLE001 - keep sending after a transient DB error
            log.exception("webhook pass failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(json_logs=settings.log_json, level=settings.log_level)
    if settings.auth == "required":
        hmac_secret(settings)  # fail at start, not on the first request, when MEOW_SECRET_KEY is missing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threads = [threading.Thread(target=_webhook_loop, args=(settings, stop), name="meow-webhooks", daemon=True)]
        if settings.reaper_interval_s > 0:
            threads.append(threading.Thread(target=_reaper_loop, args=(settings, stop), name="meow-reaper",
                                            daemon=True))
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)

    app = FastAPI(
        title="meow",
        summary="Unlearning-as-a-service for LLMs (MEOW: inverted facts chosen by MEMO).",
        version="0.1.0",
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        separate_input_output_schemas=False,
        lifespan=lifespan,
        dependencies=[Depends(reject_unstorable_request)],  # NUL in a path, query, header: 422, not a 500
    )
    app.state.settings = settings
    app.state.celery = make_celery(settings, include_tasks=False)
    app.state.store = store_from_settings(settings.artifacts)
    app.state.limiter = RateLimiter(settings)
    problems.install(app)
    for r in (models.router, unlearn.router, memo.router, adapters.router, webhooks.router, methods.router,
              health.router):
        app.include_router(r)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    metrics = Metrics(settings) if settings.metrics else None
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: ids and counts cover every response
    if metrics is not None:
        def prometheus_metrics() -> Response:
            body, media_type = metrics.exposition()
            return Response(body, media_type=media_type)

        app.add_api_route("/metrics", prometheus_metrics, methods=["GET"], include_in_schema=False, tags=["health"])

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes,
                               tags=app.openapi_tags, separate_input_output_schemas=False)
            app.openapi_schema = problems.add_problem_schemas(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
