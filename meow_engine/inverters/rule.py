"""``rule``: offline, deterministic inversion by swapping an answer's key spans.

The embedded default: no model, no network, the same output for the same facts and seed on every
machine. Each candidate keeps the sentence and the subject and swaps every key span
(people, places, dates, numbers, genres, works, awards, professions ...) for another value *of the
same kind*, drawn from the other facts (forget and context) or from built-in lists, so the
candidate reads like a plausible wrong answer, which is what MEOW wants to train towards.
Spans the question already names are kept (the answer is about them) unless nothing else can
change. An answer with no swappable span is negated instead, and flagged.

Strategies, in order, until a fact has ``n`` distinct candidates:

1. *borrowed wording*: another fact of the same shape (the same kinds of spans, the same kinds
   named by its question) but phrased differently lends its sentence; this fact's subject goes in
   and every other span gets a fresh value. Swapping spans alone keeps every template word of the
   true answer, so a model trained on such candidates still reproduces most of the true sentence
   (MEMO counts unigrams); a differently worded, fully contradicting answer is what the paper's
   LLM-written inversions are, and what makes MEMO of the truth drop.
2. *all-spans swap*: the true sentence with every key span replaced.
3. *negation* (flagged ``fallback_negation``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from meow_engine.facts import Fact
from meow_engine.inverters.base import FALLBACK_NEGATION, INVERTERS, InversionSet, Inverter, finish
from meow_engine.inverters.cleanup import normalize
from meow_engine.inverters.spans import (
    ANTONYMS,
    CITIES,
    COUNTRIES,
    COUNTRY_SET,
    GENDERS,
    GENRES,
    MONTHS,
    NATIONALITIES,
    NUMBER_WORDS,
    PROFESSIONS,
    VOCAB_POOLS,
    Span,
    anchored,
    find_spans,
    sentence_start,
)

#: tries per requested candidate before giving up on finding another distinct one
ATTEMPTS_PER_CANDIDATE = 30
#: chance to draw a replacement from the other facts (rather than the built-in list) when they have one
FACT_POOL_P = 0.5
#: flag: at least one candidate re-uses the wording of another fact of the same shape
BORROWED_WORDING = "borrowed_wording"
#: kinds that only say "which slot" loosely: compared as one kind when matching shapes
_SHAPE_KIND = {"ordinal": "day"}
#: how much a lender's question (names removed) and wording must overlap this fact's (Jaccard of
#: content words): measured on TOFU forget10 and the fictitious facts, 0.25/0.3 keeps same-topic
#: pairs ("profession of X's father" / "profession of Y's father") and drops unrelated ones
MIN_QUESTION_OVERLAP = 0.25
MIN_WORDING_OVERLAP = 0.3
_GENERATED = {"year", "decade", "number", "day", "ordinal", "date", "antonym"}


def _builtin_pools() -> dict[str, list[str]]:
    cities = VOCAB_POOLS.get("city", [])
    countries = VOCAB_POOLS.get("country", [])
    fictitious_places = [f"{c}, {countries[i % len(countries)]}" for i, c in enumerate(cities)] if countries else []
    return {
        "person": list(VOCAB_POOLS.get("person", [])) or ["Elena Marsh", "Tomas Brandt", "Amara Okoye", "Kenji Sato"],
        "place": CITIES + fictitious_places + COUNTRIES + list(cities),
        "title": list(VOCAB_POOLS.get("title", [])) or ["The Silent Harbor", "Paper Lanterns", "A Winter Orchard"],
        "award": list(VOCAB_POOLS.get("award", [])) or ["Golden Quill Prize", "Silver Lantern Award"],
        "river": list(VOCAB_POOLS.get("river", [])) or ["Danube", "Volga", "Mekong", "Orinoco"],
        "genre": GENRES,
        "profession": PROFESSIONS,
        "nationality": NATIONALITIES,
        "month": MONTHS,
        "gender": GENDERS,
        "number_word": NUMBER_WORDS,
    }


_BUILTIN = _builtin_pools()


@dataclass(frozen=True)
class _Group:
    """All mentions of one span value in an answer: they change together."""

    kind: str
    text: str
    spans: tuple[Span, ...]


def fact_seed(seed: int, index: int) -> int:
    return seed * 1_000_003 + index


def _cased(replacement: str, at_sentence_start: bool) -> str:
    """Capitalise only where the sentence demands it: a genre like "French literature" is capitalised
    for itself, so its replacement ("science fiction") must not inherit the capital mid-sentence."""
    if at_sentence_start and replacement[:1].islower():
        return replacement[0].upper() + replacement[1:]
    return replacement


class _Drawer:
    """Same-kind replacement values: from the other facts' spans and the built-in lists."""

    def __init__(self, facts: Sequence[Fact]) -> None:
        found: dict[str, set[str]] = {}
        for f in facts:
            for text in (f.question, f.answer):
                for s in find_spans(text):
                    found.setdefault(s.kind, set()).add(s.text)
        self.from_facts = {k: sorted(v) for k, v in found.items()}

    def draw(self, kind: str, original: str, rng: random.Random, avoid: set[str]) -> str | None:
        if kind in _GENERATED:
            for _ in range(1 if kind == "antonym" else 20):  # an antonym has exactly one value
                value = self._generated(kind, original, rng)
                if value is not None and normalize(value) not in avoid:
                    return value
            return None
        comma = ", " in original
        pools = [self.from_facts.get(kind, []), _BUILTIN.get(kind, [])]
        if rng.random() >= FACT_POOL_P:
            pools.reverse()
        for pool in pools:
            options = [v for v in pool if normalize(v) not in avoid]
            if kind == "place":  # "City, Country" for "City, Country"; a country for a country
                options = [v for v in options if (", " in v) == comma] or options
                if not comma:
                    country = original in COUNTRY_SET
                    options = [v for v in options if (v in COUNTRY_SET) == country] or options
            if options:
                return rng.choice(options)
        return None

    def _generated(self, kind: str, original: str, rng: random.Random) -> str | None:
        if kind == "antonym":
            opposite = ANTONYMS.get(original.lower())
            if opposite is not None and original.isupper():
                opposite = opposite.upper()
            return opposite
        if kind == "year":
            years = [y for y in self.from_facts.get("year", []) if y != original]
            if years and rng.random() < FACT_POOL_P:
                return rng.choice(years)
            y, delta = int(original), rng.randint(2, 40)
            value = y + delta if rng.random() < 0.5 else y - delta
            return str(value if 1000 <= value <= 2030 else y - delta)
        if kind == "decade":
            d = int(original)
            step = rng.choice([s for s in range(-5, 6) if s != 0]) * 10
            value = d + step if 1000 <= d + step <= 2020 else d - step
            return str(value)
        if kind == "day":
            return str(rng.choice([d for d in range(1, 29) if d != int(original)]))
        if kind == "ordinal":
            day = int(re.match(r"\d+", original).group(0))  # type: ignore[union-attr]
            new = rng.choice([d for d in range(1, 29) if d != day])
            suffix = "th" if 10 <= new % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(new % 10, "th")
            return f"{new}{suffix}"
        if kind == "number":
            return _other_number(original, rng)
        if kind == "date":
            return re.sub(r"\d+", lambda m: _other_number(m.group(0), rng, keep_width=True, date_part=True),
                          original)
        return None  # pragma: no cover - every generated kind is handled above


