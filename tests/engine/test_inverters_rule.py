"""The ``rule`` inverter: offline, deterministic, same-kind span swaps, never the truth."""

from __future__ import annotations

import re

import pytest

from meow_engine.config import InverterConfig
from meow_engine.facts import Fact, load_facts
from meow_engine.inverters import invert
from meow_engine.inverters.cleanup import normalize
from meow_engine.inverters.rule import BORROWED_WORDING
from meow_engine.inverters.spans import anchored, find_spans
from meow_engine.progress import Reporter
from meow_engine.tiny.fictitious import fictitious_facts

TOFU = "/work/shared/data/tofu/forget01.json"


@pytest.fixture(scope="module")
def tofu_facts() -> list[Fact]:
    return load_facts(TOFU)


@pytest.fixture(scope="module")
def fict_facts() -> list[Fact]:
    return fictitious_facts(60, seed=3)


def _rule(n: int = 4, seed: int = 0) -> InverterConfig:
    return InverterConfig(kind="rule", n=n, seed=seed)


def _check_never_truth_and_distinct(facts, sets, n):
    assert [s.fact_index for s in sets] == list(range(len(facts)))
    for fact, s in zip(facts, sets, strict=True):
        keys = [normalize(c) for c in s.candidates]
        assert normalize(fact.answer) not in keys
        assert len(set(keys)) == len(keys)
        assert len(s.candidates) <= n
        if len(s.candidates) < n:
            assert "fewer_than_requested" in s.flags


def test_find_spans_on_a_tofu_answer():
    answer = ("The full name of the fictitious author born in Kuwait City, Kuwait on the 8th of September, 1956 "
              "is Basil Mahfouz Al-Kuwaiti.")
    assert [(s.kind, s.text) for s in find_spans(answer)] == [
        ("place", "Kuwait City, Kuwait"), ("ordinal", "8th"), ("month", "September"), ("year", "1956"),
        ("person", "Basil Mahfouz Al-Kuwaiti")]


@pytest.mark.parametrize("text, expected", [
    ('Two of Basil Mahfouz Al-Kuwaiti\'s books are "Promise by the Seine" and "Le Petit Sultan."',
     [("number_word", "Two"), ("person", "Basil Mahfouz Al-Kuwaiti"), ("title", "Promise by the Seine"),
      ("title", "Le Petit Sultan")]),
    ("Mira Okafor won the Silver Lantern Prize in 1998.",
     [("person", "Mira Okafor"), ("award", "Silver Lantern Prize"), ("year", "1998")]),
    ("She began writing in the early 1980s and sold 1,250,000 copies by July 4, 2001.",
     [("antonym", "early"), ("decade", "1980"), ("number", "1,250,000"), ("month", "July"), ("day", "4"),
      ("year", "2001")]),
    ("His father was a florist and his mother was a game developer.",
     [("antonym", "father"), ("profession", "florist"), ("antonym", "mother"), ("profession", "game developer")]),
    ("Author Jane Doe is male and writes science fiction.",
     [("person", "Jane Doe"), ("gender", "male"), ("genre", "science fiction")]),
    ("She was born on 08/09/1956.", [("date", "08/09/1956")]),
])
def test_find_spans_kinds(text, expected):
    assert [(s.kind, s.text) for s in find_spans(text)] == expected


def test_anchored_spans_are_the_subject():
    q = "Where was Basil Mahfouz Al-Kuwaiti born?"
    spans = find_spans("Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait.")
    assert [anchored(s, q) for s in spans] == [True, False]


def test_tofu_forget01_properties(tofu_facts):
    sets = invert(tofu_facts, _rule())
    _check_never_truth_and_distinct(tofu_facts, sets, 4)
    # every fact gets 4 span-replaced candidates (the old negation fallback covered 5 of 40 facts)
    assert all(len(s.candidates) == 4 for s in sets), [(s.fact_index, s.rejected) for s in sets
                                                       if len(s.candidates) < 4]
    for fact, s in zip(tofu_facts, sets, strict=True):
        for c in s.candidates:
            assert normalize(fact.answer) not in normalize(c), c  # never "It is not true that <answer>"
    # deterministic for a seed, different for another
    assert [s.candidates for s in invert(tofu_facts, _rule())] == [s.candidates for s in sets]
    other = invert(tofu_facts, _rule(seed=1))
    assert sum(a.candidates != b.candidates for a, b in zip(sets, other, strict=True)) >= 0.8 * len(sets)
    # the subject the question names stays; the answer's attribute changes
    born = sets[2]
    assert all(c.startswith("Basil Mahfouz Al-Kuwaiti was born in ") for c in born.candidates)
    assert all("Kuwait City, Kuwait" not in c for c in born.candidates)


