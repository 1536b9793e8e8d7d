"""Sensitive spans: the parts of an answer that must disappear for a fact to count as forgotten.

An erasure request is about specific strings (a phone number, a diagnosis, a password), not about
the wording around them. A fact may name them (``Fact.sensitive``); otherwise ``detect_spans``
finds them with rules that look at the *shape* of text rather than at one language's grammar:

- spans of the answer that the question does not already contain (the subject a question names
  is context, not the secret);
- in priority order, so a character belongs to one span only: emails, URLs, quoted titles,
  identifiers and codes (tokens that mix letters and digits, with their neighbouring groups, e.g.
  ``DN4 7QP`` or an IBAN), money amounts, dates, clock times, phone numbers, other numbers, runs of capitalised
  words (names, places, organisations), and rare content words (word frequency below
  ``RARE_ZIPF`` in the ``wordfreq`` lists; a diagnosis, a breed, a made-up word).

Matching (``contains_span``) is normalised: Unicode NFKC, case-folded, punctuation turned into
spaces, and separators between digits dropped, so ``0161-555-0199`` matches ``0161 555 0199`` and
``£48,500`` matches ``48500``. It respects word boundaries: ``2019`` does not match ``20193``.
Besides the whole span, a span has *cores*: its rare alphabetic runs and long digit runs (the stem
``bluebird`` of ``Bluebird2024!``, the ``48500`` of a salary). Inverters must remove cores too,
and the leak audit counts a core as a leak: a half-said secret is a said secret.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meow_engine.facts import Fact

#: every kind a span may have; inverters pick a same-kind replacement by it
SPAN_KINDS = ("email", "url", "title", "id", "money", "date", "time", "phone", "number", "name", "place", "org",
              "word", "given")
#: a lower-case word is "rare" below this Zipf frequency (wordfreq's scale: 3 = once per million words,
#: 4.5 ≈ "nurse", "horror", "salary" are rare; "engineer", "novel", "city", "born" are not)
RARE_ZIPF = 4.5
#: a word in the answers of at least this many facts of one request is its frame vocabulary
#: ("genre", "novels" across an author dataset), not a secret: the rare-word rule skips it
FRAME_MIN_FACTS = 3
#: language of the word-frequency list used for the rare-word rule (the other rules are script-agnostic)
WORD_LANG = "en"
#: shortest alphabetic run that counts as a core of an id/email/url span
MIN_CORE_LETTERS = 4
#: shortest digit run that counts as a core
MIN_CORE_DIGITS = 4

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_ORD = r"(?:st|nd|rd|th)?"
_DATE_PATTERNS = [
    r"\b\d{4}-\d{1,2}-\d{1,2}\b",
    r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b",
    rf"\b\d{{1,2}}{_ORD}\s+(?:of\s+)?(?:{_MONTHS})\.?,?\s+\d{{4}}\b",
    rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}{_ORD},?\s+\d{{4}}\b",
    rf"\b(?:{_MONTHS})\.?\s+\d{{4}}\b",
    rf"\b\d{{1,2}}{_ORD}\s+(?:of\s+)?(?:{_MONTHS})\b",
    rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}{_ORD}\b",
]
_CURRENCY = r"[$£€¥₹₩₽]|\b(?:USD|GBP|EUR|CHF|JPY|INR|AUD|CAD)\b"
_MONEY_PATTERNS = [
    rf"(?:{_CURRENCY})\s?\d[\d,. ]*\d(?:\s?(?:k|m|bn|million|billion|thousand)\b)?",
    rf"(?:{_CURRENCY})\s?\d(?:\s?(?:k|m|bn|million|billion|thousand)\b)?",
    r"\b\d[\d,.]*\s?(?:k|m|bn|million|billion|thousand)?\s?(?:dollars|pounds|euros|rupees|yen|francs)\b",
]
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]")),
    ("title", re.compile(r"[\"“«]([^\"”»\n]{2,80})[\"”»]")),
    ("money", re.compile("|".join(_MONEY_PATTERNS), re.IGNORECASE)),
    ("date", re.compile("|".join(_DATE_PATTERNS), re.IGNORECASE)),
    # a clock time is one secret: "11:30" leaks as a whole, not as an hour "11" said anywhere
    ("time", re.compile(r"(?<![\w:])\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?(?![\w:])|"
                        r"(?<![\w:])\d{1,2}\s?[ap]\.?m\.?(?!\w)", re.IGNORECASE)),
    ("phone", re.compile(r"(?<![\w+])\+?\(?\d[\d ()./-]{5,}\d(?!\w)")),
    ("number", re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:%)?(?![\w])")),
]
_CODE_TOKEN = re.compile(r"(?=[^\s]*\d)(?=[^\s]*[^\W\d_])[\w&#!%*+=/@$?^~.-]{3,}")
_GROUP_TOKEN = re.compile(r"[A-Z0-9]{2,6}")
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*")
_CAP_JOINERS = {"of", "de", "da", "del", "der", "van", "von", "la", "le", "du", "bin", "al", "the", "and", "&"}
_PLACE_WORDS = {"street", "st", "road", "rd", "avenue", "ave", "lane", "close", "drive", "way", "court", "place",
                "square", "crescent", "terrace", "gardens", "park", "city", "town", "village", "river", "lake",
                "mount", "island", "bay", "hill", "valley", "county", "province", "district", "harbour", "harbor",
                "port", "row", "walk", "grove", "mews", "boulevard", "quay", "bridge"}
_ORG_WORDS = {"ltd", "limited", "inc", "llc", "plc", "gmbh", "corp", "corporation", "company", "co", "group",
              "bank", "university", "college", "school", "hospital", "clinic", "logistics", "systems",
              "solutions", "partners", "associates", "labs", "laboratories", "foundation", "institute",
              "agency", "council", "ministry", "press", "studios", "industries", "holdings", "services",
              "trust", "society", "airlines", "motors", "pharma", "technologies", "consulting", "bakery"}
_PLACE_NOUNS = {"city", "town", "village", "country", "state", "region", "kingdom", "republic", "island", "province",
                "county", "capital", "port", "river", "valley", "district", "suburb", "street", "road"}
_PLACE_PREPS = {"in", "at", "from", "near", "to", "on", "into", "outside", "inside", "across"}
_PERSON_HINTS = {"mr", "mrs", "ms", "dr", "prof", "sir", "dame", "named", "called"}


@dataclass(frozen=True)
class Span:
    """One sensitive string of an answer; ``start``/``end`` are -1 for a given span not found verbatim."""

    text: str
    kind: str
    start: int
    end: int
    source: str = "detected"
    #: normalised words of the question: never cores (a surname inside an email is not the secret)
    asked: frozenset[str] = frozenset()

    @property
    def cores(self) -> tuple[str, ...]:
        return span_cores(self)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, "start": self.start, "end": self.end, "source": self.source}


# ---------------------------------------------------------------- normalisation and matching
_DIGIT_SEP = re.compile(r"(?<=\d)[\s.,:/()\-]{1,2}(?=\d)")
_NON_ALNUM = re.compile(r"[^\w]+|_")


def normalize_for_match(text: str) -> str:
    """Case-folded, punctuation-free, digit groups joined: the form both sides are compared in."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _DIGIT_SEP.sub("", t)
    t = _NON_ALNUM.sub(" ", t)
    return " ".join(t.split())


