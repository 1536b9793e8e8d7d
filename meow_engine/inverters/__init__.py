"""Inverters: counter-factual answers for each fact (MEOW step 1), one plug-in per module.

``invert(facts, config)`` is the entry point; ``InverterConfig.kind`` picks the plug-in from
``INVERTERS``: ``rule`` (offline, deterministic, works on any fact; the default), ``openai`` (any
OpenAI-compatible chat endpoint), ``hf`` (a local instruct model) or ``given`` (caller-supplied
candidates).

Whatever the plug-in, ``invert`` then screens each set (``screen.screen``): candidates that repeat
a sensitive span of the fact (``sensitive.fact_spans``: given, else detected; cores included), that
are or contain the true answer, or that duplicate another, move to ``InversionSet.rejected`` with
their reason; ``InversionSet.spans`` records the spans screened against. A set left with no
candidate is flagged ``UNINVERTIBLE`` with a reason in ``InversionSet.uninvertible``.

For the pipeline, after ``invert``::

    sets = invert(forget, config.inverter, context_facts=retain, reporter=reporter, lm=lm)
    for s in mark_uninvertible(sets, config.selection.k):   # fewer than k valid candidates
        report(s.fact_index, s.uninvertible)                 # e.g. "only 1 of 4 candidates remove ..."

``lm`` (the target model, optional) is handed to plug-ins that can use it: ``rule`` with
``InverterConfig(model="target")`` samples word-like replacements from it with the true span's
tokens banned (AltPO-style, ``guided.py``; another ``model`` value names a local model to use
instead); without ``model`` the rule inverter is offline and uses its pools. Sets whose candidates
came partly from the model carry the ``model_guided`` flag.

Flags a set may carry: ``fewer_than_requested``, ``truncated``, ``extra_call`` (LLM plug-ins),
``borrowed_wording`` / ``model_guided`` (rule), ``rejected_candidates`` (the screen removed some;
see ``rejected``), ``uninvertible`` (see ``uninvertible``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from meow_engine.config import InverterConfig
from meow_engine.errors import FactsError
from meow_engine.facts import Fact
from meow_engine.inverters import given, hf, openai, rule  # noqa: F401  (register the plug-ins)
from meow_engine.inverters.base import (
    FEWER_THAN_REQUESTED,
    INVERTERS,
    REJECTED,
    UNINVERTIBLE,
    InversionSet,
    Inverter,
)
from meow_engine.inverters.cleanup import clean_candidates, clean_response, normalize
from meow_engine.inverters.prompt import SYSTEM_PROMPT
from meow_engine.inverters.screen import mark_uninvertible, rejection_reason, screen, uninvertible_reason
from meow_engine.progress import NULL_REPORTER, Reporter
from meow_engine.sensitive import fact_spans, frame_words

if TYPE_CHECKING:
    from meow_engine.models import LoadedModel

__all__ = ["FEWER_THAN_REQUESTED", "INVERTERS", "Inverter", "InversionSet", "REJECTED", "SYSTEM_PROMPT",
           "UNINVERTIBLE", "clean_candidates", "clean_response", "invert", "mark_uninvertible", "normalize",
           "rejection_reason", "screen", "uninvertible_reason"]


def invert(facts: Sequence[Fact], config: InverterConfig, *, context_facts: Sequence[Fact] | None = None,
           reporter: Reporter | None = None, lm: LoadedModel | None = None) -> list[InversionSet]:
    """Screened inverted answers for every fact, in fact order (``result[i].fact_index == i``).

    ``context_facts`` (e.g. the retain facts) are not inverted; the ``rule`` inverter draws
    same-kind replacements from them. Progress is reported as stage ``invert``.
    """
    facts = list(facts)
    if not facts:
        raise FactsError("no facts to invert")
    cls = INVERTERS.get(config.kind)
    inverter = cls(config)
    inverter.lm_hint = lm
    # the request's shared vocabulary is not secret: spans are found against it, here and in the audit
    inverter.frame = frame_words([*facts, *(context_facts or [])])
    sets = inverter.invert(facts, context_facts=list(context_facts or []), reporter=reporter or NULL_REPORTER)
    return [screen(facts[s.fact_index], s, config.n, spans=fact_spans(facts[s.fact_index], inverter.frame))
            for s in sets]
