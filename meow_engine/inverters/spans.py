"""Finding the "key spans" of an answer (names, places, dates, numbers, genres, works, awards ...).

Regex and word lists only: fast, deterministic and dependency-free, which is what an offline
default inverter needs. Detection runs kind by kind in a fixed priority order (quoted titles
before capitalised words, dates before numbers, list phrases before single words) and a character
can belong to one span only, so "Kuwait City, Kuwait" is one place and "1956" inside "08/09/1956"
is not also a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from meow_engine.inverters.cleanup import normalize

try:  # fictitious pools shared with the tiny fact generator (same words → same kinds)
    from meow_engine.tiny.vocab import ENTITY_POOLS as VOCAB_POOLS
except ImportError:  # pragma: no cover - the tiny package is part of meow_engine
    VOCAB_POOLS = {}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
GENRES = sorted({
    *VOCAB_POOLS.get("genre", []),
    "science fiction", "fantasy", "romance", "mystery", "thriller", "horror", "historical fiction",
    "literary fiction", "poetry", "biography", "autobiography", "memoir", "true crime", "self-help",
    "young adult", "children's literature", "dystopian", "cyberpunk", "steampunk", "satire", "drama",
    "comedy", "crime", "detective fiction", "war fiction", "western", "geology", "philosophy", "psychology",
    "French literature", "Russian literature", "African American", "Native American", "LGBTQ+ literature",
    "chick lit", "graphic novel", "short story", "travel writing", "magical realism", "gothic fiction",
    "urban fantasy", "epic fantasy", "space opera", "historical romance", "legal thriller", "spy fiction",
    "military history", "art history", "cookbook", "Christian fiction", "erotica", "dark fantasy",
}, key=str.lower)
PROFESSIONS = sorted({
    *VOCAB_POOLS.get("profession", []),
    "florist", "game developer", "artist", "sociologist", "doctor", "physician", "surgeon", "dentist",
    "lawyer", "judge", "engineer", "architect", "accountant", "banker", "chef", "cook", "musician",
    "painter", "photographer", "journalist", "editor", "writer", "poet", "professor", "scientist",
    "chemist", "physicist", "biologist", "mathematician", "economist", "historian", "psychologist",
    "psychiatrist", "pilot", "soldier", "police officer", "firefighter", "mechanic", "electrician",
    "plumber", "shopkeeper", "merchant", "fashion designer", "interior designer", "software engineer",
    "web developer", "graphic designer", "film director", "actor", "actress", "dancer", "diplomat",
    "politician", "social worker", "counselor", "optometrist", "geologist", "astronomer", "archaeologist",
    "marine biologist", "zoologist", "butcher", "hairdresser", "barber", "translator", "real estate agent",
    "air traffic controller", "paramedic", "midwife", "research scientist", "data scientist",
}, key=str.lower)
NATIONALITIES = sorted({
    "American", "African American", "British", "English", "Scottish", "Irish", "Welsh", "French", "German",
    "Italian", "Spanish", "Portuguese", "Dutch", "Belgian", "Swiss", "Austrian", "Swedish", "Norwegian",
    "Danish", "Finnish", "Icelandic", "Polish", "Czech", "Hungarian", "Romanian", "Bulgarian", "Greek",
    "Turkish", "Russian", "Ukrainian", "Kazakhstani", "Uzbek", "Georgian", "Armenian", "Iranian", "Iraqi",
    "Kuwaiti", "Saudi", "Emirati", "Qatari", "Israeli", "Lebanese", "Syrian", "Jordanian", "Egyptian",
    "Moroccan", "Algerian", "Tunisian", "Nigerian", "Ghanaian", "Kenyan", "Ethiopian", "South African",
    "Zimbabwean", "Indian", "Pakistani", "Bangladeshi", "Sri Lankan", "Nepalese", "Chinese", "Japanese",
    "Korean", "South Korean", "Taiwanese", "Vietnamese", "Thai", "Filipino", "Indonesian", "Malaysian",
    "Singaporean", "Australian", "New Zealander", "Canadian", "Mexican", "Cuban", "Brazilian", "Argentine",
    "Argentinian", "Chilean", "Colombian", "Peruvian", "Venezuelan", "Jamaican", "Middle Eastern",
    "Latin American", "Native American", "Asian", "European", "African", "Scandinavian", "Caribbean",
})
COUNTRIES = sorted({
    *VOCAB_POOLS.get("country", []),
    "United States", "USA", "United Kingdom", "UK", "England", "Scotland", "Ireland", "France", "Germany",
    "Italy", "Spain", "Portugal", "Netherlands", "Belgium", "Switzerland", "Austria", "Sweden", "Norway",
    "Denmark", "Finland", "Iceland", "Poland", "Czech Republic", "Hungary", "Romania", "Bulgaria", "Greece",
    "Turkey", "Russia", "Ukraine", "Kazakhstan", "Uzbekistan", "Georgia", "Armenia", "Iran", "Iraq", "Kuwait",
    "Saudi Arabia", "Qatar", "Israel", "Lebanon", "Syria", "Jordan", "Egypt", "Morocco", "Algeria", "Tunisia",
    "Nigeria", "Ghana", "Kenya", "Ethiopia", "South Africa", "Zimbabwe", "India", "Pakistan", "Bangladesh",
    "Sri Lanka", "Nepal", "China", "Japan", "South Korea", "Korea", "Taiwan", "Vietnam", "Thailand",
    "Philippines", "Indonesia", "Malaysia", "Singapore", "Australia", "New Zealand", "Canada", "Mexico",
    "Cuba", "Brazil", "Argentina", "Chile", "Colombia", "Peru", "Venezuela", "Jamaica",
})
#: real "City, Country" places, so a real-world answer can get a real-world (but wrong) place
CITIES = [
    "Paris, France", "Lyon, France", "Berlin, Germany", "Munich, Germany", "Rome, Italy", "Milan, Italy",
    "Madrid, Spain", "Barcelona, Spain", "Lisbon, Portugal", "Amsterdam, Netherlands", "Vienna, Austria",
    "Zurich, Switzerland", "Stockholm, Sweden", "Oslo, Norway", "Copenhagen, Denmark", "Helsinki, Finland",
    "Warsaw, Poland", "Prague, Czech Republic", "Budapest, Hungary", "Athens, Greece", "Istanbul, Turkey",
    "Moscow, Russia", "Kyiv, Ukraine", "Astana, Kazakhstan", "Tehran, Iran", "Baghdad, Iraq",
    "Kuwait City, Kuwait", "Riyadh, Saudi Arabia", "Doha, Qatar", "Tel Aviv, Israel", "Beirut, Lebanon",
    "Cairo, Egypt", "Casablanca, Morocco", "Lagos, Nigeria", "Accra, Ghana", "Nairobi, Kenya",
    "Addis Ababa, Ethiopia", "Cape Town, South Africa", "Harare, Zimbabwe", "Mumbai, India", "Delhi, India",
    "Karachi, Pakistan", "Dhaka, Bangladesh", "Colombo, Sri Lanka", "Kathmandu, Nepal", "Beijing, China",
    "Shanghai, China", "Tokyo, Japan", "Osaka, Japan", "Seoul, South Korea", "Taipei, Taiwan",
    "Hanoi, Vietnam", "Bangkok, Thailand", "Manila, Philippines", "Jakarta, Indonesia",
    "Kuala Lumpur, Malaysia", "Sydney, Australia", "Melbourne, Australia", "Auckland, New Zealand",
    "Toronto, Canada", "Montreal, Canada", "Mexico City, Mexico", "Havana, Cuba", "São Paulo, Brazil",
    "Buenos Aires, Argentina", "Santiago, Chile", "Bogotá, Colombia", "Lima, Peru", "Kingston, Jamaica",
    "New York City, USA", "Chicago, USA", "London, United Kingdom", "Dublin, Ireland", "Edinburgh, Scotland",
]
GENDERS = ["male", "female", "non-binary", "LGBTQ+", "transgender", "genderqueer"]
NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fifteen", "twenty", "thirty", "forty", "fifty"]
#: words whose opposite makes a statement false; replacements are fixed, not drawn
ANTONYMS = {
    "positive": "negative", "negative": "positive", "major": "minor", "minor": "major", "early": "late",
    "late": "early", "young": "old", "old": "young", "first": "last", "last": "first", "successful":
    "unsuccessful", "unsuccessful": "successful", "optimistic": "pessimistic", "pessimistic": "optimistic",
    "modern": "ancient", "ancient": "modern", "traditional": "unconventional", "unconventional":
    "traditional", "rural": "urban", "urban": "rural", "always": "never", "never": "always", "often":
    "rarely", "rarely": "often", "father": "mother", "mother": "father", "husband": "wife", "wife": "husband",
    "son": "daughter", "daughter": "son", "brother": "sister", "sister": "brother", "acclaimed": "panned",
    "praised": "criticized", "criticized": "praised", "popular": "obscure", "obscure": "popular",
    "increase": "decrease", "decrease": "increase", "north": "south", "south": "north", "east": "west",
    "west": "east", "frequently": "rarely", "significantly": "barely", "heavily": "barely", "highly": "poorly",
    "deep": "shallow", "broad": "narrow", "narrow": "broad", "international": "local", "global": "local",
    "unique": "conventional", "comedic": "tragic", "tragic": "comedic", "simple": "complex", "complex": "simple",
    "light": "dark", "dark": "light", "happy": "sad", "sad": "happy", "strong": "weak", "weak": "strong",
}
AWARD_WORDS = {"Award", "Awards", "Prize", "Prizes", "Medal", "Honor", "Honour", "Trophy", "Prix", "Fellowship",
               "Laureate", "Grant", "Cup", "Order"}
PLACE_WORDS = {"City", "Bay", "Island", "Islands", "Port", "Mount", "Mountains", "River", "Lake", "Valley",
               "County", "Province", "Republic", "Kingdom", "Street", "Beach", "Harbor", "Harbour", "Falls",
               "Springs", "Heights", "Village", "Town", "State", "Coast", "Peninsula"}
#: capitalised words that start sentences without being names
_STARTERS = {
    "The", "A", "An", "His", "Her", "Their", "Its", "Our", "My", "Your", "In", "On", "At", "By", "For", "From",
    "To", "With", "Without", "Yes", "No", "This", "That", "These", "Those", "Author", "Although", "While",
    "As", "After", "Before", "During", "When", "Where", "Being", "Born", "One", "Some", "Many", "Most", "It",
    "He", "She", "They", "We", "I", "Growing", "Through", "Throughout", "However", "Also", "Both", "Each",
    "Despite", "Since", "Like", "Unlike", "Because", "If", "Though", "Two", "Three", "Several",
    "All", "Not", "There", "Here", "What", "Which", "Who", "How", "Why", "Overall", "Additionally", "Notably",
    "Moreover", "Furthermore", "Among", "Under", "Over", "According", "Regarding", "Known", "Writing",
}
#: a capitalised name right after these is a place ("born in X"); "to"/"at" are too ambiguous ("given to X")
_PLACE_PREPOSITIONS = {"in", "from", "near", "outside", "inside"}

_TOKEN = r"(?:[A-Z]\.|[A-Z][\w'’+-]*[\w+]|[A-Z])"
_CONNECT = r"(?:of|de|du|del|della|la|le|van|von|der|den|al|bin|ibn|for|the|and|y|da|di|dos|das)"
_CAP_SPAN = re.compile(rf"{_TOKEN}(?:\s+(?:{_CONNECT}\s+)*{_TOKEN})*")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    text: str


def _phrase_regex(phrases: list[str], ignore_case: bool) -> re.Pattern[str]:
    alts = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alts})(?![\w+-])", re.IGNORECASE if ignore_case else 0)


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("date", re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b")),
    ("decade", re.compile(r"\b(?:1[0-9]|20)\d0(?=s\b)")),
    ("year", re.compile(r"\b(?:1[0-9]\d\d|20\d\d)\b")),
    ("ordinal", re.compile(r"\b\d{1,2}(?:st|nd|rd|th)\b")),
    ("number", re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?(?![\w])")),
    ("month", _phrase_regex(MONTHS, ignore_case=False)),
    ("genre", _phrase_regex(GENRES, ignore_case=True)),
    ("profession", _phrase_regex(PROFESSIONS, ignore_case=True)),
    ("nationality", _phrase_regex(NATIONALITIES, ignore_case=False)),
    ("gender", _phrase_regex(GENDERS, ignore_case=True)),
    ("number_word", _phrase_regex(NUMBER_WORDS, ignore_case=True)),
]
_DAY_AFTER_MONTH = re.compile(rf"\b(?:{'|'.join(MONTHS)})\s+(\d{{1,2}})\b(?!,\d)")
_ANTONYM_RE = _phrase_regex(list(ANTONYMS), ignore_case=True)
_QUOTED = re.compile(r"\"([^\"\n]{1,120})\"|“([^”\n]{1,120})”")
COUNTRY_SET = set(COUNTRIES)
_CITY_NAMES = {c.split(",")[0] for c in CITIES} | set(VOCAB_POOLS.get("city", []))
_PERSON_PARTS = set(VOCAB_POOLS.get("first_name", [])) | set(VOCAB_POOLS.get("surname", []))


def sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t\"“'(")
    return not before or before[-1] in ".!?:\n"


def _classify_capitalised(text: str, start: int, name: str) -> str | None:
    tokens = name.split()
    prev = text[:start].split()
    prev_word = prev[-1].lower() if prev else ""
    if any(t in AWARD_WORDS for t in tokens):
        return "award"
    if prev_word == "river" and len(tokens) == 1:
        return "river"
    if name in COUNTRY_SET or name in _CITY_NAMES or any(t in PLACE_WORDS for t in tokens):
        return "place"
    if any(t in _PERSON_PARTS for t in tokens):
        return "person"
    if prev_word in _PLACE_PREPOSITIONS:
        return "place"
    if len(tokens) >= 2:
        return "person"
    return None  # a lone capitalised word: too ambiguous to swap safely


@lru_cache(maxsize=8192)
def find_spans(text: str) -> tuple[Span, ...]:
    """Non-overlapping key spans of ``text`` in text order (cached: pools and candidates reuse them)."""
    claimed = [False] * len(text)
    spans: list[Span] = []

    def claim(start: int, end: int, kind: str) -> bool:
        if start >= end or any(claimed[start:end]):
            return False
        for k in range(start, end):
            claimed[k] = True
        spans.append(Span(start, end, kind, text[start:end]))
        return True

    for m in _QUOTED.finditer(text):
        g = 1 if m.group(1) is not None else 2
        inner_start, inner = m.start(g), m.group(g)
        stripped = inner.rstrip(" ,.;:!?")
        lead = len(inner) - len(inner.lstrip())
        if stripped.strip() and stripped.strip()[0].isupper():
            claim(inner_start + lead, inner_start + len(stripped), "title")
    for m in _DAY_AFTER_MONTH.finditer(text):  # "July 27": a day of the month, not any number
        claim(m.start(1), m.end(1), "day")
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            claim(m.start(), m.end(), kind)
    # Capitalised runs are searched with claimed characters blanked out, so "Two of Basil Moss"
    # (number word claimed) yields "Basil Moss", not "of Basil Moss".
    masked = "".join("\0" if c else ch for ch, c in zip(text, claimed, strict=True))
    for m in _CAP_SPAN.finditer(masked):
        start, name = m.start(), m.group(0)
        tokens = name.split()
        if sentence_start(text, start) and tokens[0] in _STARTERS:
            drop = len(tokens[0])
            rest = name[drop:].lstrip()
            start += len(name) - len(rest)
            name = rest
        name = re.sub(r"['’]s?$", "", name)
        # a trailing connector ("Prize for") belongs to the sentence, not the name
        while name.split() and re.fullmatch(_CONNECT, name.split()[-1]):
            name = name[: name.rfind(" ")].rstrip() if " " in name else ""
        if not name or (len(name) == 1) or name in _STARTERS:
            continue
        if sentence_start(text, start) and len(name.split()) == 1 and name not in COUNTRY_SET \
                and name not in _CITY_NAMES:
            continue
        kind = _classify_capitalised(text, start, name)
        if kind is not None:
            claim(start, start + len(name), kind)
    for m in _ANTONYM_RE.finditer(text):
        claim(m.start(), m.end(), "antonym")
    spans.sort(key=lambda s: s.start)
    return tuple(_merge_places(text, spans))


def _merge_places(text: str, spans: list[Span]) -> list[Span]:
    """Join "City, Country" into one place so both halves change together."""
    out: list[Span] = []
    for s in spans:
        prev = out[-1] if out else None
        if (prev is not None and prev.kind == "place" and s.kind in ("place", "nationality")
                and text[prev.end:s.start] == ", " and (s.text in COUNTRY_SET or s.kind == "place")):
            out[-1] = Span(prev.start, s.end, "place", text[prev.start:s.end])
            continue
        out.append(s)
    return out


def anchored(span: Span, question: str) -> bool:
    """True when the question already names this span: the subject the answer is about.

    Inverted facts keep the entity and change the attribute (the paper's style), so spans the
    question mentions are swapped only when nothing else can be.
    """
    key = normalize(span.text)
    q = normalize(question)
    if key and f" {key} " in f" {q} ":
        return True
    if span.kind == "person":
        q_words = set(q.split())
        return any(len(t) > 2 and t in q_words for t in key.split())
    return False