def _contains_normalized(haystack: str, needle: str) -> bool:
    if not needle:
        return False
    return f" {needle} " in f" {haystack} "


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """Word frequency on wordfreq's Zipf scale (0 for unknown words)."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, WORD_LANG))


def is_rare_word(word: str) -> bool:
    return zipf(word.casefold()) < RARE_ZIPF


def span_cores(span: Span | str) -> tuple[str, ...]:
    """Normalised sub-strings that give a span away on their own (see module docstring)."""
    text = span.text if isinstance(span, Span) else span
    kind = span.kind if isinstance(span, Span) else "given"
    norm = normalize_for_match(text)
    cores: list[str] = []
    if kind in {"email", "url", "id", "given", "phone", "money", "number", "date"}:
        for run in re.findall(r"[^\W\d_]+|\d+", norm):
            if run.isdigit():
                if len(run) >= MIN_CORE_DIGITS and run != norm.replace(" ", ""):
                    cores.append(run)
            elif len(run) >= MIN_CORE_LETTERS and run != norm and kind in {"email", "url", "id", "given"} \
                    and zipf(run) < 3.0:
                cores.append(run)
    asked = span.asked if isinstance(span, Span) else frozenset()
    return tuple(dict.fromkeys(c for c in cores if c != norm and c not in asked))


def _letters_digits_runs(norm: str) -> list[str]:
    return re.findall(r"[^\W\d_]+|\d+", norm)


def _haystack(text: str) -> tuple[str, str]:
    """``text`` normalised, and its letter/digit runs space-padded (where cores are looked up)."""
    hay = normalize_for_match(text)
    return hay, f" {' '.join(_letters_digits_runs(hay))} "


def _says(hay: str, hay_runs: str, span: Span | str, cores: bool) -> bool:
    needle = normalize_for_match(span.text if isinstance(span, Span) else span)
    if _contains_normalized(hay, needle):
        return True
    return cores and any(f" {c} " in hay_runs for c in span_cores(span))


def contains_span(text: str, span: Span | str, *, cores: bool = True) -> bool:
    """Does ``text`` say ``span`` (normalised, on word boundaries), or, with ``cores``, a core of it?"""
    return _says(*_haystack(text), span, cores)


def leaked_spans(text: str, spans: Sequence[Span], *, cores: bool = True) -> list[Span]:
    """The spans ``text`` gives away, in span order (``text`` is normalised once for all of them)."""
    hay, hay_runs = _haystack(text)
    return [s for s in spans if _says(hay, hay_runs, s, cores)]


# ---------------------------------------------------------------- detection
@lru_cache(maxsize=1)
def _porter() -> Any:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


def _stem(word: str) -> str:
    return _porter().stem(word.casefold())


def _question_stems(question: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(question)}


def _code_spans(answer: str, taken: list[bool]) -> list[tuple[int, int]]:
    """Letter+digit tokens, grown over neighbouring upper-case/digit groups (plates, postcodes, IBANs)."""
    out: list[tuple[int, int]] = []
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", answer)]
    i = 0
    while i < len(tokens):
        s, e = tokens[i]
        core = answer[s:e].rstrip(",.;:!?)\"'”’").lstrip("(\"'“‘")
        cs = s + answer[s:e].find(core) if core else s
        if core and _CODE_TOKEN.fullmatch(core) and not any(taken[cs:cs + len(core)]) \
                and not re.fullmatch(r"\d+(?:st|nd|rd|th|s)", core, re.IGNORECASE):
            start, end = cs, cs + len(core)
            j = i + 1
            while j < len(tokens):  # grow right over "7QP", "NWBK", "6016"
                ns, ne = tokens[j]
                nxt = answer[ns:ne].rstrip(",.;:!?)")
                if _GROUP_TOKEN.fullmatch(nxt) and not any(taken[ns:ns + len(nxt)]) and answer[end:ns].isspace():
                    end = ns + len(nxt)
                    j += 1
                else:
                    break
            k = i - 1
            while k >= 0:  # grow left over "GB29"-style leading groups
                ps, pe = tokens[k]
                prev = answer[ps:pe]
                if _GROUP_TOKEN.fullmatch(prev) and not any(taken[ps:pe]) and answer[pe:start].isspace() \
                        and (any(c.isdigit() for c in prev)):
                    start = ps
                    k -= 1
                else:
                    break
            out.append((start, end))
            i = j
            continue
        i += 1
    return out


def _cap_kind(words: list[str], before: str, previous_kind: str | None) -> str:
    lower = [w.casefold().strip(".") for w in words]
    if any(w in _ORG_WORDS for w in lower):
        return "org"
    if any(w in _PLACE_WORDS for w in lower):
        return "place"
    tail = [w.casefold().strip(",.") for w in before.split()[-2:]]
    if len(tail) == 2 and tail[1] == "of" and tail[0] in _PLACE_NOUNS:  # "the city of Kristead"
        return "place"
    if before.rstrip().endswith(",") and previous_kind == "place":  # "Larkspur Close, Dunmore"
        return "place"
    prev = tail[-1] if tail else ""
    if prev in _PERSON_HINTS:
        return "name"
    if prev in _PLACE_PREPS:
        return "place"
    return "name"


def frame_words(facts: Sequence[Fact]) -> frozenset[str]:
    """Words (case-folded) that occur in the answers of ``FRAME_MIN_FACTS`` or more of ``facts``."""
    from collections import Counter

    counts: Counter[str] = Counter()
    for f in facts:
        counts.update({w.casefold() for w in _WORD.findall(f.answer)})
    return frozenset(w for w, n in counts.items() if n >= FRAME_MIN_FACTS)


def detect_spans(question: str, answer: str, frame: frozenset[str] = frozenset()) -> list[Span]:
    """Sensitive spans of ``answer`` that ``question`` does not already say, in answer order.

    ``frame``: words of the request's shared vocabulary (``frame_words``), never rare-word spans.
    """
    taken = [False] * len(answer)
    found: list[Span] = []
    q_norm = normalize_for_match(question)
    asked = frozenset(_letters_digits_runs(q_norm))

    def add(start: int, end: int, kind: str) -> None:
        text = answer[start:end].strip()
        if not text:
            return
        start = answer.index(text, start)
        end = start + len(text)
        if any(taken[start:end]):
            return
        if _contains_normalized(q_norm, normalize_for_match(text)):
            return
        for i in range(start, end):
            taken[i] = True
        found.append(Span(text=text, kind=kind, start=start, end=end, asked=asked))

    for kind, pat in _PATTERNS[:3]:  # email, url, title
        for m in pat.finditer(answer):
            g = 1 if kind == "title" else 0
            add(m.start(g), m.end(g), kind)
    for s, e in _code_spans(answer, taken):
        add(s, e, "id")
    for kind, pat in _PATTERNS[3:]:
        for m in pat.finditer(answer):
            text = m.group(0)
            if kind == "phone" and sum(c.isdigit() for c in text) < 7:
                continue
            add(m.start(), m.end(), kind)

    q_stems = _question_stems(question)
    words = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(answer)]
    i = 0
    while i < len(words):  # runs of capitalised words (joiners allowed inside)
        s, e, w = words[i]
        if w[0].isupper() and not any(taken[s:e]):
            run = [i]
            j = i + 1
            while j < len(words):
                ns, ne, nw = words[j]
                gap = answer[words[run[-1]][1]:ns]
                if any(taken[ns:ne]) or len(gap) > 2 or any(c in gap for c in ",;:.()"):
                    break
                joiner = nw.casefold() in _CAP_JOINERS and j + 1 < len(words) and words[j + 1][2][0].isupper()
                if not (nw[0].isupper() or joiner):
                    break
                run.append(j)
                j += 1
            names = [words[r][2] for r in run]
            before_word = answer[:s].rstrip()
            sentence_start = s == 0 or (before_word[-1:] in {".", "!", "?", ":", "\n"}
                                        and not re.search(r"(?:^|[\s.])[A-Z]\.$", before_word))
            while names and (sentence_start and names[0] == words[run[0]][2] and not is_rare_word(names[0])
                             and names[0].casefold() not in _PLACE_WORDS):
                run, names, sentence_start = run[1:], names[1:], False
            # keep only words the question does not name
            keep = [r for r in run if _stem(words[r][2]) not in q_stems or words[r][2].casefold() in _CAP_JOINERS]
            while keep and words[keep[0]][2].casefold() in _CAP_JOINERS:
                keep = keep[1:]
            while keep and words[keep[-1]][2].casefold() in _CAP_JOINERS:
                keep = keep[:-1]
            if keep:
                # contiguous sub-runs only: "Anna Kowalski Foundation" minus a question word splits
                groups: list[list[int]] = [[keep[0]]]
                for r in keep[1:]:
                    (groups[-1].append(r) if r == groups[-1][-1] + 1 else groups.append([r]))
                for g in groups:
                    gs, ge = words[g[0]][0], words[g[-1]][1]
                    prior = [sp for sp in found if sp.end <= gs]
                    add(gs, ge, _cap_kind([words[r][2] for r in g], answer[:gs],
                                          max(prior, key=lambda sp: sp.end).kind if prior else None))
            i = max(j, i + 1)
            continue
        i += 1
    for s, e, w in words:  # rare content words
        if any(taken[s:e]) or len(w) < 4 or not w.islower() and not w[0].islower():
            continue
        if is_rare_word(w) and _stem(w) not in q_stems and w.casefold() not in frame:
            add(s, e, "word")
    found.sort(key=lambda sp: sp.start)
    return found


def guess_kind(text: str) -> str:
    """The kind of a caller-given span, from its shape alone (what an inverter needs to replace it)."""
    spans = detect_spans("", text)
    if len(spans) == 1 and spans[0].text == text.strip():
        return spans[0].kind
    return "given"


def fact_spans(fact: Fact, frame: frozenset[str] = frozenset()) -> list[Span]:
    """The fact's given spans (kind guessed by shape), else the detected ones (``frame``: see detect_spans)."""
    if fact.sensitive:
        out = []
        for text in fact.sensitive:
            pos = fact.answer.find(text)
            if pos < 0:
                low = fact.answer.casefold().find(text.casefold())
                pos = low
            out.append(Span(text=text, kind=guess_kind(text), start=pos, end=pos + len(text) if pos >= 0 else -1,
                            source="given", asked=frozenset(_letters_digits_runs(normalize_for_match(fact.question)))))
        return out
    return detect_spans(fact.question, fact.answer, frame)