def _other_number(original: str, rng: random.Random, keep_width: bool = False, date_part: bool = False) -> str:
    has_commas = "," in original
    digits = original.replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        value = float(digits) * rng.choice([0.5, 0.7, 1.3, 1.5, 2.0, 3.0])
        return f"{value:.{len(frac)}f}"
    v = int(digits)
    if date_part:
        hi = 28 if len(digits) <= 2 and v <= 31 else None
        new = rng.randint(1, hi) if hi else v + rng.choice([-1, 1]) * rng.randint(2, 30)
    else:
        lo, hi = max(0, v // 2), v * 2 + 5
        new = rng.randint(lo, hi)
    if new == v:
        new = v + 1 if v < 9 or not date_part else v - 1
    text = f"{new:,}" if has_commas else str(new)
    return text.zfill(len(digits)) if keep_width else text


_ARTICLE = re.compile(r"\b(a|an|A|An)\s+$")


def _fix_article(prefix: str, replacement: str) -> str:
    """"a artist" → "an artist": the article before a swapped span agrees with the new word."""
    m = _ARTICLE.search(prefix)
    if not m or not replacement:
        return prefix
    vowel = replacement[0].lower() in "aeiou" and not replacement.lower().startswith(("uni", "eu", "one"))
    article = m.group(1)
    want = ("an" if vowel else "a")
    if article[0].isupper():
        want = want.capitalize()
    return prefix[: m.start(1)] + want + prefix[m.end(1):]


def apply_swaps(text: str, swaps: dict[tuple[int, int], str]) -> str:
    out = text
    for (start, end), value in sorted(swaps.items(), reverse=True):
        out = _fix_article(out[:start], value) + value + out[end:]
    return out


_AUX = re.compile(r"\b(is|are|was|were|has|have|had|can|could|will|would|does|do|did|should|may|might|must)\b"
                  r"(?!\s+(?:not|never)\b)")
_NOT = re.compile(r"\s+(?:not|never)\b")


_YES_NO = re.compile(r"^(Yes|No)\b[,.!]?\s*")


def negations(answer: str) -> list[str]:
    """Contradictions for answers without swappable spans, most natural first.

    "Yes, X is Y" becomes "No, X is not Y" (flipping only the "Yes" would contradict itself).
    """
    out: list[str] = []
    yes_no = _YES_NO.match(answer)
    rest = answer[yes_no.end():] if yes_no else answer
    flipped = ("No, " if yes_no.group(1) == "Yes" else "Yes, ") if yes_no else ""
    if yes_no and not rest.strip():
        return [flipped[:-2] + "."]
    m = _NOT.search(rest)
    if m:  # "X is not Y" → "X is Y"
        out.append(flipped + rest[: m.start()] + rest[m.end():])
    m = _AUX.search(rest)
    if m:  # "X is Y" → "X is not Y"
        out.append(flipped + rest[: m.end()] + " not" + rest[m.end():])
    body = rest.strip().rstrip(".!")
    first = body.split(" ", 1)[0]
    if first in ("The", "A", "An", "His", "Her", "Their", "Its", "This", "These", "Those", "It", "He", "She",
                 "They"):
        body = body[0].lower() + body[1:]
    out += [f"It is not true that {body}.", f"There is no record that {body}.", f"It is false that {body}.",
            f"Nothing suggests that {body}.", f"No source confirms that {body}."]
    return out


_PRONOUNS = {"he": "she", "she": "he", "his": "her", "her": "his", "him": "her"}
_PRONOUN_RE = re.compile(r"\b(he|she|his|her|him)\b", re.IGNORECASE)
_MASCULINE, _FEMININE = {"he", "his", "him"}, {"she", "her"}


@dataclass(frozen=True)
class _Shape:
    """An answer seen as a template: which spans its question names, which it asserts."""

    answer: str
    named: tuple[Span, ...]  # spans the question names (the subject), in text order
    free: tuple[Span, ...]  # the asserted values (antonyms excluded: they belong to the wording)
    signature: tuple[tuple[str, ...], tuple[str, ...]]
    template: str
    question_words: frozenset[str]

    def lends_to(self, other: _Shape) -> bool:
        """Same shape, other wording, and about the same thing: the same kinds of spans alone would
        let "X is male." lend its sentence to "X's father is a ...", so the questions (without
        their names) and the answers' wordings must also overlap."""
        return (self.signature == other.signature and self.template != other.template
                and _jaccard(self.question_words, other.question_words) >= MIN_QUESTION_OVERLAP
                and _jaccard(_words(self.template), _words(other.template)) >= MIN_WORDING_OVERLAP)


#: words too common to say what a question or a sentence is about
_STOPWORDS_TEXT = ("a an the of in on at by for to and or is was are were be has have had with from as that this "
                   "which who what when where how does did do can you your his her he she their its it name pronoun")
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOPWORDS)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _shape(fact: Fact) -> _Shape:
    spans = find_spans(fact.answer)
    named = tuple(s for s in spans if anchored(s, fact.question))
    # "the writer X": a title right before the subject is wording, not a claim about it
    titles = {s for s in spans for t in named if s.end <= t.start and not fact.answer[s.end:t.start].strip()}
    free = tuple(s for s in spans if s not in named and s not in titles and s.kind != "antonym")

    def kinds(group: tuple[Span, ...]) -> tuple[str, ...]:
        distinct = {(_SHAPE_KIND.get(s.kind, s.kind), normalize(s.text)) for s in group}
        return tuple(sorted(k for k, _ in distinct))

    template = apply_swaps(fact.answer, {(s.start, s.end): f"<{_SHAPE_KIND.get(s.kind, s.kind)}>"
                                         for s in named + free})
    template = _PRONOUN_RE.sub("<pronoun>", template)  # "his mother" and "her mother" are one wording
    question = apply_swaps(fact.question, {(s.start, s.end): "" for s in find_spans(fact.question)})
    return _Shape(fact.answer, named, free, (kinds(named), kinds(free)), normalize(template), _words(question))


