"""Same-typed replacements for sensitive spans: the heart of the offline ``rule`` inverter.

``replace(text, kind, ctx, rng, avoid)`` returns another string of the same *kind and shape* as
``text``, or None. Shape is kept so the candidate stays a plausible wrong answer (what MEOW wants
to train towards) and so nothing of the secret survives:

- email: every local-part run and the mail domain change; separators, digit counts and the TLD stay;
- url: scheme, ``www.`` and TLD stay; every other label and path run changes;
- phone: every separator stays; the country code and the national prefix (``07``, ``+44 7``) stay;
  every other digit changes (group-leading digits stay 2-9 when they were, as NANP wants);
- date: a valid, different date in the same format (field order, zero padding, ordinal suffixes,
  month-name style); day, month and year all change;
- number/money: currency, separators, decimals, trailing zeros stay; every significant digit changes;
  a bare year becomes another plausible year;
- id/code/plate/password: every letter becomes another letter of the same case, every digit another
  digit, symbols stay; a word inside a password becomes another word of the same length; an IBAN
  keeps its country letters;
- name: another person's name with the same number of parts (titles, particles, initials kept as
  such; gender kept when the first name says it; invented-name pools for invented names);
- place/org/title: the distinctive words change, the generic ones ("Street", "Close", "Hospital",
  "Ltd", "University of") stay; cities become cities, countries countries, streets streets;
- word: a pool of the word's category (diagnosis, breed, pet name, colour ...), else a sibling from
  a hand-written group, else a frequent word with the same ending (``-osis``, ``-itis``, ``-ist``).

Every result is checked against the original with ``sensitive.contains_span`` (cores included):
a replacement that still contains the secret or a core of it is never returned.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from meow_engine.inverters import pools as P
from meow_engine.inverters.spans import CITIES, COUNTRIES, COUNTRY_SET, GENRES, PROFESSIONS, VOCAB_POOLS
from meow_engine.sensitive import contains_span, normalize_for_match

#: tries per replacement before giving up on one that differs and keeps no core
TRIES = 12

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_CURRENCY = re.compile(r"[$£€¥₹₩₽]|\b(?:USD|GBP|EUR|CHF|JPY|INR|AUD|CAD)\b|\b(?:dollars|pounds|euros|rupees|yen)\b",
                       re.IGNORECASE)
_NUMBERISH = re.compile(r"[+\-]?[\d][\d\s,.'\u00a0\u202f]*%?")
_PHONEISH = re.compile(r"\+?[\d\s().\-/]+")
_MONTHS_FULL = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December"]
_MONTH_INDEX = {m.casefold(): i for i, m in enumerate(_MONTHS_FULL)}
_MONTH_INDEX.update({m[:3].casefold(): i for i, m in enumerate(_MONTHS_FULL)})
_MONTH_INDEX["sept"] = 8
_VOWELS = "aeiou"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "me", "nhs"}
_STREET_TYPES = {s.casefold().rstrip(".") for s in P.pool("street_type")}
_PLACE_GENERIC = {s.casefold().rstrip(".") for s in P.pool("place_generic")}
_ORG_GENERIC = {s.casefold().rstrip(".") for s in P.pool("company_suffix")} | {
    "logistics", "systems", "solutions", "partners", "associates", "labs", "laboratories", "foundation", "institute",
    "agency", "council", "ministry", "press", "studios", "industries", "holdings", "services", "trust", "society",
    "airlines", "motors", "pharma", "technologies", "consulting", "bakery", "bank", "university", "college",
    "school", "hospital", "clinic", "company", "group", "insurance", "energy", "media", "software", "foods",
    "engineering", "publishing", "retail", "telecom", "properties", "shipping", "design", "hotels", "care", "homes",
    "analytics", "freight", "health", "legal", "of", "the", "and", "&", "for", "philharmonic", "orchestra", "choir",
    "ensemble", "quartet", "band", "club", "fc", "united", "theatre", "theater", "general", "royal", "memorial",
    "infirmary", "national", "central", "regional", "community", "children's", "county", "city", "museum", "gallery"}
_TITLES = {t.casefold().rstrip(".") for t in P.pool("title_word")}
_PARTICLES = {t.casefold() for t in P.pool("name_particle")}
_FEMININE_WORDS = {"she", "her", "hers", "herself", "mrs", "ms", "miss", "dame", "lady", "mother", "daughter",
                   "wife", "sister"}
_MASCULINE_WORDS = {"he", "his", "him", "himself", "mr", "sir", "lord", "father", "son", "husband", "brother"}
_CUES: list[tuple[str, re.Pattern[str]]] = [
    ("diagnosis", re.compile(r"diagnos|condition|suffer|illness|disease|disorder|syndrome|medical|treated for|"
                             r"ailment|health", re.IGNORECASE)),
    ("medication", re.compile(r"medicat|prescri|\bdrug|\bdose|tablet|pills?\b", re.IGNORECASE)),
    ("allergen", re.compile(r"allerg", re.IGNORECASE)),
    ("employer", re.compile(r"\bworks? (?:for|at)\b|employ|company|\bfirm\b|\bjob at\b|workplace", re.IGNORECASE)),
    ("pet_name", re.compile(r"\bpets?\b|\bdog|\bcat\b|\bcats\b|puppy|kitten|hamster|parrot|rabbit|tortoise|"
                            r"\bhorse|pony", re.IGNORECASE)),
    ("colour", re.compile(r"colou?r", re.IGNORECASE)),
    ("language", re.compile(r"language|speaks?\b|fluent", re.IGNORECASE)),
    ("blood_type", re.compile(r"blood (?:type|group)", re.IGNORECASE)),
    ("religion", re.compile(r"religio|\bfaith\b", re.IGNORECASE)),
    ("instrument", re.compile(r"instrument", re.IGNORECASE)),
    ("sport", re.compile(r"\bsports?\b|\bteam\b", re.IGNORECASE)),
    ("vehicle", re.compile(r"\bcar\b|\bdrives?\b|vehicle", re.IGNORECASE)),
    ("subject", re.compile(r"studied|\bstudy|degree|\bmajor", re.IGNORECASE)),
    ("hobby", re.compile(r"hobb|pastime|spare time|free time", re.IGNORECASE)),
]
_MEDICAL_SUFFIX = re.compile(r"(?:itis|osis|oma|emia|aemia|pathy|algia|plegia|trophy|ectomy|iasis)$", re.IGNORECASE)


@dataclass
class Context:
    """Where a span sits and what has been decided for the candidate so far.

    ``renames`` maps a replaced word (casefolded) to its new value, so an email made of a person's
    name follows that person's new name ("Priya Raman" -> "Nadia Kowalski", priya.raman84@... ->
    nadia.kowalski17@...).
    """

    question: str = ""
    answer: str = ""
    start: int = 0
    end: int = 0
    renames: dict[str, str] = field(default_factory=dict)
    #: set when a value in this candidate came from the guide model
    guided: bool = False

    @property
    def before(self) -> str:
        """The five words before the span: a cue further away is about something else."""
        return " ".join(self.answer[: self.start].split()[-5:])

    @property
    def after(self) -> str:
        return " ".join(self.answer[self.end:].split()[:2])

    @property
    def around(self) -> str:
        return f"{self.question} {self.answer}"

    def feminine(self) -> bool | None:
        words = set(re.findall(r"[a-z]+", self.around.casefold()))
        fem, masc = bool(words & _FEMININE_WORDS), bool(words & _MASCULINE_WORDS)
        return True if fem and not masc else False if masc and not fem else None


# ---------------------------------------------------------------------------------------- helpers
def _other_digit(d: str, rng: random.Random, low: int = 0) -> str:
    return rng.choice([str(x) for x in range(low, 10) if str(x) != d])


def _other_letter(c: str, rng: random.Random) -> str:
    alphabet = _UPPER if c.isupper() else _LOWER
    base = unicodedata.normalize("NFKD", c)[:1].lower()  # "é" counts as a vowel like "e"
    same_class = [x for x in alphabet if (x.lower() in _VOWELS) == (base in _VOWELS) and x != c]
    return rng.choice(same_class)


def _like(new: str, old: str) -> str:
    """``new`` in ``old``'s letter case: UPPER, Title or lower (a proper noun keeps its capitals)."""
    if len(old) > 1 and old.isupper():
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    if old.islower() and not any(c.isupper() for c in new[1:]) and new.casefold() not in _PROPER_LOWER:
        return new[:1].lower() + new[1:]
    return new


