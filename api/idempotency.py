"""``Idempotency-Key`` on the POSTs that create something (draft-ietf-httpapi-idempotency-key-header).

Per tenant and key, the first request's fingerprint (method, path, query, canonical JSON body) is
stored while it runs and its response once it succeeded:

| the same key again with | answer |
|---|---|
| the same request, first one finished | the first response, replayed (same id; ``Idempotent-Replayed: true``) |
| the same request, first one still running | 409 ``idempotency_in_flight`` (retry shortly) |
| a different request | 422 ``idempotency_key_reused`` |

A request that fails (any problem response) stores nothing, so a retry runs again; that is also
why a server crash mid-request cannot pin a key: an in-flight record older than the longest
request (``MEOW_MAX_WAIT_S`` + a margin) is taken over. Keys expire after
``MEOW_IDEMPOTENCY_TTL_S``; an expired record is replaced by the next request using the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import repository as repo
from api.auth import Principal
from api.problems import ApiProblem
from service.db import session_scope
from service.settings import Settings
from service.tables import IdempotencyRow, utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
#: seconds beyond MEOW_MAX_WAIT_S after which an in-flight record counts as abandoned
IN_FLIGHT_MARGIN_S = 120.0

Outcome = tuple[int, BaseModel, dict[str, str]]


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """Equal for requests that mean the same (JSON key order and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    params = "&".join(sorted(query.split("&"))) if query else ""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), params.encode(), canonical):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


class Idempotency:
    def __init__(self, key: str | None, fingerprint: str, settings: Settings) -> None:
        self.key, self.fingerprint, self.settings = key, fingerprint, settings

    def run(self, principal: Principal, create: Callable[[], Outcome]) -> JSONResponse:
        """Run ``create`` at most once per (tenant, key); its ``(status, body, headers)`` is the answer."""
        if self.key is None:
            return _response(*create())
        replay = self._claim(principal.tenant)
        if replay is not None:
            return replay
        try:
            status, body, headers = create()
        except BaseException:
            self._forget(principal.tenant)
            raise
        data = body.model_dump(mode="json")
        with session_scope(self.settings.db_url) as s:
            row = repo.idempotency_record(s, principal.tenant, self.key)
            if row is not None and row.fingerprint == self.fingerprint:
                row.state, row.status_code, row.response, row.headers = "completed", status, data, headers
        return JSONResponse(data, status_code=status, headers=headers)

    def _claim(self, tenant: str) -> JSONResponse | None:
        """None: this request owns the key now. Otherwise the replayed response (or a problem raised)."""
        assert self.key is not None
        now = utcnow()
        abandoned = now - timedelta(seconds=self.settings.max_wait_s + IN_FLIGHT_MARGIN_S)
        for _ in range(3):
            try:
                with session_scope(self.settings.db_url) as s:
                    s.add(IdempotencyRow(tenant_id=tenant, key=self.key, fingerprint=self.fingerprint,
                                         state="in_flight", created_at=now,
                                         expires_at=now + timedelta(seconds=self.settings.idempotency_ttl_s)))
                return None
            except IntegrityError:
                pass  # the key is taken: look at the earlier request
            with session_scope(self.settings.db_url) as s:
                row = repo.idempotency_record(s, tenant, self.key)
                if row is None:
                    continue  # removed meanwhile: try to take it again
                if row.expires_at <= now or (row.state == "in_flight" and row.created_at < abandoned):
                    s.delete(row)
                    continue
                if row.fingerprint != self.fingerprint:
                    raise ApiProblem(422, "idempotency_key_reused", f"{HEADER} {self.key!r} was used for a "
                                     "different request; use a new key for a new request")
                if row.state == "in_flight":
                    raise ApiProblem(409, "idempotency_in_flight", f"a request with {HEADER} {self.key!r} is "
                                     "still being processed; retry shortly", headers={"Retry-After": "1"})
                return _response(row.status_code or 200, row.response or {},
                                 {**(row.headers or {}), REPLAYED_HEADER: "true"})
        raise ApiProblem(409, "idempotency_in_flight", f"{HEADER} {self.key!r} is contended; retry shortly",
                         headers={"Retry-After": "1"})

    def _forget(self, tenant: str) -> None:
        assert self.key is not None
        with session_scope(self.settings.db_url) as s:
            row = repo.idempotency_record(s, tenant, self.key)
            if row is not None and row.state == "in_flight" and row.fingerprint == self.fingerprint:
                s.delete(row)


def _response(status: int, body: BaseModel | dict, headers: dict[str, str]) -> JSONResponse:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return JSONResponse(data, status_code=status, headers=headers)


async def idempotency(
    request: Request,
    key: Annotated[str | None, Header(alias=HEADER, min_length=1, max_length=255, description=(
        "any unique string (e.g. a UUID); retrying with the same key and body returns the first response "
        "instead of creating a second resource"))] = None,
) -> Idempotency:
    body = await request.body()  # Starlette caches it: the route still parses the same bytes
    fp = fingerprint(request.method, request.url.path, request.url.query, body)
    return Idempotency(key, fp, request.app.state.settings)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


def purge_expired(session: Session) -> int:
    """Delete expired records (the API's reaper thread calls this; use also re-checks expiry)."""
    stmt = delete(IdempotencyRow).where(IdempotencyRow.expires_at <= utcnow())
    return session.execute(stmt.execution_options(synchronize_session=False)).rowcount
