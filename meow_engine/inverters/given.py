"""``given``: candidates the caller already has (hand-written, or from another system).

They still go through cleanup, so a copy of the true answer or a duplicate never becomes a
training target. All cleaned candidates are kept (the caller chose them; ``n`` only decides the
``fewer_than_requested`` flag), one candidate per string: they are not split on newlines.
"""

from __future__ import annotations

from collections.abc import Sequence

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.inverters.base import INVERTERS, InversionSet, Inverter, finish
from meow_engine.inverters.cleanup import clean_candidates


@INVERTERS.register("given")
class GivenInverter(Inverter):
    name = "given"

    def prepare(self, facts: Sequence[Fact], context_facts: Sequence[Fact]) -> None:
        given = self.config.candidates
        if given is None:
            raise ConfigError("inverter 'given' needs candidates: one list of strings per fact, in fact order")
        if not isinstance(given, list):
            raise ConfigError(f"inverter 'given': candidates must be a list of lists, got {type(given).__name__}")
        if len(given) != len(facts):
            raise ConfigError(
                f"inverter 'given': {len(given)} candidate list(s) for {len(facts)} fact(s); give one list per fact"
            )
        for i, items in enumerate(given):
            if not isinstance(items, list):
                raise ConfigError(f"inverter 'given': candidates[{i}] must be a list of strings, "
                                  f"got {type(items).__name__}")
            for j, c in enumerate(items):
                if not isinstance(c, str):
                    raise ConfigError(f"inverter 'given': candidates[{i}][{j}] must be a string, "
                                      f"got {type(c).__name__}")
        self._given = given

    def invert_one(self, index: int, fact: Fact) -> InversionSet:
        raw = self._given[index]
        cleaned = clean_candidates([" ".join(c.split()) for c in raw], fact.answer)
        if not cleaned:
            raise ConfigError(
                f"inverter 'given': candidates[{index}] has no usable candidate for fact {index} "
                f"(empty, or only copies of the true answer)"
            )
        return finish(index, cleaned, self.config.n, raw="\n".join(raw), flags=[], truncate=False)