_PROPER_LOWER = {v.casefold() for cat in ("language", "religion") for v in P.pool(cat) if v[:1].isupper()}


def _pick(options: list[str] | tuple[str, ...], rng: random.Random, avoid: set[str]) -> str | None:
    pool = [o for o in options if normalize_for_match(o) not in avoid]
    return rng.choice(pool) if pool else None


def _avoid_words(text: str) -> set[str]:
    return {normalize_for_match(w) for w in re.findall(r"[^\W\d_]+", text)}


# ---------------------------------------------------------------------------------------- kinds
def refine_kind(text: str, kind: str) -> str:
    """The generator to use: the detector's kind, corrected by shape (a given span's kind is a guess)."""
    t = text.strip()
    if re.fullmatch(r"[\d,.]+\s?(?:mg|mcg|µg|g|kg|ml|l|cl|cm|mm|m|km|mph|kph|lbs?|oz|ft|in|kwh|kb|mb|gb|tb|h|hrs?"
                    r"|mins?|s|sec|yrs?|°c|°f)", t, re.IGNORECASE):
        return "number"  # "50mg", "3km": a quantity, its unit stays
    if kind in ("id", "roman", "ip", "compass"):  # already decided (a code stays a code, digit by digit)
        return kind
    if _CLOCK.fullmatch(t) and (kind == "time" or ":" in t):
        return "time"
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", t):
        return "ip"
    if t in ("N", "S", "E", "W", "NE", "NW", "SE", "SW"):
        return "compass"
    if kind == "place" and re.fullmatch(r"[A-Z]{2,3}", t):
        return "id"  # "DC", "NSW": a region code keeps its letter shape
    if _EMAIL.fullmatch(t):
        return "email"
    if _URL.fullmatch(t):
        return "url"
    if kind == "date" and _parse_date(t) is None and re.fullmatch(r"[\d\s./-]+", t):
        return "id"  # "17-42-09" is no date: a code, digit by digit
    if kind == "date" or (kind in ("given", "number", "word") and _parse_date(t) is not None
                          and any(c.isdigit() for c in t) and not re.fullmatch(r"\d+(?:[.,]\d+)?", t)):
        return "date"
    has_digit = any(c.isdigit() for c in t)
    has_alpha = any(c.isalpha() for c in t)
    if has_digit and _CURRENCY.search(t):
        return "money"
    if has_digit and not has_alpha:
        digits = sum(c.isdigit() for c in t)
        if kind == "phone" or (digits >= 7 and _PHONEISH.fullmatch(t) and re.search(r"[\s()\-/]|^\+", t)):
            return "phone"
        return "number"
    if has_digit and has_alpha:
        if re.fullmatch(r"[\d,.]+\s?(?:k|m|bn|million|billion|thousand|%)", t, re.IGNORECASE):
            return "money" if kind == "money" else "number"
        return "id" if kind not in ("place",) or not re.search(r"[A-Za-z]{3,}", t) else "place"
    if kind in ("name", "word", "given") and re.fullmatch(r"[IVXLC]{1,6}", t) and len(t) > 1 or t in ("I", "V", "X") \
            and kind == "name":
        return "roman"
    if kind == "name" and t.casefold().rstrip(".") in _TITLES:
        return "name"  # "Dr" on its own: a title, not "Dr" for Drive
    if kind in ("name", "place", "word", "given") and " " not in t \
            and (P.category_of(t) or P.groups().get(t.casefold())):
        return "word"  # "Arabic", "Tuesday", "LLB", "Volvo", "Unit": a pool or sibling group knows what it is
    if kind in ("name", "given") and re.fullmatch(r"[A-Z]{1,4}(?:-[A-Z]{1,4})*", t):
        return "id"  # "NI", "QQ", "M-AB", the "B" of "4B": letters as a code
    if kind in ("name", "word", "given") and (t in COUNTRY_SET or t in _REAL_CITIES or t in _INVENTED_PLACES):
        return "place"
    if kind in ("name", "place"):
        words = [w.casefold().strip(".,") for w in t.split()]
        if len(words) > 1 and words[-1] in _ORG_GENERIC - {"of", "the", "and", "&", "for"} \
                and words[-1] not in _STREET_TYPES:
            return "org"
        if kind == "name" and (words[-1] in _PLACE_GENERIC or words[-1] in _STREET_TYPES or words[0] in _STREET_TYPES):
            return "place"
    if kind in ("given", "word") and t[:1].isupper() and len(t.split()) >= 2 and all(w[:1].isupper() for w in
                                                                                      t.split()):
        return "name"
    return kind if kind in _GENERATORS else "word"


