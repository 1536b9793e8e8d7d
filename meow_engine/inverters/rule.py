"""``rule``: offline, deterministic inversion of any fact by same-typed span replacement.

The embedded default: no model, no network, the same output for the same facts and seed on every
machine. Each candidate keeps the sentence and replaces EVERY sensitive span of the answer
(``sensitive.fact_spans``: the fact's given spans, else the detected ones: emails, phone numbers,
dates, amounts, ids, passwords, names, places, organisations, rare words) with a value of the same
kind and shape (``replace.py``: an email stays an email, a phone keeps its digit groups, a date its
format, a salary its currency and separators, a plate its letter/digit pattern, a street stays a
street, a diagnosis becomes another diagnosis). Same-kind values may also come from the other
facts (forget and context) for places and TOFU-style attributes (genres, professions, awards,
titles ...; ``spans.find_spans``), never for people (a candidate must not tie one data subject to
another), so a candidate reads like a plausible wrong answer,
which is what MEOW wants to train towards. The same span text changes the same way throughout a
candidate, and candidates use different values from each other wherever a pool allows.

Strategies, in order, until a fact has ``n`` distinct candidates:

1. *borrowed wording* (TOFU-style facts only: no email/phone/id/amount/url span, no given
   spans): another fact of the same shape (the same kinds of spans, the same kinds named by its
   question) but phrased differently lends its sentence; this fact's subject goes in and every
   other span gets a fresh value. Swapping spans alone keeps every template word of the true
   answer, so a model trained on such candidates still reproduces most of the true sentence (MEMO
   counts unigrams); a differently worded, fully contradicting answer is what the paper's
   LLM-written inversions are, and what makes MEMO of the truth drop.
2. *all-spans swap*: the true sentence with every sensitive span (and, for detected spans, every
   other key attribute the question does not name) replaced.

With ``InverterConfig.model`` set (``"target"``: the model ``invert(lm=)`` is given), word-like
spans take replacements the model samples with the true tokens banned (``guided.py``); shaped spans
keep their generators, and the pools fill in whatever the model proposes badly.

There is no negation fallback: "It is not true that <the answer>" repeats the fact verbatim, and
training on it rehearses it. Every candidate is checked with ``screen.rejection_reason`` before it
is kept; a fact whose spans cannot be replaced gets fewer candidates, and ``invert`` flags it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as replace_kind_of

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.inverters import pools
from meow_engine.inverters.base import INVERTERS, InversionSet, Inverter, finish
from meow_engine.inverters.cleanup import normalize
from meow_engine.inverters.guided import GUIDE_TARGET, GUIDED_KINDS, ModelGuide
from meow_engine.inverters.replace import Context, refine_kind, replace, same_stem
from meow_engine.inverters.screen import rejection_reason
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
from meow_engine.sensitive import Span as SensitiveSpan
from meow_engine.sensitive import contains_span, fact_spans, leaked_spans, normalize_for_match

#: tries per requested candidate before giving up on finding another distinct one
ATTEMPTS_PER_CANDIDATE = 30
#: chance to draw a replacement from the other facts (rather than the built-in list) when they have one
FACT_POOL_P = 0.5
#: flag: at least one candidate re-uses the wording of another fact of the same shape
BORROWED_WORDING = "borrowed_wording"
#: flag: at least one candidate holds a replacement the guide model proposed (``model`` set)
MODEL_GUIDED = "model_guided"
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
        self._guide: ModelGuide | None = None
        self._index = 0
        self._spans: list[SensitiveSpan] = []
        model = self.config.model
        if model:  # model-guided replacements (guided.py); without a model: offline pools only
            if model == GUIDE_TARGET:
                if self.lm_hint is None:
                    raise ConfigError("inverter 'rule' with model 'target' needs the target model: only the unlearn "
                                      "pipeline has one; elsewhere name a local model, or leave model unset")
                lm = self.lm_hint
            else:
                from meow_engine.models import load_model

                lm = load_model(model)
            self._guide = ModelGuide(lm, self.config.seed, self.config.temperature)

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

    def _units(self, fact: Fact) -> tuple[list[_Unit], list[SensitiveSpan], bool]:
        """(what each candidate replaces, the sensitive spans, whether borrowing a wording is safe)."""
        spans = fact_spans(fact, self.frame)
        answer = fact.answer
        units: list[_Unit] = []
        for sp in spans:
            found = locate(answer, sp)
            if found is not None:
                units.append(_Unit(found[0], found[1], answer[found[0]:found[1]], sp.kind, sp.source, True))
        # every other mention of a span's text changes with it ("George R.R. Martin": both R's)
        for u in list(units):
            for m in re.finditer(rf"(?<![^\W_]){re.escape(u.text)}(?![^\W_])", answer, re.IGNORECASE):
                if not any(m.start() < v.end and v.start < m.end() for v in units):
                    units.append(_Unit(m.start(), m.end(), m.group(0), u.kind, u.source, u.required))
        given = any(sp.source == "given" for sp in spans)
        # the word lists of find_spans know invented countries and cities ("north of Zhoreth"): a
        # capitalised span they call a place or a person takes that kind
        keys = {(k.start, k.end): k.kind for k in find_spans(answer)}
        units = [replace_kind(u, _KEY_KIND.get((u.kind, keys.get((u.start, u.end), "")), u.kind)) for u in units]
        if not given:
            # TOFU-style attributes: a key span (genre, profession, award ...) that covers detected
            # spans replaces them as one unit from its own pool; one the detector missed but the
            # question does not name is replaced too, so the candidate contradicts the fact.
            for key in find_spans(answer):
                if key.kind not in _DRAWER_KINDS or anchored(key, fact.question):
                    continue
                inside = [u for u in units if u.start < key.end and key.start < u.end]
                if any(pools.category_of(u.text) for u in inside):
                    continue  # "Italian" after "speaks": the language pool knows better than "nationality"
                if all(key.start <= u.start and u.end <= key.end for u in inside):
                    units = [u for u in units if u not in inside]
                    units.append(_Unit(key.start, key.end, key.text, "key:" + key.kind, "detected", bool(inside)))
        if not units:
            units = _content_words(fact)
        units.sort(key=lambda u: u.start)
        borrow = not given and not any(refine_kind(u.text, u.kind) in _SHAPED_KINDS for u in units)
        return units, spans, borrow

    def _value(self, unit: _Unit, fact: Fact, rng: random.Random, avoid: set[str], ctx: Context) -> str | None:
        """A same-kind replacement for ``unit``: the other facts' values sometimes, else ``replace``."""
        if unit.kind.startswith("key:"):
            return self._drawer.draw(unit.kind[4:], unit.text, rng, avoid=avoid | {normalize(unit.text)})
        kind = refine_kind(unit.text, unit.kind)
        if self._guide is not None and kind in GUIDED_KINDS:
            proposals = self._guide.proposals((self._index, unit.start), fact.question, fact.answer[: unit.start],
                                              unit.text)
            # a proposal may say, or nearly say, another span of the fact ("mysteryen", "Domoraik")
            fresh = [p for p in proposals if normalize_for_match(p) not in avoid and not leaked_spans(p, self._spans)
                     and not any(same_stem(p, sp.text) for sp in self._spans) and not same_stem(p, unit.text)]
            if fresh:
                ctx.guided = True
                return rng.choice(fresh)
        # Places may come from the other facts; people never: a candidate tying one data subject to
        # another ("X married <another fact's person>") would state a falsehood about a real person.
        if kind == "place" and unit.source == "detected" and rng.random() < FACT_POOL_P:
            value = self._from_facts(kind, unit.text, rng, avoid, fact)
            if value is not None:
                return value
        ctx.start, ctx.end = unit.start, unit.end
        return replace(unit.text, kind, ctx, rng, avoid)

    def _from_facts(self, kind: str, text: str, rng: random.Random, avoid: set[str], fact: Fact) -> str | None:
        """A place another fact names, of the same shape (parts, commas, street or not), that shares no
        word with this fact."""
        own = _words_of(fact.question) | _words_of(fact.answer)
        pool = self._drawer.from_facts.get("place", [])
        street = _is_street(text)
        options = [v for v in pool if len(v.split()) == len(text.split()) and (", " in v) == (", " in text)
                   and _is_street(v) == street and normalize_for_match(v) not in avoid
                   and not contains_span(v, text) and not _words_of(v) & own
                   and not any(t in _PERSON_WORDS for t in v.replace(",", "").split())]  # "Kulel": a name too
        return rng.choice(options) if options else None

    def invert_one(self, index: int, fact: Fact) -> InversionSet:
        n = self.config.n
        self._index = index
        rng = random.Random(fact_seed(self.config.seed, index))
        units, spans, borrow = self._units(fact)
        self._spans = spans
        originals = {normalize_for_match(u.text) for u in units} | {normalize(u.text) for u in units}
        seen: dict[str, str] = {}
        candidates: list[str] = []
        log: list[str] = []
        flags: list[str] = []

        def accept(text: str, note: str) -> bool:
            if rejection_reason(text, fact, spans, seen) is not None:
                return False
            seen[normalize_for_match(text)] = text
            candidates.append(text)
            log.append(f"{len(candidates)}: {note}")
            return True

        lenders = self._lenders(fact) if borrow else []
        for attempt in range(ATTEMPTS_PER_CANDIDATE * n if lenders else 0):
            if len(candidates) >= n:
                break
            lender = lenders[attempt % len(lenders)]
            made = self._borrowed(fact, lender, rng, avoid=originals | {normalize(fact.answer)})
            if made is not None and accept(*made) and BORROWED_WORDING not in flags:
                flags.append(BORROWED_WORDING)
        # one replacement per distinct span text; names first, so an email can follow a renamed person
        groups: dict[str, list[_Unit]] = {}
        for u in units:
            groups.setdefault(normalize_for_match(u.text), []).append(u)
        order = sorted(groups, key=lambda k: (refine_kind(groups[k][0].text, groups[k][0].kind) != "name",
                                              groups[k][0].start))
        earlier: dict[str, set[str]] = {k: set() for k in groups}  # values earlier candidates used
        for _attempt in range(ATTEMPTS_PER_CANDIDATE * n if units else 0):
            if len(candidates) >= n:
                break
            ctx = Context(question=fact.question, answer=fact.answer)
            swaps: dict[tuple[int, int], str] = {}
            notes: list[str] = []
            used: set[str] = set()
            chosen: dict[str, str] = {}
            for key in order:
                unit = groups[key][0]
                value = self._value(unit, fact, rng, originals | used | earlier[key], ctx)
                if value is None:  # a small pool ran out of fresh values: allow a repeat
                    value = self._value(unit, fact, rng, originals | used, ctx)
                if value is None:
                    if unit.required:
                        break
                    continue  # an extra attribute with no fresh value (an antonym pair): left as is
                chosen[key] = value
                used.add(normalize_for_match(value))
                notes.append(f"{refine_kind(unit.text, unit.kind) if ':' not in unit.kind else unit.kind[4:]} "
                             f"{unit.text!r} -> {value!r}")
                verbatim = refine_kind(unit.text, unit.kind) in _VERBATIM_KINDS  # "j.okoro@..." stays lower-case
                for u in groups[key]:
                    swaps[(u.start, u.end)] = value if verbatim else _cased(value, sentence_start(fact.answer, u.start))
            if any(groups[k][0].required and k not in chosen for k in groups) or not chosen:
                continue
            how = " (model-guided)" if ctx.guided else ""
            if accept(apply_swaps(fact.answer, swaps), "; ".join(notes) + how):
                for key, value in chosen.items():
                    earlier[key].add(normalize_for_match(value))
                if ctx.guided and MODEL_GUIDED not in flags:
                    flags.append(MODEL_GUIDED)
        return finish(index, candidates, n, raw="\n".join(log), flags=flags)


