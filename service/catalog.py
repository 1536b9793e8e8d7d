"""Plug-in names the API validates against, taken from the engine's torch-free declarations.

Methods come from ``meow_engine.methods.catalog`` (names, aliases and each method's ``Params``),
inverter kinds from the inverter registry (whose plug-ins import no torch); the API process can
therefore reject an unknown method, a typo in ``method_params`` or an unknown inverter with a
422 before anything is queued. Built-in model names are the one list kept here, because the
engine's model registry imports torch; ``tests/service/test_catalog.py`` checks it against it.
"""

from __future__ import annotations

from typing import Any, Literal

from meow_engine.inverters import INVERTERS
from meow_engine.methods.catalog import CATALOG

#: catalog methods the API does not offer: ``sft`` teaches facts (it makes target models)
TRAINING_ONLY = frozenset({"sft"})
METHOD_NAMES: tuple[str, ...] = tuple(n for n in CATALOG.names() if n not in TRAINING_ONLY)
#: canonical names plus the reference framework's aliases (``GradDiff`` → ``gd``)
METHOD_CHOICES: tuple[str, ...] = METHOD_NAMES + tuple(a for a, n in CATALOG.aliases().items()
                                                       if n not in TRAINING_ONLY)
MethodName: Any = Literal[METHOD_CHOICES]  # type: ignore[valid-type]

INVERTER_KINDS: tuple[str, ...] = tuple(INVERTERS.names())

BUILTIN_MODELS: tuple[str, ...] = ("demo:tiny", "smollm2-135m-instruct")