# ---------------------------------------------------------------------------------------- digits
def phone(text: str, ctx: Context, rng: random.Random) -> str | None:
    digit_pos = [i for i, c in enumerate(text) if c.isdigit()]
    if len(digit_pos) < 4:
        return None
    keep: set[int] = set()
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    nanp = False
    if stripped.startswith("+") or stripped.startswith("00"):
        first = lead + (1 if stripped.startswith("+") else 2)
        if stripped.startswith("00"):
            keep.update({lead, lead + 1})
        run = []
        for i in range(first, len(text)):
            if not text[i].isdigit():
                break
            run.append(i)
        cc_len = len(run) if len(run) <= 3 else (1 if text[run[0]] == "1" else 2)
        keep.update(run[:cc_len])
        nanp = text[run[0]] == "1" and cc_len == 1
        national = [p for p in digit_pos if p not in keep]
        if national and not nanp:
            keep.add(national[0])
    elif text[digit_pos[0]] == "0":
        keep.update(digit_pos[:2])
    else:
        nanp = len(digit_pos) in (10, 11)
    out = list(text)
    for p in digit_pos:
        if p in keep:
            continue
        group_start = p == 0 or not text[p - 1].isdigit()
        low = 2 if nanp and group_start and text[p] >= "2" else 0
        out[p] = _other_digit(text[p], rng, low)
    return "".join(out)


def _clock_part(text: str, ctx: Context) -> int | None:
    """24 for the hour of "14:30", 60 for its minutes; None when the number is not part of a time."""
    if not re.fullmatch(r"\d{2}", text) or not ctx.answer:
        return None
    before, after = ctx.answer[ctx.start - 1: ctx.start], ctx.answer[ctx.end: ctx.end + 1]
    if after == ":" and re.match(r":\d{2}", ctx.answer[ctx.end:]):
        return 24
    if before == ":" and re.search(r"\d{1,2}:$", ctx.answer[: ctx.start]):
        return 60
    return None


def _decimal_split(core: str) -> int | None:
    """Index of the decimal separator in a number like ``48,500.75`` / ``4.250,00`` / ``3.5``, else None."""
    seps = [(i, c) for i, c in enumerate(core) if c in ".,"]
    if not seps:
        return None
    i, c = seps[-1]
    tail = core[i + 1:]
    if not tail.isdigit():
        return None
    if len(seps) > 1 and seps[0][1] != c:
        return i  # "48,500.75" / "4.250,00": the other separator groups thousands
    if len(tail) != 3:
        return i  # "3.5", "12,75"
    return None  # "48,500" / "1.250": thousands