@dataclass(frozen=True)
class _Unit:
    """One stretch of the answer a candidate replaces (``kind`` "key:<k>" = a ``find_spans`` kind).

    ``required``: it holds a sensitive span, so a candidate that cannot replace it is not made;
    other key attributes are replaced when a fresh value exists.
    """

    start: int
    end: int
    text: str
    kind: str
    source: str
    required: bool = True


#: (detector kind, find_spans kind) -> the kind used: the word lists know invented places and people
_KEY_KIND = {("name", "place"): "place", ("word", "place"): "place", ("word", "person"): "name"}
#: ``find_spans`` kinds whose values come from the drawer's pools (the others have typed generators)
_DRAWER_KINDS = {"genre", "profession", "award", "river", "nationality", "gender", "number_word", "title",
                 "antonym", "month", "year", "decade"}
#: kinds written exactly as generated, never capitalised at a sentence start
_VERBATIM_KINDS = {"email", "url", "id", "phone", "number", "money", "date"}
#: kinds whose shape only ``replace`` keeps: facts with them are not given another fact's wording
_SHAPED_KINDS = {"email", "url", "phone", "id", "money"}
_STREET_WORDS = {w.casefold().rstrip(".") for w in pools.pool("street_type")}


_PERSON_WORDS = set(VOCAB_POOLS.get("first_name", [])) | set(VOCAB_POOLS.get("surname", []))


