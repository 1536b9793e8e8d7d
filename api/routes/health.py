"""Liveness (the process answers) and readiness (it can reach the database and the broker, and a
worker is consuming its queue: without one, a new job would wait for ever)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.deps import CeleryDep, SessionDep
from api.examples import ok
from api.problems import DATABASE_RETRY_AFTER_S, ApiProblem, problem_responses
from api.schemas import Health, Readiness
from service import workers as presence
from service.db import session_scope

router = APIRouter(tags=["health"])
log = logging.getLogger("meow.api")


@router.get("/healthz", response_model=Health, summary="Liveness probe (and how many workers consume the queue)",
            responses=ok(200, {"status": "ok", "workers": 1}))
def healthz(request: Request) -> Health:
    """Always 200 while the process answers; ``workers`` is detail, never a reason to restart the API."""
    settings = request.app.state.settings
    try:
        with session_scope(settings.db_url) as s:
            return Health(workers=presence.live_count(s, settings.queue, settings.stale_after_s))
    except Exception:  # noqa: BLE001 - liveness must not depend on the database
        log.warning("healthz: could not count workers", exc_info=True)
        return Health(workers=None)


@router.get("/readyz", response_model=Readiness,
            summary="Readiness probe (database and broker reachable, a worker consuming the queue)",
            responses={**ok(200, {"status": "ok", "database": "ok", "broker": "ok", "workers": 1}),
                       **problem_responses(503)})
def readyz(request: Request, session: SessionDep, celery: CeleryDep) -> Readiness:
    try:
        session.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure means not ready
        raise ApiProblem(503, "database_unavailable", f"database unreachable: {type(e).__name__}",
                         headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)}) from None
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as e:  # noqa: BLE001
        raise ApiProblem(503, "broker_unavailable", f"broker unreachable: {type(e).__name__}: {e}",
                         headers={"Retry-After": "5"}) from None
    settings = request.app.state.settings
    workers = presence.live_count(session, settings.queue, settings.stale_after_s)
    if workers == 0:
        raise ApiProblem(503, "no_worker", f"no worker has consumed queue {settings.queue!r} in the last "
                         f"{settings.stale_after_s:g} s (MEOW_STALE_AFTER_S): new jobs would wait until one starts",
                         headers={"Retry-After": "5"})
    return Readiness(workers=workers)
