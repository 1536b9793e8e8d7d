"""Job states and which transitions are legal; shared by the API (cancel) and workers (claim, finish)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    queued = "queued"
    running = "running"
    cancelling = "cancelling"
    cancelled = "cancelled"
    succeeded = "succeeded"
    failed = "failed"
    crashed = "crashed"


TERMINAL = frozenset({Status.cancelled, Status.succeeded, Status.failed, Status.crashed})
ACTIVE = frozenset({Status.queued, Status.running, Status.cancelling})
#: states a worker owns; a stale heartbeat in one of these means the worker died
RUNNING = frozenset({Status.running, Status.cancelling})

KINDS = ("unlearn", "memo")
