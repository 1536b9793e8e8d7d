"""Inverters: counter-factual answers for each fact (MEOW step 1), one plug-in per module.

``invert(facts, config)`` is the entry point; ``InverterConfig.kind`` picks the plug-in from
``INVERTERS``: ``rule`` (offline, deterministic; the default), ``openai`` (any OpenAI-compatible
chat endpoint), ``hf`` (a local instruct model) or ``given`` (caller-supplied candidates).
"""

from __future__ import annotations

from collections.abc import Sequence

from meow_engine.config import InverterConfig
from meow_engine.errors import FactsError
from meow_engine.facts import Fact
from meow_engine.inverters import given, hf, openai, rule  # noqa: F401  (register the plug-ins)
from meow_engine.inverters.base import INVERTERS, InversionSet, Inverter
from meow_engine.inverters.cleanup import clean_candidates, clean_response, normalize
from meow_engine.inverters.prompt import SYSTEM_PROMPT
from meow_engine.progress import NULL_REPORTER, Reporter

__all__ = ["INVERTERS", "Inverter", "InversionSet", "SYSTEM_PROMPT", "clean_candidates", "clean_response",
           "invert", "normalize"]


def invert(facts: Sequence[Fact], config: InverterConfig, *, context_facts: Sequence[Fact] | None = None,
           reporter: Reporter | None = None) -> list[InversionSet]:
    """Inverted answers for every fact, in fact order (``result[i].fact_index == i``).

    ``context_facts`` (e.g. the retain facts) are not inverted; the ``rule`` inverter draws
    same-kind replacements from them. Progress is reported as stage ``invert``.
    """
    facts = list(facts)
    if not facts:
        raise FactsError("no facts to invert")
    inverter = INVERTERS.get(config.kind)(config)
    return inverter.invert(facts, context_facts=list(context_facts or []), reporter=reporter or NULL_REPORTER)