def number(text: str, ctx: Context, rng: random.Random) -> str | None:
    """Every significant digit changes; separators, decimals' zeros, trailing zeros and symbols stay."""
    m = re.search(r"\d(?:[\d,.'\s\u00a0\u202f]*\d)?", text)
    if m is None:
        return None
    core = m.group(0)
    clock = _clock_part(text, ctx)
    if clock is not None:  # "14:30": an hour stays an hour, a minute a minute
        return f"{rng.choice([v for v in range(clock) if v != int(core)]):0{len(core)}d}"
    if re.fullmatch(r"1[89]\d\d|20\d\d", core) and not _CURRENCY.search(text):
        year = int(core)
        delta = rng.choice([d for d in range(-15, 16) if d != 0])
        new_year = year + delta if year + delta <= 2025 or year > 2025 else year - abs(delta)
        return text[: m.start()] + str(new_year) + text[m.end():]
    if core.isdigit() and 1 <= int(core) < 100 and not core.startswith("0") and not _CURRENCY.search(text):
        v = int(core)  # an age, a count, a dose: a different value of the same size, not any two digits
        near = [x for x in range(max(1, v // 2), 2 * v + 2) if x != v and len(str(x)) == len(core)]
        if near:
            return text[: m.start()] + str(rng.choice(near)) + text[m.end():]
    cut = _decimal_split(core)
    int_part = core if cut is None else core[:cut]
    int_digits = [i for i, c in enumerate(int_part) if c.isdigit()]
    values = [int_part[i] for i in int_digits]
    # trailing zeros of the integer part stay (a round salary stays round)
    last_sig = max((k for k, v in enumerate(values) if v != "0"), default=-1)
    out = list(core)
    if last_sig < 0:  # "0" or "0.x"
        if cut is None:
            out[int_digits[-1]] = str(rng.randint(1, 9))
    else:
        first_sig = next(k for k, v in enumerate(values) if v != "0")
        for k in range(first_sig, last_sig + 1):
            pos = int_digits[k]
            # the first and last significant digits stay non-zero: "48,500" never becomes "86,000"
            out[pos] = _other_digit(values[k], rng, low=1 if k in (first_sig, last_sig) else 0)
    if cut is not None:
        frac = core[cut + 1:]
        if frac.strip("0"):
            for j, ch in enumerate(frac):
                last = j == len(frac) - 1 and ch != "0"  # "0.5%" never becomes "0.0%"
                out[cut + 1 + j] = _other_digit(ch, rng, low=1 if last else 0)
    return text[: m.start()] + "".join(out) + text[m.end():]


def _parse_date(text: str) -> list[tuple[str, str, int, int]] | None:
    """Tokens ``(role, text, start, end)`` with role in day/month/month_name/year/other, or None."""
    toks = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"\d+(?:st|nd|rd|th)?|[A-Za-z]+\.?|.", text)]
    has_name = any(t.rstrip(".").casefold() in _MONTH_INDEX and t[:1].isalpha() for t, _, _ in toks)
    nums = [(t, s, e) for t, s, e in toks if t[0].isdigit()]
    if not nums and not has_name:
        return None
    roles: list[tuple[str, str, int, int]] = []
    if has_name:
        for t, s, e in toks:
            if t[0].isdigit():
                digits = re.match(r"\d+", t).group(0)  # type: ignore[union-attr]
                roles.append(("year" if len(digits) == 4 else "day", t, s, e))
            elif t.rstrip(".").casefold() in _MONTH_INDEX:
                roles.append(("month_name", t, s, e))
            elif t.isalpha() and t.casefold() not in ("of", "the"):
                return None
            else:
                roles.append(("other", t, s, e))
        return roles
    if len(nums) not in (2, 3) or any(not t.isdigit() for t, _, _ in nums):
        return None
    if any(t.isalpha() for t, _, _ in toks):
        return None
    fields = [t for t, _, _ in nums]
    if len(fields[0]) == 4:
        order = ["year", "month", "day"][: len(fields)]
    elif len(fields) == 2:
        order = ["month", "year"] if len(fields[1]) == 4 else ["day", "month"]
    else:
        a, b = int(fields[0]), int(fields[1])
        order = ["month", "day", "year"] if b > 12 >= a else ["day", "month", "year"]
    limits = {"day": 31, "month": 12, "year": 9999}
    if any(int(f) < 1 or int(f) > limits[r] for f, r in zip(fields, order, strict=True) if r != "year"):
        return None  # "17-42-09", "1.68": not a date
    it = iter(order)
    for t, s, e in toks:
        roles.append((next(it), t, s, e) if t.isdigit() else ("other", t, s, e))
    return roles


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def date(text: str, ctx: Context, rng: random.Random) -> str | None:
    roles = _parse_date(text)
    if roles is None:
        return None
    numeric = {r for r, *_ in roles} >= {"day", "month"}
    ambiguous = numeric and all(int(t) <= 12 for r, t, _, _ in roles if r in ("day", "month"))
    out: list[str] = []
    for role, tok, _, _ in roles:
        digits = re.match(r"\d+", tok).group(0) if tok[0].isdigit() else ""  # type: ignore[union-attr]
        if role == "year":
            if len(digits) == 4:
                y = int(digits)
                delta = rng.choice([d for d in range(-12, 13) if d != 0])
                new = y + delta if y + delta <= 2025 or y > 2025 else y - abs(delta)
                out.append(str(new))
            else:
                out.append(f"{(int(digits) + rng.choice([d for d in range(-12, 13) if d != 0])) % 100:0{len(digits)}d}")
        elif role == "day":
            hi = 12 if ambiguous else 28
            new = rng.choice([d for d in range(1, hi + 1) if d != int(digits)])
            s = f"{new:0{len(digits)}d}" if len(digits) == 2 and digits.startswith("0") else str(new)
            if len(digits) == 2 and not digits.startswith("0") and new < 10 and numeric:
                s = f"{new:02d}"
            out.append(s + (_ordinal(new) if tok[len(digits):] else ""))
        elif role == "month":
            new = rng.choice([d for d in range(1, 13) if d != int(digits)])
            out.append(f"{new:0{len(digits)}d}" if len(digits) == 2 else str(new))
        elif role == "month_name":
            base = tok.rstrip(".")
            idx = _MONTH_INDEX[base.casefold()]
            new_name = _MONTHS_FULL[rng.choice([i for i in range(12) if i != idx])]
            if len(base) <= 4 and base.casefold() != _MONTHS_FULL[idx].casefold():
                new_name = new_name[:3]
            out.append(_like(new_name, base) + ("." if tok.endswith(".") else ""))
        else:
            out.append(tok)
    return "".join(out)


# ---------------------------------------------------------------------------------------- codes
def _case_like(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like.islower():
        return word.lower()
    if like[:1].isupper() and like[1:].islower():
        return word[:1].upper() + word[1:].lower()
    return "".join(w.upper() if c.isupper() else w.lower() for w, c in zip(word, like, strict=False))


def ident(text: str, ctx: Context, rng: random.Random) -> str | None:
    """Same character-class shape; a password's word becomes another word of its length."""
    if text in _BLOOD_GROUPS and re.search(r"\bblood\b", ctx.around, re.IGNORECASE):
        return rng.choice([g for g in _BLOOD_GROUPS if g != text])
    keep_prefix = 2 if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9 ]{8,}", text) else 0  # IBAN country letters
    wordy = bool(re.search(r"[a-z]", text))
    out: list[str] = list(text[:keep_prefix])
    i = keep_prefix
    while i < len(text):
        m = re.match(r"[A-Za-z]{3,}", text[i:]) if wordy else None
        if m:
            run = m.group(0)
            options = [w for w in P.pool("password_word") if len(w) == len(run)
                       and not _shares_trigram(w, run)]
            if options:
                out.append(_case_like(rng.choice(options), run))
            else:
                out.extend(_other_letter(c, rng) for c in run)
            i += len(run)
            continue
        c = text[i]
        out.append(_other_digit(c, rng) if c.isdigit() else _other_letter(c, rng) if c.isalpha() else c)
        i += 1
    return "".join(out)


_BLOOD_GROUPS = ("A", "B", "AB", "O")


def ip(text: str, ctx: Context, rng: random.Random) -> str | None:
    """Another IPv4 address: every octet different, each 1-254 (a private range stays private)."""
    octets = text.split(".")
    keep = 2 if octets[0] in ("10", "192", "172") else 0  # "192.168." / "10.x": the private prefix is no secret
    new = octets[:keep] + [str(rng.choice([v for v in range(1, 255) if str(v) != o])) for o in octets[keep:]]
    return ".".join(new)


def compass(text: str, ctx: Context, rng: random.Random) -> str | None:
    options = ["N", "S", "E", "W"] if len(text) == 1 else ["NE", "NW", "SE", "SW"]
    return rng.choice([o for o in options if o != text])


def roman(text: str, ctx: Context, rng: random.Random) -> str | None:
    numerals = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
    return rng.choice([n for n in numerals if n != text])


def _shares_trigram(a: str, b: str) -> bool:
    a, b = a.casefold(), b.casefold()
    return any(a[i:i + 3] in b for i in range(len(a) - 2))


def _runs(text: str, rng: random.Random, ctx: Context, word_pool: list[str], first_pool: list[str] | None = None
          ) -> str:
    """Every letter run and digit run of ``text`` replaced (letters by pool words, digits digit by digit)."""
    out: list[str] = []
    first = True
    for m in re.finditer(r"[^\W\d_]+|\d+|[\W_]+", text):
        tok = m.group(0)
        if tok.isdigit():
            out.append("".join(_other_digit(c, rng) for c in tok))
        elif tok.isalpha():
            renamed = ctx.renames.get(tok.casefold())
            if renamed and renamed.isalpha():
                out.append(_case_like(renamed, tok))
            elif len(tok) == 1:
                out.append(_other_letter(tok, rng))
            else:
                pool = first_pool if first and first_pool else word_pool
                options = [w for w in pool if w.isalpha() and w.casefold() != tok.casefold()
                           and not _shares_trigram(w, tok)]
                out.append(_case_like(rng.choice(options), tok) if options else
                           "".join(_other_letter(c, rng) for c in tok))
            first = False
        else:
            out.append(tok)
    return "".join(out)


def email(text: str, ctx: Context, rng: random.Random) -> str | None:
    local, domain = text.rsplit("@", 1)
    first_names = [n.lower() for n in _first_names(None, False)]
    surnames = [n.lower() for n in P.pool("surname") if n.isalpha()]
    new_local = _runs(local, rng, ctx, surnames, first_pool=first_names)
    labels = domain.split(".")
    tld_n = 2 if len(labels) >= 3 and labels[-2].casefold() in _SECOND_LEVEL and len(labels[-1]) == 2 else 1
    host = labels[: len(labels) - tld_n]
    if host:
        options = [p for p in P.pool("email_provider") if p != host[-1].casefold()]
        host[-1] = _case_like(rng.choice(options), host[-1])
    return new_local + "@" + ".".join(host + labels[len(labels) - tld_n:])


def url(text: str, ctx: Context, rng: random.Random) -> str | None:
    m = re.match(r"(?i)(https?://)?(www\.)?([^/?#]+)(.*)", text)
    if m is None:
        return None
    scheme, www, host, rest = m.group(1) or "", m.group(2) or "", m.group(3), m.group(4)
    labels = host.split(".")
    tld_n = 2 if len(labels) >= 3 and labels[-2].casefold() in _SECOND_LEVEL and len(labels[-1]) == 2 else 1
    head = ".".join(labels[: len(labels) - tld_n])
    words = [w for w in P.pool("web_word") + P.pool("email_provider")]
    new_host = _runs(head, rng, ctx, words) + "." + ".".join(labels[len(labels) - tld_n:]) if head else host
    return scheme + www + new_host + _runs(rest, rng, ctx, P.pool("web_word") + P.pool("noun"))


# ---------------------------------------------------------------------------------------- names
def _fictitious(text: str) -> bool:
    parts = set(VOCAB_POOLS.get("first_name", [])) | set(VOCAB_POOLS.get("surname", [])) | \
        set(VOCAB_POOLS.get("city", [])) | set(VOCAB_POOLS.get("country", []))
    return any(t.strip(".,'’s") in parts for t in text.split())


def _first_names(feminine: bool | None, fictitious: bool) -> list[str]:
    if fictitious:
        return list(VOCAB_POOLS.get("first_name", [])) or P.pool("first_name_neutral")
    if feminine is True:
        return P.pool("first_name_female")
    if feminine is False:
        return P.pool("first_name_male")
    return P.pool("first_name_female") + P.pool("first_name_male") + P.pool("first_name_neutral")


def _gender_of(first: str) -> bool | None:
    if first in P.pool("first_name_female"):
        return True
    if first in P.pool("first_name_male"):
        return False
    return None


_CATEGORY_NOUNS = {"genre": GENRES, "genres": GENRES}
#: titles that can stand for each other without changing the person's gender
_TITLE_REGISTERS = (("Dr", "Prof", "Professor", "Rev", "Mx"), ("Mrs", "Ms", "Miss", "Dame", "Lady"),
                    ("Mr", "Sir", "Lord"))


def name(text: str, ctx: Context, rng: random.Random) -> str | None:
    if " and " in text or " & " in text:  # "Josh Axe and Weston Price": two people
        sep = " and " if " and " in text else " & "
        parts = [name(part, ctx, rng) for part in text.split(sep)]
        return None if any(p is None for p in parts) else sep.join(p for p in parts if p is not None)
    if text.casefold().rstrip(".") in _TITLES:  # a title on its own ("Dr"): another of the same register
        base = text.rstrip(".")
        abbreviated = text.endswith(".") or ctx.answer[ctx.end: ctx.end + 1] == "."
        register = next((r for r in _TITLE_REGISTERS if base.casefold() in {x.casefold() for x in r}), None)
        options = [t for t in (register or P.pool("title_word")) if t.casefold() != base.casefold()
                   and (len(t) <= 4 or not abbreviated)]  # "Dr." -> "Prof.", never "Professor."
        value = _pick(options, rng, {normalize_for_match(text)})
        return None if value is None else value.rstrip(".") + ("." if text.endswith(".") else "")
    follower = ctx.after.split()[:1]
    if follower and follower[0].casefold().strip(".,;") in _CATEGORY_NOUNS:  # "the Contemporary Romance genre"
        pool = _CATEGORY_NOUNS[follower[0].casefold().strip(".,;")]
        return _pick([g.title() for g in pool], rng, _avoid_words(text) | {normalize_for_match(text)})
    tokens = text.split(" ")
    core = [i for i, t in enumerate(tokens) if t.casefold().rstrip(".") not in _TITLES
            and t.casefold() not in _PARTICLES and not re.fullmatch(r"[A-Z]\.?", t)]
    fict = _fictitious(text)
    if _pet_context(ctx) and (len(tokens) == 1 or re.search(r"\b(?:named|called)\s*$", ctx.answer[: ctx.start])):
        value = _pick(P.pool("pet_name"), rng, {normalize_for_match(text)})
        return value
    surnames = list(VOCAB_POOLS.get("surname", [])) if fict else P.pool("surname")
    first_tok = tokens[core[0]] if core else ""
    feminine = _gender_of(first_tok)
    if feminine is None:
        feminine = ctx.feminine()
    out = list(tokens)
    used: set[str] = _avoid_words(text)
    for rank, i in enumerate(core):
        tok = tokens[i]
        suffix = ""
        m = re.match(r"(.*?)(['’]s?)$", tok)
        if m and m.group(1):
            tok, suffix = m.group(1), m.group(2)
        single_surname = len(core) == 1 and (tok in surnames or i > 0 or _after_given_name(ctx)
                                             or bool(_SURNAME_ENDINGS.search(tok)))
        pool = surnames if (rank > 0 or single_surname) and (rank == len(core) - 1 or rank > 0) else \
            _first_names(feminine, fict)
        if rank > 0 and rank < len(core) - 1:
            pool = _first_names(feminine, fict)  # middle names are given names
        value = _pick([v for v in pool if not _shares_trigram(v, tok) or len(tok) < 3], rng, used)
        if value is None:
            return None
        used.add(normalize_for_match(value))
        ctx.renames[tok.casefold()] = value
        out[i] = value + suffix
    for i, t in enumerate(tokens):
        if re.fullmatch(r"[A-Z]\.?", t):
            out[i] = _other_letter(t[0], rng) + t[1:]
    return " ".join(out)


#: endings that make a lone name a surname ("Nakamura's novels" is rarer than "Ola's PIN", but these say so)
_SURNAME_ENDINGS = re.compile(r"(?:son|sen|sson|ez|ov|ova|ev|eva|ski|ska|wicz|ić|vic|wick|stein|berg|mann|ley|"
                              r"ton|ford|field|shaw|worth|escu|opoulos|ian|yan|oglu|kar|dottir|mura|moto|shita)$")


def _after_given_name(ctx: Context) -> bool:
    """A lone capitalised token right after another capitalised word ("Rajeev Majumdar") is a surname."""
    prev = ctx.answer[: ctx.start].split()[-1:] if ctx.start > 0 else []
    return bool(prev) and prev[0][:1].isupper() and prev[0].casefold().rstrip(".,") not in _TITLES


def _pet_context(ctx: Context) -> bool:
    return bool(dict(_CUES)["pet_name"].search(ctx.around)) and bool(
        re.search(r"\b(?:called|named|name)\b", ctx.around, re.IGNORECASE))


# ---------------------------------------------------------------------------------------- places
_REAL_CITIES = {c.split(",")[0] for c in CITIES} | set(P.pool("real_city"))


_INVENTED_COUNTRIES = set(VOCAB_POOLS.get("country", []))
_INVENTED_PLACES = _INVENTED_COUNTRIES | set(VOCAB_POOLS.get("city", []))
_REAL_COUNTRIES = [c for c in COUNTRIES if c not in _INVENTED_COUNTRIES]


def _place_word(tok: str, rng: random.Random, used: set[str], street: bool, fict: bool) -> str | None:
    if tok in COUNTRY_SET and tok not in _INVENTED_COUNTRIES:  # a real country: another real one
        return _pick([c for c in _REAL_COUNTRIES if " " not in c or " " in tok], rng, used)
    if fict:
        kind = "country" if tok in VOCAB_POOLS.get("country", []) else "city"
        return _pick(VOCAB_POOLS.get(kind, []) or P.pool("town"), rng, used)
    if street:
        return _pick(P.pool("street_base"), rng, used)
    if tok in _REAL_CITIES:
        return _pick(sorted(_REAL_CITIES), rng, used)
    return _pick([t for t in P.pool("town") if " " not in t], rng, used)


def place(text: str, ctx: Context, rng: random.Random) -> str | None:
    if ", " in text:
        parts = text.split(", ")
        out = []
        for part in parts:
            kind = refine_kind(part, "place")
            new = replace(part, kind if kind != "word" else "place", ctx, rng, set())
            if new is None:
                return None
            out.append(new)
        return ", ".join(out)
    fict = _fictitious(text)
    if text in COUNTRY_SET or text in _REAL_CITIES or text in _INVENTED_PLACES:
        return _place_word(text, rng, _avoid_words(text), False, fict)
    tokens = text.split(" ")
    lowered = [t.casefold().rstrip(".,") for t in tokens]
    street = any(t in _STREET_TYPES for t in lowered[1:])
    used = _avoid_words(text)
    if len(tokens) == 1 and lowered[0] in _STREET_TYPES:  # "Rue" alone: another street word
        return _pick([t for t in P.pool("street_type") if not t.endswith(".") and len(t) > 3], rng, used)
    glued = re.fullmatch(r"(.+?)(straße|strasse|weg|gasse|platz|allee|laan|gatan|vej|veien|utca)", text, re.IGNORECASE)
    if glued and len(tokens) == 1:  # "Lindenstraße": a new stem, the same street word
        stem = _pick([b for b in P.pool("street_base") if " " not in b], rng,
                     used | {normalize_for_match(glued.group(1))})
        return None if stem is None else stem + glued.group(2).lower()
    out = []
    changed = False
    for tok, low in zip(tokens, lowered, strict=True):
        if tok[:1].isdigit() or (any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)):
            new = ident(tok, ctx, rng) if any(c.isalpha() for c in tok) else number(tok, ctx, rng)
            out.append(new or tok)
            changed = changed or new is not None
            continue
        if (low in _STREET_TYPES and street) or low in _PLACE_GENERIC or low in ("of", "the", "and", "upon", "on"):
            out.append(tok)
            continue
        if re.fullmatch(r"[A-Z]{1,3}", tok):  # "NW", "DC": a code or a compass point, not a town
            out.append(compass(tok, ctx, rng) if tok in ("N", "S", "E", "W", "NE", "NW", "SE", "SW")
                       else ident(tok, ctx, rng))
            changed = True
            continue
        m = re.match(r"(.*?)(['’]s)$", tok)
        if m:  # "St Mary's"
            value = _pick(P.pool("first_name_female") + P.pool("first_name_male"), rng, used)
            if value is None:
                return None
            out.append(value + m.group(2))
        else:
            value = _place_word(tok, rng, used, street, fict)
            if value is None:
                return None
            out.append(_like(value, tok))
        used.add(normalize_for_match(out[-1]))
        changed = True
    return " ".join(out) if changed else None


