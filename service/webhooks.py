"""Webhooks: job state changes delivered to a tenant's endpoints, signed as Standard Webhooks.

Each state change writes one ``webhook_messages`` row per subscribed endpoint in the transaction
that makes the change (an outbox: no event is sent for a change that rolled back, none is lost
when the process dies after the commit). A sender thread in the API process (``deliver_due``,
every ``MEOW_WEBHOOK_POLL_S``) claims due messages with a conditional UPDATE (a lease, so API
replicas never send one attempt twice), POSTs them with ``standardwebhooks`` signatures
(``webhook-id`` stays the same across retries) and records every attempt in
``webhook_deliveries``. A failed attempt is retried after ``MEOW_WEBHOOK_RETRY_S[i]``; after the
last one the message is ``failed``. Neither the API request nor the worker's job ever waits on a
receiver. Workers never send: GPU machines need no route to tenants' servers.

Payloads carry the job's id, object, status, verdict and error code: never fact text (a receiver
GETs the job for more). Targets in private, loopback and link-local ranges are refused unless
``MEOW_WEBHOOK_ALLOW`` names them, at creation (422) and again before each attempt (DNS may change).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from service.db import session_scope
from service.ids import new_id
from service.inverter_endpoints import is_public, resolve_target
from service.settings import Settings
from service.states import Status
from service.tables import JobRow, WebhookDeliveryRow, WebhookEndpointRow, WebhookMessageRow, utcnow

log = logging.getLogger("meow.webhooks")

#: what each job kind is called on the wire (the ``object`` of the API's job resources)
OBJECTS = {"unlearn": "unlearn.job", "memo": "memo.audit"}
#: every event type an endpoint may subscribe to: ``<object>.<status>``
EVENT_TYPES: tuple[str, ...] = tuple(f"{obj}.{st.value}" for obj in OBJECTS.values() for st in Status)
#: the receiver's body is kept up to this many characters per attempt
RESPONSE_CHARS = 2048
#: a claimed message is not picked again for this long (one attempt's timeout plus margin)
LEASE = timedelta(seconds=60)
SECRET_PREFIX = "whsec_"
#: the sender's own connection pool: a slow receiver never holds a connection requests need
POOL = "webhooks"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _allowed(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str, allow: list[str]) -> bool:
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def target_problem(url: str, settings: Settings) -> str | None:
    """Why ``url`` may not receive webhooks (None: it may)."""
    resolved = resolve_target(url)
    if isinstance(resolved, str):
        return resolved
    host, addresses = resolved
    bad = sorted(str(a) for a in addresses if not is_public(a) and not _allowed(a, host, settings.webhook_allow))
    if bad:
        return (f"host {host!r} is a private, loopback or link-local address ({', '.join(bad)}); the server must "
                "allow it (MEOW_WEBHOOK_ALLOW)")
    return None


def enqueue_status(session: Session, job_id: str, status: str) -> int:
    """Outbox rows for a job's new ``status`` (called in the transaction that sets it)."""
    job = session.execute(select(JobRow.tenant_id, JobRow.kind, JobRow.result, JobRow.error_code)
                          .where(JobRow.id == job_id)).first()
    if job is None:
        return 0
    type_ = f"{OBJECTS[job.kind]}.{status}"
    endpoints = [e for e in session.execute(select(WebhookEndpointRow.id, WebhookEndpointRow.events)
                                            .where(WebhookEndpointRow.tenant_id == job.tenant_id)).all()
                 if type_ in e.events]
    if not endpoints:
        return 0
    now = utcnow()
    data: dict[str, Any] = {"id": job_id, "object": OBJECTS[job.kind], "status": status}
    if isinstance(job.result, dict) and job.result.get("verdict") is not None:
        data["verdict"] = job.result["verdict"]
    if job.error_code:
        data["error_code"] = job.error_code
    payload = {"type": type_, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    for e in endpoints:
        session.add(WebhookMessageRow(id=new_id("webhook_message"), endpoint_id=e.id, job_id=job_id, type=type_,
                                      payload=payload, state="pending", attempts=0, next_attempt_at=now,
                                      created_at=now))
    return len(endpoints)


def _claim_due(session: Session, limit: int) -> list[str]:
    now = utcnow()
    due = session.execute(select(WebhookMessageRow.id, WebhookMessageRow.next_attempt_at)
                          .where(WebhookMessageRow.state == "pending", WebhookMessageRow.next_attempt_at <= now)
                          .order_by(WebhookMessageRow.next_attempt_at, WebhookMessageRow.id).limit(limit)).all()
    claimed = []
    for msg_id, at in due:
        stmt = (update(WebhookMessageRow)
                .where(WebhookMessageRow.id == msg_id, WebhookMessageRow.state == "pending",
                       WebhookMessageRow.next_attempt_at == at)
                .values(next_attempt_at=now + LEASE).execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount == 1:
            claimed.append(msg_id)
    return claimed


def _attempt(url: str, secret: str, msg_id: str, body: str, settings: Settings
             ) -> tuple[bool, int | None, str | None, str | None]:
    """(succeeded, status code, response excerpt, error) of one POST."""
    problem = target_problem(url, settings)
    if problem:
        return False, None, None, f"target refused: {problem}"
    now = utcnow()
    headers = {"content-type": "application/json", "user-agent": "meow-webhooks",
               "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, now, body)}
    try:
        with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
            r = client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as e:
        return False, None, None, f"{type(e).__name__}: {str(e)[:300]}"
    return 200 <= r.status_code < 300, r.status_code, r.text[:RESPONSE_CHARS], None


def deliver(settings: Settings, msg_id: str) -> bool:
    """One attempt of a claimed message; records it and schedules the next one. True: delivered."""
    with session_scope(settings.db_url, POOL) as s:
        row = s.execute(select(WebhookMessageRow, WebhookEndpointRow)
                        .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookMessageRow.endpoint_id)
                        .where(WebhookMessageRow.id == msg_id)).first()
        if row is None:  # the endpoint was deleted meanwhile
            return False
        msg, endpoint = row
        url, secret, payload, attempt = endpoint.url, endpoint.secret, msg.payload, msg.attempts + 1
    body = json.dumps(payload, separators=(",", ":"))
    started = time.monotonic()
    ok, code, response, error = _attempt(url, secret, msg_id, body, settings)
    duration = int((time.monotonic() - started) * 1000)
    now = utcnow()
    retries = settings.webhook_retry_s
    values: dict[str, Any] = {"attempts": attempt}
    if ok:
        values.update(state="delivered", finished_at=now, next_attempt_at=None)
    elif attempt > len(retries):
        values.update(state="failed", finished_at=now, next_attempt_at=None)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=retries[attempt - 1]))
    with session_scope(settings.db_url, POOL) as s:
        if s.get(WebhookEndpointRow, endpoint.id) is None:
            return False
        s.add(WebhookDeliveryRow(message_id=msg_id, endpoint_id=endpoint.id, attempt=attempt, succeeded=ok,
                                 status_code=code, response=response, error=error, duration_ms=duration,
                                 created_at=now))
        s.execute(update(WebhookMessageRow).where(WebhookMessageRow.id == msg_id).values(**values)
                  .execution_options(synchronize_session=False))
    if not ok:
        log.info("webhook %s attempt %d to endpoint %s failed: %s", msg_id, attempt, endpoint.id,
                 error or f"HTTP {code}")
    return ok


def deliver_due(settings: Settings, limit: int = 20) -> int:
    """Claim and attempt the messages that are due; returns how many were attempted."""
    with session_scope(settings.db_url, POOL) as s:
        claimed = _claim_due(s, limit)
    for msg_id in claimed:
        try:
            deliver(settings, msg_id)
        except Exception:  # noqa: BLE001 - the lease expires and the message is tried again
            log.exception("webhook %s delivery failed unexpectedly", msg_id)
    return len(claimed)
