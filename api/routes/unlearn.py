"""Unlearn jobs: submit, inspect, list, cancel, follow events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from api import examples as ex
from api import services
from api.auth import JobsRead, JobsWrite
from api.deps import CeleryDep, SessionDep, SettingsDep
from api.idempotency import IdempotencyDep
from api.problems import problem_responses
from api.routes.events import SSE_MEDIA_TYPE, EventAfter, events_response
from api.schemas import EventList, Status, UnlearnCreate, UnlearnJob, UnlearnJobList

router = APIRouter(prefix="/v1/unlearn", tags=["unlearn"])

JobId = Annotated[str, Path(description="unlearn job id", openapi_examples={
    "job": {"summary": "a job id", "value": ex.UNLEARN_JOB["id"]}})]


@router.post("", status_code=202, response_model=UnlearnJob, summary="Submit an unlearn job",
             responses={**ex.ok(202, {**ex.UNLEARN_JOB, "status": "queued", "result": None}, "Accepted: queued"),
                        **problem_responses(401, 403, 409, 413, 422, 503)})
def create_unlearn_job(
    body: Annotated[UnlearnCreate, Body(openapi_examples=ex.body("meow", "MEOW with the rule inverter and LoRA",
                                                                    ex.UNLEARN_CREATE))],
    session: SessionDep, settings: SettingsDep, celery: CeleryDep, principal: JobsWrite, idem: IdempotencyDep,
) -> Response:
    def create() -> tuple[int, UnlearnJob, dict[str, str]]:
        services.check_facts(body.facts, "body/facts", settings.max_facts, settings)
        services.check_facts(body.retain_facts, "body/retain_facts", settings.max_retain_facts, settings)
        model = services.resolve_model(session, principal, body.model)
        params, api_key = services.unlearn_params(session, principal, settings, body)
        job = services.create_job(session, celery, settings, principal, kind="unlearn", model=model, params=params,
                                  facts=body.facts, retain_facts=body.retain_facts, metadata=body.metadata,
                                  inverter_api_key=api_key)
        return 202, services.unlearn_out(job), {"Location": f"/v1/unlearn/{job.id}"}

    return idem.run(principal, create)


@router.get("", response_model=UnlearnJobList, summary="List unlearn jobs (newest first, cursor pagination)",
            responses={**ex.ok(200, ex.listing(ex.UNLEARN_JOB)), **problem_responses(401, 403, 422)})
def list_unlearn_jobs(
    session: SessionDep, principal: JobsRead,
    after: Annotated[str | None, Query(description="last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[list[Status] | None, Query(description="only jobs in these states (repeatable)")] = None,
    model: Annotated[str | None, Query(description="only jobs on this model (id or name)")] = None,
) -> UnlearnJobList:
    rows, more = services.list_jobs(session, principal, "unlearn", after=after, limit=limit, status=status, model=model)
    return UnlearnJobList(data=[services.unlearn_out(r) for r in rows], has_more=more)


@router.get("/{job_id}", response_model=UnlearnJob, summary="Get an unlearn job",
            responses={**ex.ok(200, ex.UNLEARN_JOB), **problem_responses(401, 403, 404)})
def get_unlearn_job(job_id: JobId, session: SessionDep, principal: JobsRead) -> UnlearnJob:
    return services.unlearn_out(services.get_job(session, principal, "unlearn", job_id))


@router.post("/{job_id}/cancel", response_model=UnlearnJob, summary="Cancel an unlearn job",
             description="Queued jobs are cancelled at once; running jobs move to `cancelling` and stop at the "
                         "worker's next check. Repeating the call is a no-op; finished jobs answer 409.",
             responses={**ex.ok(200, {**ex.UNLEARN_JOB, "status": "cancelling", "result": None}),
                        **problem_responses(401, 403, 404, 409)})
def cancel_unlearn_job(job_id: JobId, session: SessionDep, celery: CeleryDep, principal: JobsWrite) -> UnlearnJob:
    return services.unlearn_out(services.cancel_job(session, celery, principal, "unlearn", job_id))


@router.get("/{job_id}/events", response_model=EventList, summary="List or stream a job's events",
            description="Oldest first. With `Accept: text/event-stream` the events are streamed (SSE) until the "
                        "job finishes.",
            responses={200: {"description": "events", "content": {
                "application/json": {"example": ex.listing(ex.EVENT)},
                SSE_MEDIA_TYPE: {"schema": {"type": "string"},
                                 "example": 'event: progress\nid: 12\ndata: {"id": 12, "stage": "finetune"}\n\n'}}},
                       **problem_responses(401, 403, 404, 422)})
def list_unlearn_job_events(
    job_id: JobId, request: Request, principal: JobsRead,
    after: EventAfter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):  # noqa: ANN201 - JSON page or an SSE stream
    return events_response(request, principal, "unlearn", job_id, after, limit)
