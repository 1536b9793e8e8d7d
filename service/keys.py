"""API keys: made, looked up, listed and revoked here (the API and ``meow keys`` both use this).

A key is ``meow_sk_`` + 43 random url-safe characters + an 8-hex CRC32 of them: the prefix lets
secret scanners spot leaked keys, the checksum rejects mistyped or made-up keys without a database
query. Only ``HMAC-SHA256(secret, key)`` is stored (the approach of Polar's ``kit/crypto.py``); a
stolen table alone cannot be turned back into keys. Look-up is by that digest, and the stored
digest is compared again with ``hmac.compare_digest`` so no timing difference depends on it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.ids import new_id
from service.settings import Settings
from service.tables import ApiKeyRow, utcnow

KEY_PREFIX = "meow_sk_"
SCOPES: tuple[str, ...] = ("models:read", "models:write", "jobs:read", "jobs:write", "memo:write", "adapters:read",
                           "webhooks:write", "admin")
#: ``admin`` holds every scope and may share models with all tenants
ADMIN = "admin"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
_KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}([A-Za-z0-9_\-]{{43}})([0-9a-f]{{8}})$")
#: ``last_used_at`` is written at most this often per key (not on every request)
LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyProblem(ValueError):
    """A bad tenant name, scope or key id given to ``meow keys`` (one line for the CLI)."""


@dataclass(frozen=True)
class CreatedKey:
    id: str
    key: str
    tenant: str
    scopes: list[str]


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key belongs to and what it may do."""

    key_id: str
    tenant: str
    scopes: frozenset[str]


def hmac_secret(settings: Settings) -> bytes:
    """``MEOW_SECRET_KEY``; for local (SQLite) use, a random secret kept in ``<data_dir>/secret_key``."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.is_production:
        raise ValueError("MEOW_SECRET_KEY must be set with a Postgres database (it keys the API-key hashes)")
    path = settings.data_dir / "secret_key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def _digest(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def _checksum(body: str) -> str:
    return f"{zlib.crc32(body.encode()) & 0xFFFFFFFF:08x}"


def well_formed(key: str) -> bool:
    m = _KEY_PATTERN.match(key)
    return m is not None and hmac.compare_digest(_checksum(m.group(1)), m.group(2))


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyProblem(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SCOPES)}")
    return sorted(set(scopes), key=SCOPES.index)


def create_key(session: Session, settings: Settings, tenant: str, scopes: list[str]) -> CreatedKey:
    if not TENANT_PATTERN.match(tenant):
        raise KeyProblem(f"tenant {tenant!r}: use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    scopes = check_scopes(scopes)
    body = secrets.token_urlsafe(32)
    key = KEY_PREFIX + body + _checksum(body)
    row = ApiKeyRow(id=new_id("api_key"), tenant_id=tenant, key_hash=_digest(hmac_secret(settings), key),
                    prefix=key[:len(KEY_PREFIX) + 6], scopes=scopes)
    session.add(row)
    session.flush()
    return CreatedKey(row.id, key, tenant, scopes)


def list_keys(session: Session) -> list[ApiKeyRow]:
    return list(session.execute(select(ApiKeyRow).order_by(ApiKeyRow.id)).scalars())


def revoke_key(session: Session, key_id: str) -> bool:
    """True if ``key_id`` was active and is now revoked."""
    stmt = (update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    if session.execute(stmt).rowcount == 1:
        return True
    if session.get(ApiKeyRow, key_id) is None:
        raise KeyProblem(f"no key {key_id!r}")
    return False


def authenticate(session: Session, settings: Settings, key: str) -> KeyOwner | None:
    """The owner of an active ``key``, or None (unknown, malformed or revoked: callers cannot tell which)."""
    if not well_formed(key):
        return None
    digest = _digest(hmac_secret(settings), key)
    row = session.execute(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKeyRow).where(ApiKeyRow.id == row.id).values(last_used_at=now)
                        .execution_options(synchronize_session=False))
        session.commit()
    return KeyOwner(row.id, row.tenant_id, frozenset(row.scopes))
