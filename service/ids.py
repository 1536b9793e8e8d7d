"""Time-sortable, prefixed ids (``job_…``, ``aud_…``, ``adp_…``, ``mdl_…``, ``key_…``).

A 48-bit millisecond timestamp followed by 64 random bits, hex encoded at fixed width: ordering by
id is ordering by creation time, which is what keyset (cursor) pagination needs, and the prefix
tells a reader (and a support ticket) what kind of object an id names.
"""

from __future__ import annotations

import secrets
import time

PREFIXES = {"model": "mdl", "unlearn": "job", "memo": "aud", "adapter": "adp", "api_key": "key",
            "webhook_endpoint": "whe", "webhook_message": "msg"}


def new_id(kind: str) -> str:
    ms = time.time_ns() // 1_000_000
    return f"{PREFIXES[kind]}_{ms:012x}{secrets.token_hex(8)}"