def org(text: str, ctx: Context, rng: random.Random) -> str | None:
    tokens = text.split(" ")
    used = _avoid_words(text)
    distinctive = [i for i, t in enumerate(tokens) if t.casefold().rstrip(".,") not in _ORG_GENERIC | _PLACE_GENERIC]
    if not distinctive:  # "The Bakery": the whole name is generic words; take an invented employer
        return _pick(P.pool("employer"), rng, used)
    heads = [e.split()[0] for e in P.pool("employer")]
    out = list(tokens)
    for i in distinctive:
        tok = tokens[i]
        possessive = re.match(r"(.*?)(['’]s)$", tok)
        if possessive:  # "St Mary's Hospital" -> "St Helen's Hospital"
            value = _pick(P.pool("first_name_female") + P.pool("first_name_male"), rng, used)
            if value is None:
                return None
            out[i] = value + possessive.group(2)
            used.add(normalize_for_match(value))
            continue
        if tok in _REAL_CITIES or tok in COUNTRY_SET:
            value = _place_word(tok, rng, used, False, False)
        elif any(c.isdigit() for c in tok):
            value = ident(tok, ctx, rng)
        else:
            value = _pick(heads + P.pool("street_base"), rng, used)
        if value is None:
            return None
        used.add(normalize_for_match(value))
        out[i] = _like(value, tok)
    return " ".join(out)