def replace_kind(unit: _Unit, kind: str) -> _Unit:
    return unit if unit.kind == kind else replace_kind_of(unit, kind=kind)


def _words_of(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[^\W\d_]{3,}", text)}


def _is_street(text: str) -> bool:
    words = [w.casefold().rstrip(".,") for w in text.split()]
    return len(words) > 1 and words[-1] in _STREET_WORDS


def locate(answer: str, span: SensitiveSpan) -> tuple[int, int] | None:
    """Where ``span`` is in ``answer``: its offsets, else a match ignoring case and punctuation/spacing
    between letters and digits (a given "07700900461" in "07700 900461"), else None."""
    if 0 <= span.start < span.end <= len(answer) and answer[span.start:span.end].casefold() == span.text.casefold():
        return span.start, span.end
    chars = [c for c in span.text if c.isalnum()]
    if not chars:
        return None
    pattern = r"[\W_]*".join(re.escape(c) for c in chars)
    m = re.search(rf"(?<!\w){pattern}(?!\w)", answer, re.IGNORECASE) or re.search(pattern, answer, re.IGNORECASE)
    return (m.start(), m.end()) if m else None


_CONTENT_STOP = frozenset(_STOPWORDS_TEXT.split()) | {"yes", "not", "also", "very", "most", "more", "been", "being",
                                                      "there", "they", "them", "then", "than", "into", "over"}
#: content words replaced when an answer has no sensitive or key span at all (the rarest ones)
FALLBACK_WORDS = 2


def _content_words(fact: Fact) -> list[_Unit]:
    """The rarest content words the question does not say: what a fact with no detected span asserts."""
    from meow_engine.sensitive import zipf

    q = set(re.findall(r"[a-z]+", fact.question.casefold()))
    words = [m for m in re.finditer(r"[A-Za-z][a-z]{3,}", fact.answer) if m.group(0).casefold() not in _CONTENT_STOP]
    # an answer the question already spells out ("Boston" for "... the 'Boston Tea Party'?") still asserts it
    found = [m for m in words if m.group(0).casefold() not in q] or words
    found.sort(key=lambda m: zipf(m.group(0).casefold()))
    return [_Unit(m.start(), m.end(), m.group(0), "word", "content") for m in found[:FALLBACK_WORDS]]
