"""Structured logs: one JSON object per line, with the ``request_id``, ``tenant`` and ``job_id`` bound
where the line was written (the API binds the first two per request, workers ``job_id`` per task).

Every module keeps logging through the standard library (``logging.getLogger("meow.…")``); the
formatter installed here runs structlog's processors over those records too, so library and
Celery lines come out in the same shape. Values are bound with ``structlog.contextvars``: they
follow a request into FastAPI's thread pool and a task into its Celery child. Log lines carry ids,
states and counts, never fact text (``tests/service/test_purge.py`` scans the logs).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar, Token
from typing import Any

import structlog

HANDLER_NAME = "meow-structured"

#: one mutable dict per request: FastAPI runs each sync dependency and the endpoint in its own copy
#: of the context, so values bound by one (the tenant, found by the auth dependency) must live in an
#: object they all share rather than in a context variable each copy rebinds
_request: ContextVar[dict[str, Any] | None] = ContextVar("meow_log_request", default=None)


def start_request(**values: Any) -> Token[dict[str, Any] | None]:
    return _request.set(dict(values))


def end_request(token: Token[dict[str, Any] | None]) -> None:
    _request.reset(token)


def bind(**values: Any) -> None:
    """Add ``values`` to every later log line of this request (or, outside one, of this context)."""
    ctx = _request.get()
    if ctx is not None:
        ctx.update(values)
    else:
        structlog.contextvars.bind_contextvars(**values)


def request_values() -> dict[str, Any]:
    return dict(_request.get() or {})


def _merge_request(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for k, v in (_request.get() or {}).items():
        event.setdefault(k, v)
    return event


def configure_logging(*, json_logs: bool = True, level: str = "INFO") -> None:
    """Route the root logger through structlog (idempotent: a second call replaces the handler)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _merge_request,
        structlog.stdlib.ExtraAdder(),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(), wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True)
    renderer = structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