def title(text: str, ctx: Context, rng: random.Random) -> str | None:
    options = list(VOCAB_POOLS.get("title", []))
    return _pick([o for o in options if not (_avoid_words(o) & _avoid_words(text) - {"the", "of", "a"})], rng,
                 {normalize_for_match(text)})


# ---------------------------------------------------------------------------------------- words
def _after_subject(ctx: Context) -> bool:
    prev = ctx.answer[: ctx.start].split()[-1:] if ctx.start > 0 else []
    return bool(prev) and (prev[0][:1].isupper() or prev[0].casefold() in {"he", "she", "it", "they", "who"})


def _category(text: str, ctx: Context) -> str | None:
    cat = P.category_of(text)
    if cat:
        return cat
    nxt = [w.casefold().strip(".,;:") for w in ctx.after.split()[:1]]
    if nxt and nxt[0][:1].isalpha() and ctx.after[:1].islower() and nxt[0] not in _CONJUNCTIONS \
            and not nxt[0].endswith(("ed", "ing", "ly")):
        return None  # a modifier ("mild asthma"): the noun it modifies decides, not the cue
    if re.match(r"(?:cancer|disease|tumou?r|failure|infection|transplant)\b", ctx.after, re.IGNORECASE):
        return "body_part"  # "breast cancer": the organ changes, the word after it stays
    if _MEDICAL_SUFFIX.search(text) or re.search(r"\b(?:disease|syndrome|disorder|cancer)$", text, re.IGNORECASE):
        return "diagnosis"
    if re.search(r"\b(?:as|is|was|became|an?)\s+(?:[a-z]+\s+)?$", ctx.before) and \
            text.casefold().endswith(_PROFESSION_ENDINGS):
        return "profession"
    # cues near the span first, the question's only when the sentence says nothing
    for where in (ctx.before, ctx.question):
        for cat, cue in _CUES:
            if not cue.search(where):
                continue
            if cat == "pet_name" and not text[:1].isupper():
                return "dog_breed" if re.search(r"\bdog|pupp", ctx.around, re.IGNORECASE) else "animal"
            if cat in ("diagnosis", "medication", "allergen") and text[:1].isupper() and " " not in text:
                continue
            return cat
    return None


