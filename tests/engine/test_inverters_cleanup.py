"""Cleanup of raw inverter output: the documented, stricter-than-reference parsing (spec §2)."""

from __future__ import annotations

import pytest

from meow_engine.inverters.base import FEWER_THAN_REQUESTED, TRUNCATED, finish
from meow_engine.inverters.cleanup import clean_response, is_preamble, normalize, strip_marker

TRUTH = "Hina Ameen primarily writes in the geology genre."


@pytest.mark.parametrize("line", [
    "Sure! Here are 4 answers:", "Sure thing! Here are the answers:", "Here are four alternative answers:",
    "Here is a list", "Certainly, here you go:", "Of course! Below are some answers", "Okay, here goes",
    "Answers:", "Below are the answers",
])
def test_preambles_are_recognised(line):
    assert is_preamble(line)


@pytest.mark.parametrize("line", [
    "Hina Ameen primarily writes in the romance genre.", "Surely not the geology genre, but poetry.",
    "Heres a town in Spain.", "She writes science fiction.",
])
def test_answers_are_not_preambles(line):
    assert not is_preamble(line)


@pytest.mark.parametrize("line, expected", [
    ("1. Foo bar", "Foo bar"), ("2) Foo bar", "Foo bar"), ("3: Foo", "Foo"), ("#4. Foo", "Foo"),
    ("- Foo", "Foo"), ("* Foo", "Foo"), ("• Foo", "Foo"), ("(a) Foo", "Foo"), ("(3) Foo", "Foo"),
    ("b) Foo", "Foo"), ("Answer 2: Foo", "Foo"), ("1. - Foo", "Foo"), ('"Foo bar."', "Foo bar."),
    ("**Foo bar**", "Foo bar"), ("- **Foo**", "Foo"),
    # not markers: numbers and initials that belong to the answer
    ("3.5 million copies were sold.", "3.5 million copies were sold."), ("1990 was the year.", "1990 was the year."),
    ("J. K. Rowling wrote it.", "J. K. Rowling wrote it."), ("A. Smith wrote it.", "A. Smith wrote it."),
    ('"Dune" and "Emma" are hers.', '"Dune" and "Emma" are hers.'),
])
def test_strip_marker(line, expected):
    assert strip_marker(line) == expected


def test_clean_response_full_example():
    raw = ("Sure! Here are 4 answers:\r\n\r\n1. Hina Ameen primarily writes in the romance genre.\n"
           "2. Hina Ameen primarily writes in the romance genre.\n"   # exact duplicate
           "3. hina ameen primarily writes in the ROMANCE genre\n"    # duplicate after normalisation
           "  - Hina Ameen primarily writes in the Geology genre!  \n"  # the truth, re-cased/punctuated
           "\n   \n* Hina Ameen is best known for science fiction.\n"
           "Hina Ameen writes cookbooks.")
    assert clean_response(raw, TRUTH) == [
        "Hina Ameen primarily writes in the romance genre.",
        "Hina Ameen is best known for science fiction.",
        "Hina Ameen writes cookbooks.",
    ]


def test_clean_response_keeps_order_and_never_the_truth():
    assert clean_response(TRUTH + "\n" + TRUTH.lower(), TRUTH) == []
    assert clean_response("", TRUTH) == []
    assert clean_response("b\na\nb", TRUTH) == ["b", "a"]


def test_normalize():
    assert normalize("  Hello,   WORLD!! ") == "hello world"
    assert normalize("Café “quoted” — text") == normalize("café quoted text")
    assert normalize("Al-Kuwaiti's") == "al kuwaiti s"


def test_finish_flags_short_and_long_sets():
    assert finish(3, ["a", "b"], 4, raw="r").flags == [FEWER_THAN_REQUESTED]
    s = finish(0, ["a", "b", "c"], 2, raw=None)
    assert s.candidates == ["a", "b"] and s.flags == [TRUNCATED]
    assert finish(0, ["a", "b", "c"], 2, raw=None, truncate=False).candidates == ["a", "b", "c"]
    assert finish(1, ["a"], 1, raw="x").to_dict() == {"fact_index": 1, "candidates": ["a"], "raw": "x", "flags": [],
                                                      "n_candidates": 1, "rejected": [], "spans": [],
                                                      "uninvertible": None}
