"""MEMO audits: how strongly a model (optionally with an adapter) has memorised given facts."""

from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from api import examples as ex
from api import services
from api.auth import JobsRead, MemoWrite
from api.deps import CeleryDep, SessionDep, SettingsDep
from api.idempotency import IdempotencyDep
from api.problems import invalid, problem_responses
from api.routes.events import SSE_MEDIA_TYPE, EventAfter, events_response
from api.schemas import EventList, MemoAudit, MemoAuditList, MemoCreate, Status
from service.db import session_scope
from service.states import TERMINAL

router = APIRouter(prefix="/v1/memo", tags=["memo"])
#: how often ``?wait=`` looks at the audit
WAIT_POLL_S = 0.25
#: requests of this API process that may wait at once: each blocks a worker thread (the threadpool
#: holds 40, and /healthz needs one), so beyond these a ``?wait=`` answers 202 at once
WAIT_SLOTS = 8
_wait_slots = threading.BoundedSemaphore(WAIT_SLOTS)

AuditId = Annotated[str, Path(description="memo audit id", openapi_examples={
    "audit": {"summary": "an audit id", "value": ex.MEMO_AUDIT["id"]}})]


@router.post("", status_code=202, response_model=MemoAudit, summary="Run a MEMO audit",
             description="Queued for a worker. With `?wait=N` the request waits up to N seconds (bounded by "
                         "MEOW_MAX_WAIT_S) and answers 200 with the finished audit, or 202 if it is still running "
                         "(or at once when too many requests are already waiting).",
             responses={**ex.ok(202, {**ex.MEMO_AUDIT, "status": "queued", "result": None}, "Accepted: queued"),
                        **ex.ok(200, ex.MEMO_AUDIT, "Finished within ?wait=", model=MemoAudit),
                        **problem_responses(401, 403, 409, 413, 422, 503)})
def create_memo_audit(
    body: Annotated[MemoCreate, Body(openapi_examples=ex.body("model", "audit a registered model", ex.MEMO_CREATE))],
    session: SessionDep, settings: SettingsDep, celery: CeleryDep, principal: MemoWrite, idem: IdempotencyDep,
    wait: Annotated[float, Query(ge=0, description="seconds to wait for the result")] = 0,
) -> Response:
    if wait > settings.max_wait_s:
        raise invalid("query/wait", f"at most {settings.max_wait_s:g} seconds", "less_than_equal")
    return idem.run(principal, lambda: _create_audit(body, session, settings, celery, principal, wait))


def _create_audit(body: MemoCreate, session: SessionDep, settings: SettingsDep, celery: CeleryDep,
                  principal: MemoWrite, wait: float) -> tuple[int, MemoAudit, dict[str, str]]:
    services.check_facts(body.facts, "body/facts", settings.max_facts, settings)
    adapter = services.get_adapter_or_422(session, principal, body.adapter) if body.adapter else None
    if body.model is not None:
        model = services.resolve_model(session, principal, body.model)
        if adapter is not None and adapter.model_id != model.id:
            raise invalid("body/adapter", f"adapter {adapter.id} was trained on {adapter.model_name}, not "
                          f"{model.name}", "adapter_model_mismatch")
    else:
        assert adapter is not None
        if adapter.model_id is None:
            raise invalid("body/adapter", f"the base model of adapter {adapter.id} was deleted", "unknown_model")
        model = services.resolve_model(session, principal, adapter.model_id, "body/adapter")
    params = {"memo": body.engine_config().model_dump(mode="json")}
    job = services.create_job(session, celery, settings, principal, kind="memo", model=model, params=params,
                              facts=body.facts, retain_facts=None, metadata=body.metadata,
                              adapter_id=adapter.id if adapter else None)
    status = 202
    # End the request's transaction first: a waiting request holds no pooled connection (45 waits
    # once exhausted the pool), and each poll opens its own short session.
    session.commit()
    if wait and _wait_slots.acquire(blocking=False):
        try:
            deadline = time.monotonic() + wait
            while True:
                with session_scope(settings.db_url) as poll:
                    job = services.get_job(poll, principal, "memo", job.id)
                if job.status in TERMINAL:
                    status = 200
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(WAIT_POLL_S, left))
        finally:
            _wait_slots.release()
    return status, services.memo_out(job), {"Location": f"/v1/memo/{job.id}"}


@router.get("", response_model=MemoAuditList, summary="List MEMO audits (newest first, cursor pagination)",
            responses={**ex.ok(200, ex.listing(ex.MEMO_AUDIT)), **problem_responses(401, 403, 422)})
def list_memo_audits(
    session: SessionDep, principal: JobsRead,
    after: Annotated[str | None, Query(description="last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[list[Status] | None, Query(description="only audits in these states (repeatable)")] = None,
    model: Annotated[str | None, Query(description="only audits of this model (id or name)")] = None,
) -> MemoAuditList:
    rows, more = services.list_jobs(session, principal, "memo", after=after, limit=limit, status=status, model=model)
    return MemoAuditList(data=[services.memo_out(r) for r in rows], has_more=more)


@router.get("/{audit_id}", response_model=MemoAudit, summary="Get a MEMO audit",
            responses={**ex.ok(200, ex.MEMO_AUDIT), **problem_responses(401, 403, 404)})
def get_memo_audit(audit_id: AuditId, session: SessionDep, principal: JobsRead) -> MemoAudit:
    return services.memo_out(services.get_job(session, principal, "memo", audit_id))


@router.post("/{audit_id}/cancel", response_model=MemoAudit, summary="Cancel a MEMO audit",
             responses={**ex.ok(200, {**ex.MEMO_AUDIT, "status": "cancelled", "result": None}),
                        **problem_responses(401, 403, 404, 409)})
def cancel_memo_audit(audit_id: AuditId, session: SessionDep, celery: CeleryDep, principal: MemoWrite) -> MemoAudit:
    return services.memo_out(services.cancel_job(session, celery, principal, "memo", audit_id))


@router.get("/{audit_id}/events", response_model=EventList, summary="List or stream an audit's events",
            responses={200: {"description": "events", "content": {
                "application/json": {"example": ex.listing({**ex.EVENT, "job_id": ex.MEMO_AUDIT["id"]})},
                SSE_MEDIA_TYPE: {"schema": {"type": "string"},
                                 "example": 'event: status\nid: 3\ndata: {"id": 3, "type": "status"}\n\n'}}},
                       **problem_responses(401, 403, 404, 422)})
def list_memo_audit_events(
    audit_id: AuditId, request: Request, principal: JobsRead,
    after: EventAfter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):  # noqa: ANN201 - JSON page or an SSE stream
    return events_response(request, principal, "memo", audit_id, after, limit)
