"""Webhook endpoints: where job state changes are delivered (``service.webhooks`` sends them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from api import examples as ex
from api import repository as repo
from api.auth import WebhooksWrite
from api.deps import SessionDep, SettingsDep
from api.problems import invalid, not_found, problem_responses
from api.schemas import (
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    unix,
)
from api.services import page
from service import webhooks
from service.ids import new_id
from service.tables import WebhookEndpointRow

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

EndpointId = Annotated[str, Path(description="webhook endpoint id", openapi_examples={
    "endpoint": {"summary": "an endpoint id", "value": ex.WEBHOOK_ENDPOINT["id"]}})]


def _out(row: WebhookEndpointRow, secret: str | None = None) -> WebhookEndpoint:
    return WebhookEndpoint(id=row.id, url=row.url, events=row.events, created_at=unix(row.created_at) or 0,
                           secret=secret)


def _get(session: SessionDep, principal: WebhooksWrite, endpoint_id: str) -> WebhookEndpointRow:
    row = repo.get_webhook_endpoint(session, principal, endpoint_id)
    if row is None:
        raise not_found("webhook endpoint", endpoint_id)
    return row


@router.post("", status_code=201, response_model=WebhookEndpoint, summary="Create a webhook endpoint",
             description="Deliveries are signed as Standard Webhooks with the returned `secret` (shown only here): "
                         "headers `webhook-id`, `webhook-timestamp`, `webhook-signature`. The body is "
                         '`{"type", "timestamp", "data": {"id", "object", "status", "verdict"?, "error_code"?}}`: '
                         "ids and outcomes, never fact text. Failed deliveries are retried with backoff.",
             responses={**ex.ok(201, {**ex.WEBHOOK_ENDPOINT, "secret": "whsec_…"}, "Created"),
                        **problem_responses(401, 403, 413, 422)})
def create_webhook_endpoint(
    body: Annotated[WebhookEndpointCreate, Body(openapi_examples=ex.body("jobs", "job outcomes", ex.WEBHOOK_CREATE))],
    session: SessionDep, settings: SettingsDep, principal: WebhooksWrite, response: Response,
) -> WebhookEndpoint:
    events = list(webhooks.EVENT_TYPES) if body.events is None else list(dict.fromkeys(body.events))
    unknown = [e for e in events if e not in webhooks.EVENT_TYPES]
    if unknown or not events:
        raise invalid("body/events", f"unknown event type(s) {', '.join(unknown)[:200] or '(none given)'}; known: "
                      f"{', '.join(webhooks.EVENT_TYPES)}", "unknown_event")
    if problem := webhooks.target_problem(body.url, settings):
        raise invalid("body/url", problem, "forbidden_target")
    secret = webhooks.new_secret()
    row = WebhookEndpointRow(id=new_id("webhook_endpoint"), tenant_id=principal.tenant, url=body.url.strip(),
                             events=events, secret=secret)
    session.add(row)
    session.commit()
    response.headers["Location"] = f"/v1/webhook-endpoints/{row.id}"
    return _out(row, secret)


@router.get("", response_model=WebhookEndpointList, summary="List webhook endpoints (newest first)",
            responses={**ex.ok(200, ex.listing(ex.WEBHOOK_ENDPOINT)), **problem_responses(401, 403, 422)})
def list_webhook_endpoints(
    session: SessionDep, principal: WebhooksWrite,
    after: Annotated[str | None, Query(description="last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> WebhookEndpointList:
    rows, more = page(session, repo.readable_webhook_endpoints(principal), WebhookEndpointRow.id, after, limit)
    return WebhookEndpointList(data=[_out(r) for r in rows], has_more=more)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint, summary="Get a webhook endpoint",
            responses={**ex.ok(200, ex.WEBHOOK_ENDPOINT), **problem_responses(401, 403, 404)})
def get_webhook_endpoint(endpoint_id: EndpointId, session: SessionDep, principal: WebhooksWrite) -> WebhookEndpoint:
    return _out(_get(session, principal, endpoint_id))


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a webhook endpoint (pending deliveries are dropped)",
               responses={204: {"description": "Deleted"}, **problem_responses(401, 403, 404)})
def delete_webhook_endpoint(endpoint_id: EndpointId, session: SessionDep, principal: WebhooksWrite) -> Response:
    session.delete(_get(session, principal, endpoint_id))
    session.commit()
    return Response(status_code=204)


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryList,
            summary="List an endpoint's delivery attempts (newest first)",
            responses={**ex.ok(200, ex.listing(ex.WEBHOOK_DELIVERY)), **problem_responses(401, 403, 404, 422)})
def list_webhook_deliveries(
    endpoint_id: EndpointId, session: SessionDep, principal: WebhooksWrite,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> WebhookDeliveryList:
    _get(session, principal, endpoint_id)
    rows = repo.webhook_deliveries(session, principal, endpoint_id, after, limit + 1)
    data = [WebhookDelivery(id=d.id, message_id=m.id, type=m.type, job_id=m.job_id, attempt=d.attempt,
                            succeeded=d.succeeded, status_code=d.status_code, response=d.response, error=d.error,
                            duration_ms=d.duration_ms, created_at=unix(d.created_at) or 0,
                            message_state=m.state)  # type: ignore[arg-type]
            for d, m in rows[:limit]]
    return WebhookDeliveryList(data=data, has_more=len(rows) > limit)
