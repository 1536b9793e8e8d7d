"""Job events: a JSON page, or Server-Sent Events when the client sends ``Accept: text/event-stream``.

The SSE stream replays stored events after ``after`` (or ``Last-Event-ID``), then tails new rows
until the job is finished, the client disconnects, or the connection has lived ``MAX_STREAM_S``
(then a ``reconnect`` event tells the client to resume from its last id).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event

from api import services
from api.auth import Principal
from api.guards import EVENT_ID_MAX, last_event_id
from api.schemas import EventList
from service.db import session_scope
from service.states import TERMINAL

MAX_STREAM_S = 600.0
POLL_S = 0.5
SSE_MEDIA_TYPE = "text/event-stream"
#: the ``after`` cursor of both event routes (event ids are bigint: a larger one is a 422, not a 500)
EventAfter = Annotated[int | None, Query(ge=0, le=EVENT_ID_MAX, description="last event id already seen")]


def wants_sse(request: Request) -> bool:
    return SSE_MEDIA_TYPE in request.headers.get("accept", "")


def events_response(request: Request, principal: Principal, kind: str, job_id: str, after: int | None,
                    limit: int) -> EventList | StreamingResponse:
    settings = request.app.state.settings
    with session_scope(settings.db_url) as session:
        services.get_job(session, principal, kind, job_id)  # 404 before any streaming starts
        if not wants_sse(request):
            rows, more = services.list_events(session, principal, kind, job_id, after, limit)
            return EventList(data=[services.event_out(r) for r in rows], has_more=more)
    last = last_event_id(request)  # checked even when ``after`` wins: a bad header is the client's bug
    start = after if after is not None else last
    return StreamingResponse(_stream(request, principal, kind, job_id, start), media_type=SSE_MEDIA_TYPE,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _poll(db_url: str, principal: Principal, kind: str, job_id: str, after: int | None) -> tuple[list[dict], bool]:
    with session_scope(db_url) as session:
        rows, _ = services.list_events(session, principal, kind, job_id, after, 500)
        events = [services.event_out(r).model_dump(mode="json") for r in rows]
        finished = services.get_job(session, principal, kind, job_id).status in TERMINAL
    return events, finished


async def _stream(request: Request, principal: Principal, kind: str, job_id: str,
                  after: int | None) -> AsyncIterator[str]:
    db_url = request.app.state.settings.db_url
    deadline = time.monotonic() + MAX_STREAM_S
    yield _frame(format_sse_event(retry=2000))
    while True:
        events, finished = await anyio.to_thread.run_sync(_poll, db_url, principal, kind, job_id, after)
        for ev in events:
            after = ev["id"]
            yield _frame(format_sse_event(data_str=json.dumps(ev), event=ev["type"], id=str(ev["id"])))
        if finished and not events:
            yield _frame(format_sse_event(data_str=json.dumps({"job_id": job_id}), event="end"))
            return
        if time.monotonic() > deadline:
            yield _frame(format_sse_event(data_str=json.dumps({"after": after}), event="reconnect"))
            return
        if await request.is_disconnected():
            return
        await anyio.sleep(POLL_S)


def _frame(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
