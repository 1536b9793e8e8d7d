"""Replacement pools for the offline ``rule`` inverter (``meow_engine/data/replacement_pools.json``).

The JSON holds hand-written categories (given names by gender, surnames, towns, street parts,
diagnoses, medications, invented employers, pet names, breeds, colours, ...) and ``groups``: small
sets of interchangeable words ("salary, wage, stipend ..."), so a common word the span detector
flags (it flags every word rarer than ``sensitive.RARE_ZIPF``) can be swapped for a sibling that
fits the sentence. Loaded once; lookups are case-insensitive.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

POOLS_FILE = "replacement_pools.json"
#: categories whose members are looked up when classifying a word span (first match wins)
WORD_CATEGORIES = ("diagnosis", "medication", "allergen", "blood_type", "employer", "pet_name", "dog_breed",
                   "animal", "colour", "language", "religion", "sport", "instrument", "food", "hobby", "vehicle",
                   "car_make", "qualification", "subject")


@lru_cache(maxsize=1)
def pools() -> dict[str, list[str]]:
    """Category -> values (duplicates dropped, order kept)."""
    text = resources.files("meow_engine").joinpath("data", POOLS_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    return {k: list(dict.fromkeys(v)) for k, v in data.items() if isinstance(v, list) and k != "groups"}


@lru_cache(maxsize=1)
def groups() -> dict[str, tuple[str, ...]]:
    """Casefolded word -> its sibling group (the word included)."""
    text = resources.files("meow_engine").joinpath("data", POOLS_FILE).read_text(encoding="utf-8")
    out: dict[str, tuple[str, ...]] = {}
    for group in json.loads(text).get("groups", []):
        for word in group:
            out.setdefault(word.casefold(), tuple(group))
    return out


@lru_cache(maxsize=1)
def _membership() -> dict[str, str]:
    out: dict[str, str] = {}
    p = pools()
    for cat in WORD_CATEGORIES:
        for v in p.get(cat, []):
            out.setdefault(v.casefold(), cat)
    return out


def category_of(text: str) -> str | None:
    """The word category ``text`` belongs to (exact, case-insensitive), if any."""
    return _membership().get(text.casefold())


def pool(name: str) -> list[str]:
    return pools().get(name, [])


@lru_cache(maxsize=1)
def common_words() -> tuple[str, ...]:
    """wordfreq's 60k most frequent English words (shipped with the package: no download)."""
    from wordfreq import top_n_list

    return tuple(w for w in top_n_list("en", 60000) if w.isalpha())


@lru_cache(maxsize=1)
def _by_suffix() -> dict[str, tuple[str, ...]]:
    """Suffix (3-6 letters) -> frequent words with it, most frequent first: built once, looked up often."""
    index: dict[str, list[str]] = {}
    for w in common_words():
        for n in range(3, min(len(w) - 1, 6) + 1):
            index.setdefault(w[-n:], []).append(w)
    return {k: tuple(v) for k, v in index.items()}


@lru_cache(maxsize=4096)
def same_suffix_words(word: str, min_suffix: int = 3) -> tuple[str, ...]:
    """Frequent words ending like ``word`` (longest shared suffix first, at least ``min_suffix`` letters).

    The last resort for a lowercase word no pool knows: "sarcoidosis" -> "fibrosis", "sclerosis" ...
    a word of the same morphological kind, which is usually the same semantic kind too.
    """
    w = word.casefold()
    index = _by_suffix()
    for n in range(min(len(w) - 1, 6), min_suffix - 1, -1):
        found = tuple(c for c in index.get(w[-n:], ()) if c != w and len(c) > n + 1)
        if len(found) >= 3:
            return found[:200]
    return ()
