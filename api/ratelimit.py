"""Per-key rate limits (``MEOW_RATE_LIMIT``) and the per-tenant cap on queued jobs (``MEOW_MAX_QUEUED_JOBS``).

Counters live in the ``limits`` library's storage: the broker's Redis in production, so every API
process shares one count per key, and process memory for ``meow serve``. A moving window counts
exactly the requests of the last period (no double burst at a fixed window's edge). Over the limit
→ 429 problem+json with ``Retry-After``. If the counter storage is unreachable the request passes
(and a warning is logged): the limiter protects the service, it must not take it down.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many, storage, strategies

from api.problems import ApiProblem
from service.settings import Settings

log = logging.getLogger("meow.api")

NAMESPACE = "meow-api"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.items: list[RateLimitItem] = parse_many(settings.rate_limit) if settings.rate_limit.strip() else []
        self.uri = settings.rate_limit_storage_uri
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(self.uri)) if self.items \
            else None

    def hit(self, identity: str) -> None:
        """Count one request of ``identity`` (an API key id); 429 once a window is full."""
        if self._limiter is None:
            return
        for item in self.items:
            try:
                allowed = self._limiter.hit(item, NAMESPACE, identity)
                if allowed:
                    continue
                reset = self._limiter.get_window_stats(item, NAMESPACE, identity).reset_time
            except Exception as e:  # noqa: BLE001 - storage down: let the request through
                log.warning("rate limit storage %s unavailable: %s", self.uri.split("@")[-1], e)
                return
            retry = max(1, math.ceil(reset - time.time()))
            raise ApiProblem(429, "rate_limited", f"this API key is over its rate limit ({item.amount} requests per "
                             f"{item.multiples} {item.GRANULARITY.name}(s), MEOW_RATE_LIMIT); retry in {retry} s",
                             headers={"Retry-After": str(retry)})
