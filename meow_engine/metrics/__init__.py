"""TOFU metrics, membership scores and the oracle-free forgetting report.

Every metric is registered in ``METRICS`` under a stable name so the CLI, the benchmark and the
service can list and call them by name; a new metric is one function plus one
``@register_metric(...)`` line. Registered callables take different inputs (a TOFU log, two logs,
a model and facts), so each entry states its ``inputs`` for callers that dispatch generically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meow_engine.registry import Registry


@dataclass(frozen=True)
class MetricDef:
    name: str
    fn: Callable[..., Any]
    inputs: str
    description: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


METRICS: Registry[MetricDef] = Registry("metric")


def register_metric(name: str, inputs: str, description: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` under ``name`` and return it unchanged (so modules keep plain functions)."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        METRICS.register(name)(MetricDef(name=name, fn=fn, inputs=inputs, description=description))
        return fn

    return decorator


# Importing the modules registers their metrics.
from meow_engine.metrics import aggregate, mink  # noqa: E402,F401

__all__ = ["METRICS", "MetricDef", "register_metric"]