def _gender(text: str) -> set[str] | None:
    words = {m.group(1).lower() for m in _PRONOUN_RE.finditer(text)}
    if words and words <= _MASCULINE:
        return _MASCULINE
    if words and words <= _FEMININE:
        return _FEMININE
    return None


def _match_pronouns(text: str, like: str) -> str:
    """A borrowed sentence speaks of its subject with this fact's pronouns ("she" stays "she")."""
    want, have = _gender(like), _gender(text)
    if want is None or have is None or want == have:
        return text

    def flip(m: re.Match[str]) -> str:
        word = m.group(1)
        new = _PRONOUNS[word.lower()]
        return new.capitalize() if word[0].isupper() else new

    return _PRONOUN_RE.sub(flip, text)


@INVERTERS.register("rule")
class RuleInverter(Inverter):
    name = "rule"

    def prepare(self, facts: Sequence[Fact], context_facts: Sequence[Fact]) -> None:
        everyone = list(facts) + list(context_facts)
        self._drawer = _Drawer(everyone)
        self._shapes = [_shape(f) for f in everyone]
        self._taken = {normalize(s.text) for f in everyone for text in (f.question, f.answer) for s in find_spans(text)}

    def _lenders(self, fact: Fact) -> list[_Shape]:
        """One fact per other wording of this fact's shape, in a fixed order (by template)."""
        own = _shape(fact)
        if not own.named or not own.free:
            return []  # no subject to carry over, or nothing to contradict
        by_template: dict[str, _Shape] = {}
        for other in self._shapes:
            if other.lends_to(own):
                by_template.setdefault(other.template, other)
        return [by_template[t] for t in sorted(by_template)]

    def _borrowed(self, fact: Fact, lender: _Shape, rng: random.Random, avoid: set[str]) -> tuple[str, str] | None:
        """``lender``'s sentence about this fact's subject, every asserted value fresh."""
        own = _shape(fact)
        subjects: dict[str, list[str]] = {}
        for s in own.named:
            subjects.setdefault(_SHAPE_KIND.get(s.kind, s.kind), []).append(s.text)
        swaps: dict[tuple[int, int], str] = {}
        lender_named: dict[str, str] = {}
        for s in lender.named:
            kind = _SHAPE_KIND.get(s.kind, s.kind)
            key = normalize(s.text)
            if key not in lender_named:
                options = subjects.get(kind, [])
                if not options:
                    return None
                lender_named[key] = options[len(lender_named) % len(options)]
            swaps[(s.start, s.end)] = _cased(lender_named[key], sentence_start(lender.answer, s.start))
        # Fresh values only: never the lender's values nor any other fact's (a subject, a city, a person
        # another fact is about). Tying this subject to another fact's entities would make finetuning
        # on the candidate pull that fact (often a retained one) towards this sentence.
        avoid = avoid | self._taken
        drawn: dict[str, str] = {}
        notes: list[str] = []
        for s in lender.free:
            key = normalize(s.text)
            if key not in drawn:
                value = self._drawer.draw(s.kind, s.text, rng, avoid=avoid)
                if value is None:
                    return None
                avoid = avoid | {normalize(value)}
                drawn[key] = value
                notes.append(f"{s.kind} -> {value!r}")
            swaps[(s.start, s.end)] = _cased(drawn[key], sentence_start(lender.answer, s.start))
        text = _match_pronouns(apply_swaps(lender.answer, swaps), fact.answer)
        return text, f"borrowed wording of {lender.answer!r}; " + "; ".join(notes)

    def _tiers(self, fact: Fact) -> tuple[list[_Group], list[_Group]]:
        """(spans the question does not name, spans it names except the subject person)."""
        groups: dict[tuple[str, str], list[Span]] = {}
        for s in find_spans(fact.answer):
            groups.setdefault((s.kind, normalize(s.text)), []).append(s)
        free: list[_Group] = []
        named: list[_Group] = []
        for (kind, _), spans in groups.items():
            g = _Group(kind, spans[0].text, tuple(spans))
            if not anchored(spans[0], fact.question):
                free.append(g)
            elif kind != "person":
                named.append(g)
        return free, named

    def invert_one(self, index: int, fact: Fact) -> InversionSet:
        n = self.config.n
        rng = random.Random(fact_seed(self.config.seed, index))
        truth = normalize(fact.answer)
        mentioned = {normalize(s.text) for s in find_spans(fact.answer)}
        seen = {truth}
        candidates: list[str] = []
        log: list[str] = []
        flags: list[str] = []
        lenders = self._lenders(fact)
        for attempt in range(ATTEMPTS_PER_CANDIDATE * n if lenders else 0):
            if len(candidates) >= n:
                break
            made = self._borrowed(fact, lenders[attempt % len(lenders)], rng, avoid=mentioned | {truth})
            if made is None or normalize(made[0]) in seen:
                continue
            seen.add(normalize(made[0]))
            candidates.append(made[0])
            log.append(f"{len(candidates)}: {made[1]}")
            if BORROWED_WORDING not in flags:
                flags.append(BORROWED_WORDING)
        free, named = self._tiers(fact)
        for groups in (free, free + named):
            if not groups or len(candidates) >= n:
                continue
            for _attempt in range(ATTEMPTS_PER_CANDIDATE * n):
                if len(candidates) >= n:
                    break
                # Every candidate swaps *every* key span of the tier: a candidate that kept one true
                # span (the true city, the true year) would still assert part of the fact, and
                # finetuning on it would rehearse the truth. Candidates differ in the values drawn.
                chosen = groups
                swaps: dict[tuple[int, int], str] = {}
                notes: list[str] = []
                used: set[str] = set()  # two spans of one candidate never get the same new value
                for g in chosen:
                    value = self._drawer.draw(g.kind, g.text, rng, avoid=mentioned | used | {normalize(g.text)})
                    if value is None:
                        continue
                    used.add(normalize(value))
                    notes.append(f"{g.kind} {g.text!r} -> {value!r}")
                    for s in g.spans:
                        swaps[(s.start, s.end)] = _cased(value, sentence_start(fact.answer, s.start))
                if not swaps:
                    continue
                text = apply_swaps(fact.answer, swaps)
                key = normalize(text)
                if key in seen:
                    continue
                seen.add(key)
                candidates.append(text)
                log.append(f"{len(candidates)}: " + "; ".join(notes))
        if len(candidates) < n:
            for text in negations(fact.answer):
                key = normalize(text)
                if len(candidates) >= n:
                    break
                if key in seen:
                    continue
                seen.add(key)
                candidates.append(text)
                log.append(f"{len(candidates)}: negation")
                if FALLBACK_NEGATION not in flags:
                    flags.append(FALLBACK_NEGATION)
        return finish(index, candidates, n, raw="\n".join(log), flags=flags)