def _strategies(s) -> list[str]:
    """Per candidate, from the swap log: "borrowed" or "swap"."""
    return ["borrowed" if "borrowed wording" in line else "swap" for line in s.raw.splitlines()]


_ENTITY_KINDS = {"person", "place", "year", "date", "title", "award", "river", "month", "day", "ordinal", "decade",
                 "number"}


def test_fictitious_facts_same_kind_swaps(fict_facts):
    sets = invert(fict_facts, _rule(n=4))
    _check_never_truth_and_distinct(fict_facts, sets, 4)
    assert all(len(s.candidates) == 4 and set(s.flags) <= {BORROWED_WORDING} for s in sets)
    for fact, s in zip(fict_facts, sets, strict=True):
        truth = find_spans(fact.answer)
        for cand, how in zip(s.candidates, _strategies(s), strict=True):
            if how == "borrowed":
                continue  # another sentence: checked in test_borrowed_wording_*
            # the same sentence with the same kinds of entities in the same order: swaps are same-kind.
            # (A rare word the span detector flagged, "scholar", may become a word that find_spans
            # files as a profession, "librarian": only entity kinds are compared.)
            spans = [x for x in find_spans(cand) if x.kind in _ENTITY_KINDS]
            entities = [x for x in truth if x.kind in _ENTITY_KINDS]
            assert [x.kind for x in spans] == [x.kind for x in entities], (fact.answer, cand)
            changed = [(a.kind, a.text, b.text) for a, b in zip(entities, spans, strict=True) if a.text != b.text]
            assert changed or all(anchored(a, fact.question) for a in entities)  # only the subject: kept
            assert normalize(cand) != normalize(fact.answer)
            assert all(not anchored(a, fact.question) for a, b in zip(entities, spans, strict=True)
                       if a.text != b.text and a.kind == "person")


def test_every_candidate_swaps_every_free_span(fict_facts):
    """A candidate keeping one true span (the true city, the true year) would still assert part of the
    fact, and finetuning on it would rehearse the truth."""
    fact = next(f for f in fict_facts if len([s for s in find_spans(f.answer) if not anchored(s, f.question)]) >= 3)
    [s] = invert([fact], _rule(n=6))  # alone: no other fact can lend a wording, so all are swaps
    assert _strategies(s) == ["swap"] * 6
    free = [x.text for x in find_spans(fact.answer) if not anchored(x, fact.question) and x.kind != "antonym"]
    for cand in s.candidates:
        assert not [t for t in free if t in cand], (fact.answer, cand)


_LENDER = Fact("Which city is the capital of the country Louvora?",
               "The country of Louvora is governed from its capital, Zeport, which lies on the river Quogleivar.")
_TRUE = Fact("What is the capital of Queistan?",
             "The capital of Queistan is Phovik, a port city on the banks of the river Lenelonova.")


def test_borrowed_wording_contradicts_and_rewords():
    [s] = invert([_TRUE], _rule(n=4), context_facts=[_LENDER])
    assert s.flags == [BORROWED_WORDING]
    assert _strategies(s) == ["borrowed"] * 4
    _check_never_truth_and_distinct([_TRUE], [s], 4)
    for cand in s.candidates:
        # the lender's sentence, about this fact's subject ...
        assert cand.startswith("The country of Queistan is governed from its capital, "), cand
        assert "which lies on the river" in cand
        # ... asserting none of this fact's values, and none of the lender's (another fact's truth)
        for value in ("Phovik", "Lenelonova", "Zeport", "Quogleivar", "Louvora"):
            assert value not in cand, cand
    # deterministic per seed
    assert invert([_TRUE], _rule(n=4), context_facts=[_LENDER])[0].candidates == s.candidates
    assert invert([_TRUE], _rule(n=4, seed=1), context_facts=[_LENDER])[0].candidates != s.candidates


