"""The ``given`` inverter: caller-supplied candidates, validated and cleaned."""

from __future__ import annotations

import pytest

from meow_engine.config import InverterConfig
from meow_engine.errors import ConfigError, FactsError
from meow_engine.facts import Fact
from meow_engine.inverters import INVERTERS, invert
from meow_engine.inverters.base import FEWER_THAN_REQUESTED

FACTS = [Fact("Where was Elara Voss born?", "Elara Voss was born in Port Meridian."),
         Fact("What does Tomas Quill write?", "Tomas Quill writes gothic mystery novels.")]


def test_registry_has_the_four_inverters():
    assert INVERTERS.names() == ["given", "hf", "openai", "rule"]
    with pytest.raises(ConfigError, match="unknown inverter 'gpt'; known: given, hf, openai, rule"):
        invert(FACTS, InverterConfig(kind="gpt"))
    with pytest.raises(FactsError, match="no facts"):
        invert([], InverterConfig())


def test_given_candidates_are_cleaned_and_kept():
    cands = [["Elara Voss was born in Kestrel Bay.", " elara voss was born in port meridian ", "  Elara  Voss was "
              "born in Kestrel Bay.", "Elara Voss was born in Lumen."],
             ["1. Tomas Quill writes cookbooks.", "Tomas Quill writes poetry.", "Tomas Quill writes plays.",
              "Tomas Quill writes essays.", "Tomas Quill writes comics."]]
    sets = invert(FACTS, InverterConfig(kind="given", n=4, candidates=cands))
    assert sets[0].candidates == ["Elara Voss was born in Kestrel Bay.", "Elara Voss was born in Lumen."]
    assert sets[0].flags == [FEWER_THAN_REQUESTED]
    # all five kept: the caller chose them; n only decides the flag
    assert sets[1].candidates == ["Tomas Quill writes cookbooks.", "Tomas Quill writes poetry.",
                                  "Tomas Quill writes plays.", "Tomas Quill writes essays.",
                                  "Tomas Quill writes comics."]
    assert sets[1].flags == []
    assert sets[1].raw.splitlines()[0] == "1. Tomas Quill writes cookbooks."


@pytest.mark.parametrize("cands, msg", [
    (None, "needs candidates"),
    ([["x"]], r"1 candidate list\(s\) for 2 fact\(s\)"),
    ([["x"], ["y"], ["z"]], r"3 candidate list\(s\) for 2 fact\(s\)"),
    ([["x"], "y"], r"candidates\[1\] must be a list of strings, got str"),
    ([["x"], ["y", 3]], r"candidates\[1\]\[1\] must be a string, got int"),
    ([["x"], []], r"candidates\[1\] has no usable candidate"),
    ([["x"], ["  "]], r"candidates\[1\] has no usable candidate"),
])
def test_given_validation(cands, msg):
    # model_construct skips pydantic's own type checks: the inverter must still reject bad shapes
    config = InverterConfig.model_construct(**{**InverterConfig().model_dump(), "kind": "given", "candidates": cands})
    with pytest.raises(ConfigError, match=msg):
        invert(FACTS, config)
