"""meow_engine: MEOW unlearning (inverted facts + MEMO + finetune) and TOFU evaluation.

The package imports no web, database or queue code. Public names are imported lazily so that
``import meow_engine`` stays fast and does not pull in torch until a function needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Fact": "meow_engine.facts",
    "load_facts": "meow_engine.facts",
    "save_facts": "meow_engine.facts",
    "load_model": "meow_engine.models",
    "LoadedModel": "meow_engine.models",
    "UnlearnConfig": "meow_engine.config",
    "InverterConfig": "meow_engine.config",
    "SelectionConfig": "meow_engine.config",
    "MemoConfig": "meow_engine.config",
    "FinetuneConfig": "meow_engine.config",
    "ProgressEvent": "meow_engine.progress",
    "MeowError": "meow_engine.errors",
    "compute_memo": "meow_engine.memo",
    "memo_scores": "meow_engine.memo",
    "invert": "meow_engine.inverters",
    "INVERTERS": "meow_engine.inverters",
    "select_candidates": "meow_engine.selection",
    "METHODS": "meow_engine.methods",
    "finetune": "meow_engine.training",
    "unlearn": "meow_engine.pipeline",
    "UnlearnResult": "meow_engine.pipeline",
    "METRICS": "meow_engine.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'meow_engine' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
