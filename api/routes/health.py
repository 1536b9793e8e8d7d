"""Liveness (the process answers) and readiness (it can reach the database and the broker)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import CeleryDep, SessionDep
from api.examples import ok
from api.problems import ApiProblem, problem_responses
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness probe", responses=ok(200, {"status": "ok"}))
def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, summary="Readiness probe (database and broker reachable)",
            responses={**ok(200, {"status": "ok", "database": "ok", "broker": "ok"}), **problem_responses(503)})
def readyz(session: SessionDep, celery: CeleryDep) -> Readiness:
    try:
        session.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure means not ready
        raise ApiProblem(503, "database_unavailable", f"database unreachable: {type(e).__name__}",
                         headers={"Retry-After": "5"}) from None
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as e:  # noqa: BLE001
        raise ApiProblem(503, "broker_unavailable", f"broker unreachable: {type(e).__name__}: {e}",
                         headers={"Retry-After": "5"}) from None
    return Readiness()
