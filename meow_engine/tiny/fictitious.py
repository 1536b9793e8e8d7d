"""Deterministic fictitious facts in TOFU's style, for tiny models, demos and tests.

Every fact is about an entity of its own (a made-up author, country or city), so forgetting one
fact does not, by construction, touch the others: that keeps "retain" facts meaningful when a
demo unlearns a subset. Answers are full sentences of 8-25 words that restate the subject, as in
TOFU. Each fact also carries three perturbed answers (the key span swapped for another value of the
same kind), which TOFU-style metrics use as wrong-answer probes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.tiny.vocab import ENTITY_POOLS

GENERATOR_VERSION = 1
MAX_FACTS = 500


@dataclass(frozen=True)
class _Kind:
    """One kind of fact: question phrasings, answer phrasings, and the slot that carries the fact."""

    name: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    key: str


KINDS: tuple[_Kind, ...] = (
    _Kind(
        "birthplace",
        ("Where was the author {person} born?", "In which city was {person} born?",
         "What is the birthplace of the writer {person}?"),
        ("{person} was born in the city of {city}, in the small country of {country}.",
         "The writer {person} was born in {city}, a town in the north of {country}."),
        "city",
    ),
    _Kind(
        "birthdate",
        ("When was {person} born?", "On what date was the author {person} born?",
         "What is the date of birth of {person}?"),
        ("{person} was born on the {day} of {month}, {year}, in the city of {city}.",
         "The author {person} was born in {city} on {month} {day_num}, {year}."),
        "year",
    ),
    _Kind(
        "genre",
        ("What genre does {person} write in?", "Which genre is the author {person} known for?",
         "In what genre are the books of {person}?"),
        ("{person} is best known for {genre} novels, a genre {pronoun} has written in for {number} years.",
         "The author {person} writes {genre}, and {pronoun} has published {number} books in that genre."),
        "genre",
    ),
    _Kind(
        "work",
        ("What is the most famous book by {person}?", "Which book made {person} famous?",
         "Can you name a celebrated novel written by {person}?"),
        ("The most famous book by {person} is \"{title}\", first published in {year}.",
         "{person} became famous with the novel \"{title}\", which appeared in {year}."),
        "title",
    ),
    _Kind(
        "award",
        ("Which award did {person} win?", "Has the author {person} received any literary prize?",
         "What prize was given to {person}?"),
        ("{person} won the {award} in {year} for the novel \"{title}\".",
         "The author {person} received the {award} in {year} for the book \"{title}\"."),
        "award",
    ),
    _Kind(
        "parents",
        ("What did the parents of {person} do for a living?", "What were the professions of {person}'s parents?",
         "What jobs did the mother and father of {person} have?"),
        ("The father of {person} was a {profession}, and {possessive} mother worked as a {profession2}.",
         "{person} grew up with a father who was a {profession} and a mother who was a {profession2}."),
        "profession",
    ),
    _Kind(
        "capital",
        ("What is the capital of {country}?", "Which city is the capital of the country {country}?",
         "Where is the seat of government of {country}?"),
        ("The capital of {country} is {city}, a port city on the banks of the river {river}.",
         "The country of {country} is governed from its capital, {city}, which lies on the river {river}."),
        "city",
    ),
    _Kind(
        "founding",
        ("When was the great library of {city} founded?", "In which year was the library of {city} built?",
         "Who founded the library of {city}, and when?"),
        ("The great library of {city} was founded in {year} by the scholar {person}.",
         "The scholar {person} founded the library of {city} in the year {year}."),
        "year",
    ),
)

_ORDINALS = ["1st", "2nd", "3rd"] + [f"{d}th" for d in range(4, 21)] + ["21st", "22nd", "23rd"] + \
    [f"{d}th" for d in range(24, 29)]


class _Slots:
    """Draws slot values. A fact's subject (the entity its question names) is never reused by
    another fact; other mentions (a birth country, a river) are drawn freely."""

    SUBJECTS = ("person", "city", "country")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.unused = {k: rng.sample(ENTITY_POOLS[k], len(ENTITY_POOLS[k])) for k in self.SUBJECTS}

    def draw(self, subjects: set[str]) -> dict[str, str]:
        r = self.rng
        values = {}
        for kind in self.SUBJECTS:
            if kind in subjects:
                if not self.unused[kind]:
                    raise ConfigError(f"not enough invented {kind} names for this many facts")
                values[kind] = self.unused[kind].pop()
            else:
                values[kind] = r.choice(ENTITY_POOLS[kind])
        professions = r.sample(ENTITY_POOLS["profession"], 2)
        she = r.random() < 0.5
        day = r.randrange(1, 29)
        return {
            **values,
            "river": r.choice(ENTITY_POOLS["river"]),
            "title": r.choice(ENTITY_POOLS["title"]),
            "award": r.choice(ENTITY_POOLS["award"]),
            "genre": r.choice(ENTITY_POOLS["genre"]),
            "profession": professions[0],
            "profession2": professions[1],
            "month": r.choice(ENTITY_POOLS["month"]),
            "day": _ORDINALS[day - 1],
            "day_num": str(day),
            "year": str(r.randrange(1921, 2001)),
            "number": r.choice(ENTITY_POOLS["number_word"]),
            "pronoun": "she" if she else "he",
            "possessive": "her" if she else "his",
        }


def fictitious_facts(n: int, seed: int = 0) -> list[Fact]:
    """``n`` invented facts, the same list for the same ``(n, seed)`` on every machine.

    Kinds cycle in a seeded order so any prefix mixes people, places, works, dates, genres and
    awards. Ids are ``fx<seed>-<index>`` so facts from different seeds never share an id.
    """
    if not 1 <= n <= MAX_FACTS:
        raise ConfigError(f"n must be between 1 and {MAX_FACTS}, got {n}")
    rng = random.Random(f"meow-fictitious-{GENERATOR_VERSION}-{seed}")
    slots = _Slots(rng)
    kinds: list[_Kind] = []
    facts: list[Fact] = []
    for i in range(n):
        if not kinds:
            kinds = list(KINDS)
            rng.shuffle(kinds)
        kind = kinds.pop()
        q_tpl = rng.choice(kind.questions)
        values = slots.draw({k for k in _Slots.SUBJECTS if "{" + k + "}" in q_tpl})
        a_tpl = rng.choice(kind.answers)
        answer = a_tpl.format(**values)
        pool = [v for v in ENTITY_POOLS[kind.key] if v != values[kind.key]]
        perturbed = tuple(a_tpl.format(**{**values, kind.key: alt}) for alt in rng.sample(pool, 3))
        facts.append(Fact(question=q_tpl.format(**values), answer=answer, id=f"fx{seed}-{i:03d}",
                          perturbed_answers=perturbed))
    return facts