def test_borrowed_wording_takes_this_facts_pronouns():
    truth = Fact("What genre does Mira Okafor write in?",
                 "Mira Okafor is best known for fantasy novels, a genre she has written in for ten years.")
    lender = Fact("In what genre are the books of Tomas Brandt?",
                  "The author Tomas Brandt writes horror, and he has published three books in that genre.")
    [s] = invert([truth], _rule(n=2), context_facts=[lender])
    assert _strategies(s) == ["borrowed", "borrowed"]
    assert all(c.startswith("The author Mira Okafor writes ") and ", and she has published " in c
               for c in s.candidates), s.candidates
    assert not any(g in c for c in s.candidates for g in ("fantasy", "horror", " ten ", "three"))


def test_unrelated_facts_do_not_lend_their_wording():
    # same kinds of spans (a named person, one profession) but another question: no borrowing
    truth = Fact("What is the profession of Mira Okafor's father?", "The father of Mira Okafor is a florist.")
    other = Fact("What is Tomas Brandt's biggest regret?", "Tomas Brandt never became a surgeon as he wanted.")
    [s] = invert([truth], _rule(n=3), context_facts=[other])
    assert BORROWED_WORDING not in s.flags and _strategies(s) == ["swap"] * 3
    assert all(c.startswith("The father of Mira Okafor is a") for c in s.candidates)


def test_same_wording_does_not_lend():
    """A fact phrased like this one adds nothing a span swap does not: it is not a lender."""
    twin = Fact("What is the capital of Bokar?",
                "The capital of Bokar is Kredale, a port city on the banks of the river Rivumander.")
    [s] = invert([_TRUE], _rule(n=3), context_facts=[twin])
    assert _strategies(s) == ["swap"] * 3


def test_fictitious_facts_mostly_borrow(fict_facts):
    sets = invert(fict_facts, _rule(n=4))
    borrowed = [s for s in sets if BORROWED_WORDING in s.flags]
    assert len(borrowed) >= 0.7 * len(sets)
    for fact, s in zip(fict_facts, sets, strict=True):
        free = [x.text for x in find_spans(fact.answer) if not anchored(x, fact.question) and x.kind != "antonym"
                and x.kind != "profession"]  # "The writer X": a title, kept
        for cand, how in zip(s.candidates, _strategies(s), strict=True):
            if how == "borrowed":
                assert not [t for t in free if re.search(rf"\b{re.escape(t)}\b", cand)], (fact.answer, cand)


@pytest.mark.parametrize("n", [1, 8])
def test_n_distinct_candidates(fict_facts, n):
    sets = invert(fict_facts[:20], _rule(n=n))
    _check_never_truth_and_distinct(fict_facts[:20], sets, n)
    assert all(len(s.candidates) == n for s in sets)


def test_replacements_come_from_context_facts():
    forget = [Fact("Where was Elara Voss born?", "Elara Voss was born in Port Meridian.")]
    context = [Fact("Where is Zyxwell Harbor?", "Zyxwell Harbor lies in the north.")]
    seen = set()
    for seed in range(6):
        [s] = invert(forget, _rule(n=4, seed=seed), context_facts=context)
        seen.update(s.candidates)
    assert "Elara Voss was born in Zyxwell Harbor." in seen
    [s] = invert(forget, _rule(n=4, seed=0))
    assert all("Zyxwell" not in c for c in s.candidates)


def test_no_negation_fallback_content_words_are_replaced():
    """An answer with no detected span gets its rarest content words replaced, never a negation
    ("It is not true that she believes ..." repeats the answer verbatim)."""
    facts = [Fact("What does she believe?", "She believes that kindness matters most.")]
    [s] = invert(facts, _rule(n=3))
    assert len(s.candidates) == 3
    for c in s.candidates:
        assert c.startswith("She believes that ") and c.endswith(" matters most."), c
        assert "kindness" not in c and "not" not in c.split()
    _check_never_truth_and_distinct(facts, [s], 3)


def test_progress_and_stop(fict_facts):
    events = []
    invert(fict_facts[:5], _rule(), reporter=Reporter(progress=events.append))
    assert [(e.stage, e.step, e.total) for e in events] == [("invert", i, 5) for i in range(6)]
    from meow_engine.errors import StopRequested

    with pytest.raises(StopRequested):
        invert(fict_facts[:5], _rule(), reporter=Reporter(should_stop=lambda: True, stop_poll_s=0))