_CONJUNCTIONS = {"and", "or", "but", "in", "at", "on", "for", "with", "from", "to", "of", "by", "since", "until",
                 "after", "before", "while", "because", "as", "than", "who", "which", "that"}
_PROFESSION_ENDINGS = ("ist", "yst", "ian", "er", "or", "ant", "ent", "eon", "ect", "ive")


def _is_plural(word: str) -> bool:
    """"novels", "stories" yes; "lens", "glass", "physics" no: the singular must be the commoner form."""
    from meow_engine.sensitive import zipf

    w = word.casefold()
    if not w.endswith("s") or w.endswith(("ss", "us", "is")) or len(w) < 4:
        return False
    singular = w[:-3] + "y" if w.endswith("ies") else w[:-1]
    return zipf(singular) >= zipf(w) + 0.3


def _inflect_like(new: str, old: str) -> str:
    if _is_plural(old) and not new.endswith("s") and " " not in new:
        if new.endswith("y") and new[-2:-1] not in tuple(_VOWELS):
            return new[:-1] + "ies"
        return new + ("es" if new.endswith(("ch", "sh", "x")) else "s")
    return new


def word(text: str, ctx: Context, rng: random.Random) -> str | None:
    avoid = _avoid_words(text) | {normalize_for_match(text)}
    sibling = P.groups().get(text.casefold())
    if sibling is None and _is_plural(text):
        singular = P.groups().get(text[:-1].casefold())
        if singular is not None:
            sibling = tuple(_inflect_like(s, text) for s in singular)
    if sibling is not None:
        value = _pick(list(sibling), rng, avoid)
        if value is not None:
            return _like(value, text)
    cat = _category(text, ctx)
    if cat == "profession":
        single = [p for p in PROFESSIONS if " " not in p and p.casefold() != text.casefold()]
        ending = [p for p in single if p.endswith(text.casefold()[-3:])]
        value = _pick(ending if len(ending) >= 3 else single, rng, avoid)
        if value is not None:
            return _like(value, text)
    elif cat is not None:
        options = P.pool(cat)
        if cat in ("dog_breed", "animal") and text[:1].islower():
            options = [o for o in options if o[:1].islower()]
        value = _pick(options, rng, avoid)
        if value is not None:
            return _like(_inflect_like(value, text) if cat in ("animal",) else value, text)
    low = text.casefold()
    for pool in (GENRES, PROFESSIONS):
        if low in {g.casefold() for g in pool}:
            return _like(rng.choice([g for g in pool if g.casefold() != low]), text)
    if "-" in text and all(part.isalpha() for part in text.split("-")):  # "multi-author", "well-versed"
        from meow_engine.sensitive import is_rare_word

        # the rare parts change (all of them: a kept rare part would give the word away); common
        # modifiers stay ("well-versed" -> "well-travelled"); with no rare part, the last one changes
        parts = text.split("-")
        rare = [i for i, part in enumerate(parts) if len(part) > 2 and is_rare_word(part)] or [len(parts) - 1]
        for i in rare:
            new = word(parts[i], ctx, rng)
            if new is None:
                return None
            parts[i] = new
        return "-".join(parts)
    if " " in text.strip():  # an unknown phrase: every word in turn
        parts = [word(w, ctx, rng) if len(w) > 2 and w.isalpha() else w for w in text.split(" ")]
        return None if any(p is None for p in parts) else " ".join(p for p in parts if p is not None)
    if text[:1].isupper():
        if _pet_context(ctx):
            return _pick(P.pool("pet_name"), rng, avoid)
        return _pick([t for t in P.pool("town") if " " not in t] + P.pool("surname"), rng, avoid)
    if low.endswith(("ist", "ian")) and len(low) > 5:
        prof = [p for p in PROFESSIONS if " " not in p and p.endswith(low[-3:]) and p != low]
        if prof:
            return _like(rng.choice(prof), text)
    from meow_engine.sensitive import zipf

    z = zipf(low)
    suffix = next((sfx for sfx in _DERIVATIONAL if low.endswith(sfx) and len(low) > len(sfx) + 2), None)
    same_end = P.same_suffix_words(low, min_suffix=len(suffix)) if suffix else ()
    options = [w for w in same_end if abs(zipf(w) - z) <= 0.8 and not _shares_trigram(w, low[:4])]
    options = options[:60]
    if len(options) < 6 and _after_subject(ctx) and low.endswith("s") and not low.endswith("ss"):
        options += P.pool("verb_s")  # "Arjun earns", "She lectures": a verb after its subject
    if len(options) < 6:  # too few same-ending words: add everyday words of the same part of speech
        options += (P.pool("verb_ing") if low.endswith("ing") else P.pool("verb_ed") if low.endswith("ed")
                    else P.pool("adjective") if low.endswith(("ous", "ful", "ive", "al", "ic", "ish", "less", "able"))
                    else [_inflect_like(n, text) for n in P.pool("noun")])
    value = _pick(options, rng, avoid)
    return _like(value, text) if value else None


