"""What every inverter returns, and the loop they share.

An inverter turns each fact into up to ``n`` counter-factual answers. Results keep the raw
response (for audit: what the LLM really said before cleanup) and flags instead of silent
padding, so a short set is visible in reports rather than hidden by duplicated rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from meow_engine.config import InverterConfig
from meow_engine.facts import Fact
from meow_engine.progress import Reporter
from meow_engine.registry import Registry
from meow_engine.sensitive import Span

#: fewer usable candidates than ``n`` after cleanup (never padded)
FEWER_THAN_REQUESTED = "fewer_than_requested"
#: the response held more usable lines than ``n``; the first ``n`` were kept (all are in ``raw``)
TRUNCATED = "truncated"
#: a second request was made because the first one gave fewer than ``n`` usable candidates
EXTRA_CALL = "extra_call"
#: the shared filter (``screen``) removed at least one candidate; ``InversionSet.rejected`` says why
REJECTED = "rejected_candidates"
#: fewer valid candidates than the selection needs (or none at all): the fact cannot be unlearned
#: by MEOW as asked; ``InversionSet.uninvertible`` says why in words
UNINVERTIBLE = "uninvertible"

STAGE = "invert"


@dataclass
class InversionSet:
    """The inverted answers of one fact (``fact_index`` into the list given to ``invert``).

    ``raw`` is what the candidates were cleaned from: the model's text (``openai``/``hf``, several
    responses joined by newlines after an extra call), the swap log (``rule``) or the strings the
    caller supplied (``given``).

    ``candidates`` are only the valid ones: ``invert`` screens every plug-in's output and moves
    each candidate that repeats a sensitive span or the true answer, or duplicates another, to
    ``rejected`` (``{"text": ..., "reason": ...}``). ``spans`` are the sensitive spans screened
    against (``sensitive.Span``: text, kind, offsets, ``source`` "given" or "detected").
    ``uninvertible`` is the human-readable reason when the set has too few valid candidates
    (set by ``invert`` when none is left, by ``mark_uninvertible`` for a selection's ``k``).
    """

    fact_index: int
    candidates: list[str]
    raw: str | None = None
    flags: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    uninvertible: str | None = None

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {"fact_index": self.fact_index, "candidates": list(self.candidates), "raw": self.raw,
                "flags": list(self.flags), "n_candidates": self.n_candidates,
                "rejected": [dict(r) for r in self.rejected], "spans": [s.to_dict() for s in self.spans],
                "uninvertible": self.uninvertible}


def finish(fact_index: int, candidates: list[str], n: int, raw: str | None, flags: Sequence[str] = (),
           truncate: bool = True) -> InversionSet:
    """Cap at ``n`` and flag short sets: the one place the short/long policy lives."""
    out_flags = list(flags)
    if truncate and len(candidates) > n:
        candidates = candidates[:n]
        out_flags.append(TRUNCATED)
    if len(candidates) < n:
        out_flags.append(FEWER_THAN_REQUESTED)
    return InversionSet(fact_index=fact_index, candidates=list(candidates), raw=raw, flags=out_flags)


class Inverter:
    """Base class: subclasses implement ``invert_one`` (and ``prepare`` when they need all facts).

    ``invert`` runs facts in order, reporting progress and polling the stop flag between facts;
    inverters that talk to a network endpoint override it to run facts concurrently.
    """

    name: ClassVar[str] = ""
    #: the target model when the caller has one (``invert(..., lm=)``); plug-ins may ignore it
    lm_hint: Any = None
    #: the request's shared vocabulary (``sensitive.frame_words``), set by ``invert``
    frame: frozenset[str] = frozenset()

    def __init__(self, config: InverterConfig) -> None:
        self.config = config

    def prepare(self, facts: Sequence[Fact], context_facts: Sequence[Fact]) -> None:
        """Called once before the first fact (load a model, build replacement pools, validate)."""

    def invert_one(self, index: int, fact: Fact) -> InversionSet:
        raise NotImplementedError

    def invert(self, facts: Sequence[Fact], *, context_facts: Sequence[Fact], reporter: Reporter
               ) -> list[InversionSet]:
        self.prepare(facts, context_facts)
        total = len(facts)
        reporter.emit(STAGE, 0, total)
        out: list[InversionSet] = []
        for i, fact in enumerate(facts):
            reporter.check_stop()
            out.append(self.invert_one(i, fact))
            reporter.emit(STAGE, i + 1, total)
        return out


#: name -> Inverter subclass; ``invert`` instantiates the one ``InverterConfig.kind`` names
INVERTERS: Registry[type[Inverter]] = Registry("inverter")
