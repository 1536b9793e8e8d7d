"""Names the API validates against without importing the engine's torch-side registries.

``tests/service/test_catalog.py`` checks these lists against ``meow_engine.methods.METHODS``,
``meow_engine.inverters.INVERTERS`` and ``meow_engine.models.NAMED_MODELS`` so they cannot drift.
"""

from __future__ import annotations

from typing import Literal

MethodName = Literal["meow", "ga", "gd", "kl", "npo", "npo_gd", "idk", "dpo", "simnpo"]
METHOD_NAMES: tuple[str, ...] = MethodName.__args__  # type: ignore[attr-defined]

InverterKind = Literal["rule", "openai", "hf", "given"]
INVERTER_KINDS: tuple[str, ...] = InverterKind.__args__  # type: ignore[attr-defined]

BUILTIN_MODELS: tuple[str, ...] = ("demo:tiny", "smollm2-135m-instruct")