def composite(text: str, ctx: Context, rng: random.Random) -> str | None:
    """A span no single generator fits ("12 Baker Street, London NW1 6XE"): each part by its own shape."""
    if ", " in text:
        return place(text, ctx, rng)
    out = []
    for m in re.finditer(r"\S+|\s+", text):
        tok = m.group(0)
        if tok.isspace():
            out.append(tok)
            continue
        kind = refine_kind(tok, "word")
        new = replace(tok, kind, ctx, rng, set()) if len(tok) > 2 or any(c.isdigit() for c in tok) else tok
        out.append(new if new is not None else tok)
    return "".join(out)


_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?(\s?[ap]\.?m\.?)?", re.IGNORECASE)


def clock(text: str, ctx: Context, rng: random.Random) -> str | None:
    """Another valid time of day in the same format: hour and minutes both change, padding, seconds and
    am/pm stay ("14:30" -> "09:05", "3 p.m." -> "7 p.m.")."""
    m = _CLOCK.fullmatch(text.strip())
    if m is None:
        return None
    hour, minute, second, suffix = m.groups()
    top = 12 if suffix else 23
    low = 1 if suffix else 0
    new_hour = rng.choice([h for h in range(low, top + 1) if h != int(hour)])
    out = f"{new_hour:0{len(hour)}d}" if len(hour) == 2 else str(new_hour)
    if minute is not None:
        out += f":{rng.choice([x for x in range(0, 60, 5) if x != int(minute)]):02d}"
    if second is not None:
        out += f":{rng.choice([x for x in range(60) if x != int(second)]):02d}"
    return out + (suffix or "")


_GENERATORS: dict[str, Callable[[str, Context, random.Random], str | None]] = {
    "time": clock,
    "roman": roman, "ip": ip, "compass": compass, "email": email, "url": url, "phone": phone, "date": date,
    "number": number, "money": number,
    "id": ident, "name": name, "place": place, "org": org, "title": title, "word": word, "given": composite,
}


def replace(text: str, kind: str, ctx: Context, rng: random.Random, avoid: set[str]) -> str | None:
    """A same-kind, same-shape replacement of ``text`` (see the module docstring), or None.

    ``avoid`` holds normalised values that must not be returned (other spans' originals, values
    earlier candidates already used). The result never contains ``text`` or one of its cores.
    """
    gen = _GENERATORS.get(refine_kind(text, kind), word)
    for _ in range(TRIES):
        value = gen(text, ctx, rng)
        if value is None:
            if gen is not composite and kind != "given":
                value = composite(text, ctx, rng) if (" " in text or any(c.isdigit() for c in text)) else None
            if value is None:
                return None
        key = normalize_for_match(value)
        if not key or key in avoid or contains_span(value, text) or key == normalize_for_match(text) \
                or same_stem(value, text):
            continue
        return value
    return None


_GENERIC_WORDS = _PLACE_GENERIC | _STREET_TYPES | _ORG_GENERIC | _TITLES | _PARTICLES | {
    "http", "https", "www", "html", "mailto",
    # a currency word stays with its amount ("2,340 euros" -> "4,160 euros"): the number is the secret
    "euro", "euros", "dollar", "dollars", "pound", "pounds", "pence", "cents", "rupee", "rupees", "francs",
    "kronor", "kroner", "zloty", "thousand", "million", "billion"}
#: endings that say what kind of word a word is ("-osis" a condition, "-ist" a person, "-ness" a quality):
#: an unknown word is swapped for a frequent word with the same ending, longest ending first
_DERIVATIONAL = ("ologist", "ology", "osis", "itis", "aemia", "emia", "ectomy", "pathy", "algia", "ism", "ist",
                 "ician", "ian", "ation", "ition", "tion", "sion", "ment", "ness", "ity", "ance", "ence", "ability",
                 "able", "ible", "ous", "ive", "ful", "less", "ical", "ic", "al", "ings", "ing", "ed", "ly", "ure",
                 "age", "ery", "ship", "hood", "dom", "ize", "ise", "ify", "ate", "ers", "er", "ors", "or")


def same_stem(value: str, original: str) -> bool:
    """A distinctive word of ``original`` survives nearly whole ("Pickles" -> "Pickle", "Okafor" -> "Okafors")."""
    from meow_engine.sensitive import is_rare_word

    # only rare words can give a secret away ("well" of "well-versed" may stay)
    mine = [w for w in re.findall(r"[^\W\d_]{4,}", original.casefold()) if w not in _GENERIC_WORDS
            and is_rare_word(w)]
    new = re.findall(r"[^\W\d_]{4,}", value.casefold())
    for a in mine:
        n = min(5, len(a) - 1)
        if any(b[:n] == a[:n] and (len(b) < len(a) + 3) for b in new):
            return True
        if any(len(b) >= 5 and (b in a or a in b) for b in new):  # "disciplinary" in "interdisciplinary"
            return True
    return False
