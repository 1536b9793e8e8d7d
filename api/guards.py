"""Input guards: what a request may carry before any of it reaches the database, a worker or a reply.

Why these exist (issue 9, a hostile tester): PostgreSQL's ``text`` rejects NUL characters and its
``bigint`` stops at 2^63-1, so such values used to surface as 500s from the driver; fields without a
size cap let one request store (and a 422 echo back) 100K characters; and checks only the worker made
(seeds, target modules, ...) turned a bad request into a job that failed after a 202. Every field
cap is declared here once; ``api.schemas`` and the routes import them (what a problem echoes at
most is ``api.problems.MAX_ECHO_CHARS``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import Request

from api.problems import clip, invalid

#: PostgreSQL ``bigint`` (event ids) and the widest seed every RNG the engine seeds accepts
#: (``numpy.random.default_rng`` refuses negatives; torch generators stop at 64 bits)
INT64_MAX = 2**63 - 1
EVENT_ID_MAX = INT64_MAX
SEED_MAX = INT64_MAX

#: caps on request fields the engine config leaves unbounded
MAX_REF_CHARS = 256            # a model / adapter reference (id or name), an inverter model name
MAX_URL_CHARS = 2048           # inverter.base_url
MAX_PROMPT_CHARS = 8000        # inverter.prompt (a system prompt)
MAX_KEY_CHARS = 1024           # inverter.api_key
MAX_CANDIDATES_PER_FACT = 32   # inverter.candidates[i] (the same bound as inverter.n)
MAX_CANDIDATE_CHARS = 2000     # one candidate answer
MAX_TARGET_MODULES = 64        # finetune.target_modules
MAX_MODULE_CHARS = 128         # one target module name
MAX_METHOD_PARAMS_CHARS = 4096  # method_params, as JSON
MAX_PREFIX_CHARS = 512         # leak_audit.extraction_prefixes[i]

#: a PEFT target module: a dotted path of identifiers (layer indices allowed), e.g. ``self_attn.q_proj``
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
LAST_EVENT_ID = re.compile(r"[0-9]{1,19}")


def bad_text(s: str) -> str | None:
    """Why ``s`` cannot be stored as text (NUL, or a lone surrogate UTF-8 cannot encode), or None."""
    if "\x00" in s:
        return "contains a NUL character (U+0000), which no text field accepts"
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode text)"
    return None


def find_unstorable(value: Any) -> str | None:
    """``"<where> <why>"`` for the first string (or key) in a parsed JSON body that cannot be stored
    as text, or number that is not JSON (NaN, Infinity: Python's parser accepts them), else None.
    Iterative: a body nested hundreds deep must not exhaust the stack here."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        loc, v = stack.pop()
        if isinstance(v, str):
            if why := bad_text(v):
                return f"{clip(loc or 'value', 120)} {why}"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return f"{clip(loc or 'value', 120)} is not a finite number (NaN and Infinity are not JSON)"
        elif isinstance(v, dict):
            for k in v:
                if isinstance(k, str) and (why := bad_text(k)):
                    return f"a key in {clip(loc or 'the body', 120)} {why}"
            stack.extend((f"{loc}/{k}" if loc else str(k), sub) for k, sub in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend((f"{loc}/{i}" if loc else str(i), sub) for i, sub in reversed(list(enumerate(v))))
    return None


def reject_unstorable_body(data: Any) -> Any:
    """A ``model_validator(mode="before")`` body: refuse what the database (or JSON) cannot hold."""
    if found := find_unstorable(data):
        raise ValueError(found)
    return data


def reject_unstorable_request(request: Request) -> None:
    """App-wide dependency: path, query and header values must be storable text (422, never a
    driver 500; an ``Idempotency-Key`` is stored, for one)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (why := bad_text(value)):
            raise invalid(f"path/{name}", why, "invalid_text")
    for name, value in request.query_params.multi_items():
        if why := bad_text(name) or bad_text(value):
            raise invalid(f"query/{clip(name, 64)}", why, "invalid_text")
    for name, value in request.headers.items():
        if "\x00" in value:
            raise invalid(f"header/{clip(name, 64)}", "contains a NUL character (U+0000)", "invalid_text")


def last_event_id(request: Request) -> int | None:
    """The ``Last-Event-ID`` header as an event id, or None when absent; a 422 when it is not one."""
    raw = request.headers.get("last-event-id")
    if raw is None or raw == "":
        return None
    if not LAST_EVENT_ID.fullmatch(raw) or int(raw) > EVENT_ID_MAX:
        raise invalid("header/last-event-id", f"must be an event id (0 to {EVENT_ID_MAX})", "less_than_equal")
    return int(raw)


def check_seed(value: int) -> int:
    """A seed every engine RNG accepts (the worker used to fail on the rest after a 202)."""
    if not 0 <= value <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX} (2^63-1); got {clip(str(value), 40)}")
    return value
