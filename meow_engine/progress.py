"""Progress events and cooperative stop, shared by every long-running engine stage.

The engine never knows who listens: the CLI draws bars, the worker writes job events. A stage
calls ``reporter.emit(stage, step, total)``; ``reporter.check_stop()`` raises ``StopRequested``
when the caller's ``should_stop`` callable says so (the worker polls a DB flag through it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meow_engine.errors import StopRequested


@dataclass
class ProgressEvent:
    stage: str
    step: int
    total: int | None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]
StopCallback = Callable[[], bool]


class Reporter:
    """Wraps optional callbacks; throttles stop polling so a DB-backed check stays cheap."""

    def __init__(self, progress: ProgressCallback | None = None, should_stop: StopCallback | None = None,
                 stop_poll_s: float = 0.5) -> None:
        self._progress = progress
        self._should_stop = should_stop
        self._stop_poll_s = stop_poll_s
        self._last_poll = 0.0

    def emit(self, stage: str, step: int, total: int | None, message: str = "", **data: Any) -> None:
        if self._progress is not None:
            self._progress(ProgressEvent(stage, step, total, message, data))

    def stop_requested(self) -> bool:
        if self._should_stop is None:
            return False
        now = time.monotonic()
        if now - self._last_poll < self._stop_poll_s:
            return False
        self._last_poll = now
        return bool(self._should_stop())

    def check_stop(self) -> None:
        if self.stop_requested():
            raise StopRequested("stop requested")


NULL_REPORTER = Reporter()
