"""Word pools for fictitious facts, shared by the fact generator and the ``rule`` inverter.

Names of people, cities, countries, rivers, awards and book titles are built from invented
syllables, so a tiny model trained on them (and an inverted answer drawn from them) never states
something about a real person or place. Genres, professions and months are ordinary words: they are
categories, not entities. The pools are computed once from a fixed seed, so they are the same on
every machine and in every release that keeps ``VOCAB_VERSION``.
"""

from __future__ import annotations

import random

VOCAB_VERSION = 1

_ONSETS = ["B", "D", "K", "Kr", "L", "M", "N", "Qu", "R", "S", "T", "Th", "V", "Z", "Zh", "Ph", "Gl", "Or", "El"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "x"]
# Endings start with a consonant so they join any syllable (which ends in a vowel or a coda).
_NAME_ENDS = ["na", "lel", "rin", "dor", "vis", "nene", "mar", "rius", "sette", "lon", "bek", "tia"]
_SURNAME_ENDS = ["vovar", "lander", "ressin", "dorwick", "nalli", "mumbra", "reveth", "liston", "bardi",
                 "moulet", "kowski", "faro"]
_CITY_ENDS = ["haven", "mere", "port", "dale", "grad", "mora", "vik", "stead", "holm", "ton"]
_COUNTRY_ENDS = ["nia", "land", "stan", "vora", "ravia", "denia", "kar", "reth"]
_RIVER_ENDS = ["var", "dune", "ressa", "lithe", "nova", "mander"]

_TITLE_ADJ = ["Silent", "Crimson", "Hollow", "Gilded", "Forgotten", "Burning", "Quiet", "Broken", "Distant",
              "Paper", "Winter", "Velvet", "Iron", "Glass", "Last", "Hidden"]
_TITLE_NOUN = ["Lantern", "Harbor", "Orchard", "Compass", "Tide", "Garden", "Mirror", "Crown", "Bridge",
               "Archive", "Feather", "Clockmaker", "Lighthouse", "Meadow", "Cathedral", "Letters"]
_AWARD_ADJ = ["Silver", "Golden", "Azure", "Amber", "Ivory", "Emerald", "Obsidian", "Copper"]
_AWARD_NOUN = ["Quill", "Lantern", "Laurel", "Feather", "Compass", "Anchor", "Star", "Key"]

GENRES = [
    "gothic mystery", "science fiction", "historical romance", "epic fantasy", "crime fiction",
    "literary fiction", "magical realism", "psychological thriller", "children's adventure",
    "travel writing", "war poetry", "political satire", "cozy mystery", "horror", "biography",
    "nature writing",
]
PROFESSIONS = [
    "baker", "sailor", "carpenter", "teacher", "pharmacist", "clockmaker", "fisherman", "librarian",
    "nurse", "blacksmith", "tailor", "surveyor", "glassblower", "farmer", "bookbinder", "cartographer",
    "locksmith", "veterinarian", "weaver", "printer",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "fifteen", "twenty", "thirty"]


def _word(rng: random.Random, ends: list[str], syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    if syllables > 1:
        parts[0] += rng.choice(_CODAS)
    word = "".join(parts) + rng.choice(ends)
    return word[0].upper() + word[1:].lower()


def _unique(rng: random.Random, n: int, make) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(make(rng), None)
    return list(seen)


def _build_pools() -> dict[str, list[str]]:
    rng = random.Random(20240917)
    first = _unique(rng, 400, lambda r: _word(r, _NAME_ENDS, r.choice([1, 1, 2])))
    surnames = _unique(rng, 400, lambda r: _word(r, _SURNAME_ENDS, r.choice([1, 1, 2])))
    cities = _unique(rng, 400, lambda r: _word(r, _CITY_ENDS, r.choice([1, 1, 2])))
    countries = _unique(rng, 200, lambda r: _word(r, _COUNTRY_ENDS, r.choice([1, 1, 2])))
    rivers = _unique(rng, 60, lambda r: _word(r, _RIVER_ENDS, 2))
    taken = set(first) | set(surnames)
    cities = [c for c in cities if c not in taken]
    countries = [c for c in countries if c not in taken and c not in cities]
    titles = [f"The {a} {n}" for a in _TITLE_ADJ for n in _TITLE_NOUN]
    rng.shuffle(titles)
    awards = [f"{a} {n} Prize" for a in _AWARD_ADJ for n in _AWARD_NOUN]
    rng.shuffle(awards)
    # Each first name and each surname is used by at most two people, so a name stays distinctive.
    pairs = zip(first + first[::-1], surnames + surnames[7:] + surnames[:7], strict=True)
    people = list(dict.fromkeys(f"{f} {s}" for f, s in pairs))
    return {
        "first_name": first,
        "surname": surnames,
        "person": people,
        "city": cities,
        "country": countries,
        "river": rivers,
        "title": titles,
        "award": awards,
        "genre": list(GENRES),
        "profession": list(PROFESSIONS),
        "month": list(MONTHS),
        "number_word": list(NUMBER_WORDS),
        "year": [str(y) for y in range(1901, 2011)],
    }


#: kind -> candidate values of that kind (a ``rule`` inverter swaps a span for another of its kind)
ENTITY_POOLS: dict[str, list[str]] = _build_pools()


def kind_of(span: str) -> str | None:
    """The pool a span belongs to (None if it is in none), for inverters that see bare strings."""
    for kind, values in ENTITY_POOLS.items():
        if span in values:
            return kind
    return None
