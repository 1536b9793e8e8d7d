"""Who is calling: ``Authorization: Bearer meow_sk_…`` → a tenant and its scopes.

No or a bad key → 401 (with ``WWW-Authenticate: Bearer``); a valid key without the route's scope
→ 403. Resources of other tenants are never reported as forbidden: the repository layer only
finds a tenant's own rows, so they answer 404 like ids that do not exist. With ``MEOW_AUTH=off``
(local use) every request is the ``default`` tenant with every scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.deps import get_session
from api.problems import ApiProblem
from service import logs
from service.keys import ADMIN, SCOPES, authenticate
from service.tables import DEFAULT_TENANT

_bearer = HTTPBearer(auto_error=False, description="an API key: `meow keys create --tenant T --scopes …`")


@dataclass(frozen=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    key_id: str | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes


AUTH_OFF = Principal(DEFAULT_TENANT, frozenset(SCOPES))


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="meow"'})


def current_principal(request: Request, session: Annotated[Session, Depends(get_session)],
                      creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    settings = request.app.state.settings
    if settings.auth == "off":
        logs.bind(tenant=AUTH_OFF.tenant)
        return AUTH_OFF
    if creds is None or creds.scheme.lower() != "bearer":
        raise _unauthorized("an API key is required: send Authorization: Bearer meow_sk_…")
    owner = authenticate(session, settings, creds.credentials)
    # End the look-up's transaction: a request that then streams (SSE) or waits holds no pooled
    # connection for it (the pool holds 15; 16 open event streams would exhaust it).
    session.commit()
    if owner is None:
        raise _unauthorized("the API key is not valid (unknown, malformed or revoked)")
    logs.bind(tenant=owner.tenant, key_id=owner.key_id)  # on this request's log lines (service/logs.py)
    return Principal(owner.tenant, owner.scopes, owner.key_id)


def require(scope: str) -> Callable[..., Principal]:
    """A dependency giving the caller, refusing (403) one whose key lacks ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def dependency(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        # counted before the scope check: refused requests cost the caller too (MEOW_RATE_LIMIT)
        request.app.state.limiter.hit(principal.key_id or f"tenant:{principal.tenant}")
        if not principal.has(scope):
            raise ApiProblem(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


ModelsRead = Annotated[Principal, Depends(require("models:read"))]
ModelsWrite = Annotated[Principal, Depends(require("models:write"))]
JobsRead = Annotated[Principal, Depends(require("jobs:read"))]
JobsWrite = Annotated[Principal, Depends(require("jobs:write"))]
MemoWrite = Annotated[Principal, Depends(require("memo:write"))]
AdaptersRead = Annotated[Principal, Depends(require("adapters:read"))]
#: create, list and delete webhook endpoints and read their deliveries (endpoints carry signing secrets)
WebhooksWrite = Annotated[Principal, Depends(require("webhooks:write"))]
