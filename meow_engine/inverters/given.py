"""``given``: candidates the caller already has (hand-written, or from another system).

They still go through cleanup and then the shared screen (``invert``), so a copy of the true
answer, a candidate that repeats a sensitive span, or a duplicate never becomes a training target:
each is kept in ``InversionSet.rejected`` with its reason, and a fact left with none is flagged
``uninvertible`` (not an error: the other facts of the job are still usable). All valid candidates
are kept (the caller chose them; ``n`` only decides the ``fewer_than_requested`` flag), one
candidate per string: they are not split on newlines. An empty list is a caller error.
"""

from __future__ import annotations

from collections.abc import Sequence

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.inverters.base import INVERTERS, InversionSet, Inverter, finish
from meow_engine.inverters.cleanup import clean_candidates_with_reasons


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
        cleaned, dropped = clean_candidates_with_reasons([" ".join(c.split()) for c in raw], fact.answer)
        if not cleaned and not dropped:
            raise ConfigError(f"inverter 'given': candidates[{index}] has no usable candidate for fact {index} "
                              f"(empty strings only, or no strings)")
        out = finish(index, cleaned, self.config.n, raw="\n".join(raw), flags=[], truncate=False)
        out.rejected.extend(dropped)
        return out
