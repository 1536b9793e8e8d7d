"""Fictitious facts: deterministic, TOFU-like sentences, invented names that never collide."""

from __future__ import annotations

import re

import pytest

from meow_engine.errors import ConfigError
from meow_engine.tiny.fictitious import KINDS, fictitious_facts
from meow_engine.tiny.vocab import ENTITY_POOLS, kind_of


def test_same_seed_same_facts_other_seed_other_facts() -> None:
    assert fictitious_facts(30, seed=0) == fictitious_facts(30, seed=0)
    assert fictitious_facts(30, seed=0) != fictitious_facts(30, seed=1)
    assert fictitious_facts(10, seed=0) == fictitious_facts(30, seed=0)[:10], "a prefix is stable"


def test_facts_look_like_tofu() -> None:
    facts = fictitious_facts(80, seed=2)
    assert len({f.id for f in facts}) == 80
    assert len({f.question for f in facts}) == 80
    for f in facts:
        words = len(f.answer.split())
        assert 8 <= words <= 25, f.answer
        assert f.question.endswith("?") and f.answer.endswith(".")
        assert len(f.perturbed_answers) == 3 and f.answer not in f.perturbed_answers
        # the subject named in the question is restated in the answer
        names = [p for p in ENTITY_POOLS["person"] + ENTITY_POOLS["city"] + ENTITY_POOLS["country"] if p in f.question]
        assert names and all(n in f.answer for n in names), f
    # every kind shows up, and with more than one phrasing
    starts = {f.question.split()[0] for f in facts}
    assert len(starts) >= 5
    assert len(KINDS) >= 6


def test_subjects_are_not_reused_across_facts() -> None:
    facts = fictitious_facts(100, seed=0)
    people = [p for f in facts for p in ENTITY_POOLS["person"]
              if p in f.question and re.search(rf"\b{p}\b", f.question)]
    assert len(people) == len(set(people))


def test_entity_pools_do_not_overlap() -> None:
    people_words = set(ENTITY_POOLS["first_name"]) | set(ENTITY_POOLS["surname"])
    assert not people_words & set(ENTITY_POOLS["city"])
    assert not set(ENTITY_POOLS["city"]) & set(ENTITY_POOLS["country"])
    for kind in ("person", "city", "country", "title", "award", "genre"):
        assert len(ENTITY_POOLS[kind]) == len(set(ENTITY_POOLS[kind])) >= 10
    assert kind_of(ENTITY_POOLS["city"][3]) == "city"
    assert kind_of("Paris") is None


def test_bad_n() -> None:
    with pytest.raises(ConfigError, match="between 1 and"):
        fictitious_facts(0)
    with pytest.raises(ConfigError):
        fictitious_facts(100_000)
