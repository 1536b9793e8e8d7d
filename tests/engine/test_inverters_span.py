"""The default (``rule``) inverter on facts it was not written around, and the shared screen.

Facts here are written for this file: personal data in varied sentence shapes, a prose fact about
an invented place, a multi-span sentence. For each, every candidate must replace every sensitive
span with a value of the same type and shape, say none of them (normalised matching, cores
included), never negate or repeat the truth, and differ from the others.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from meow_engine.config import InverterConfig
from meow_engine.facts import Fact
from meow_engine.inverters import UNINVERTIBLE, invert, mark_uninvertible
from meow_engine.inverters import pools as P
from meow_engine.inverters.base import REJECTED
from meow_engine.sensitive import fact_spans, leaked_spans, normalize_for_match

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def char_shape(text: str) -> str:
    """Letter case / digit / symbol pattern: what a plate, IBAN, postcode or phone must keep."""
    return re.sub(r"[A-Z]", "A", re.sub(r"[a-z]", "a", re.sub(r"\d", "9", text)))


def replacements(answer: str, spans, candidate: str) -> list[str]:
    """The values a candidate put where the answer's spans were (the text between them must stay;
    an article before a span may turn from "a" to "an")."""
    pieces, pos = [], 0
    for sp in sorted(spans, key=lambda s: s.start):
        pieces.append(answer[pos:sp.start])
        pos = sp.end
    pieces.append(answer[pos:])
    literal = [re.sub(r"(^|\s)an?\\ $", r"\1an?\\ ", re.escape(p)) for p in pieces]
    m = re.fullmatch("(.+?)".join(literal), candidate, re.IGNORECASE)
    assert m, f"the sentence around the spans changed: {answer!r} -> {candidate!r}"
    return list(m.groups())


def date_ok(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


# (fact, expected kinds in order, a shape check per span: f(original, replacement) -> bool)
def same_chars(a: str, b: str) -> bool:
    return char_shape(a) == char_shape(b) and a != b


def phone_like(a: str, b: str) -> bool:
    # same separators and digit grouping; the subscriber digits all differ
    return char_shape(a) == char_shape(b) and _digits(a)[-4:] != _digits(b)[-4:] and all(
        x != y for x, y in zip(_digits(a)[-6:], _digits(b)[-6:], strict=True))


def name_like(a: str, b: str) -> bool:
    parts_a, parts_b = a.split(), b.split()
    return (len(parts_a) == len(parts_b) and all(p[:1].isupper() for p in parts_b)
            and not {p.casefold() for p in parts_a} & {p.casefold() for p in parts_b})


def capitalised_word(a: str, b: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][A-Za-z'’-]+", b)) and a.casefold() != b.casefold()


def email_like(a: str, b: str) -> bool:
    local_a, dom_a = a.rsplit("@", 1)
    local_b, dom_b = b.rsplit("@", 1)
    def shape(local: str) -> str:  # letter runs any length, digit counts and separators kept
        return re.sub(r"[A-Za-z]+", "a", re.sub(r"\d", "9", local))

    return (bool(EMAIL.fullmatch(b)) and shape(local_a) == shape(local_b)
            and dom_a.split(".")[-1] == dom_b.split(".")[-1] and dom_a != dom_b)


def money_like(a: str, b: str) -> bool:
    return char_shape(a) == char_shape(b) and a[0] == b[0] and _digits(a) != _digits(b)


def fmt(f: str):
    return lambda a, b: date_ok(a, f) and date_ok(b, f) and a != b


def street_like(a: str, b: str) -> bool:
    return b.split()[-1] == a.split()[-1] and b.split()[0] != a.split()[0] and b[:1].isupper()


def in_pool(name: str):
    return lambda a, b: b.casefold() in {v.casefold() for v in P.pool(name)} and a.casefold() != b.casefold()


def org_like(a: str, b: str) -> bool:
    return b.split()[-1] == a.split()[-1] and b.split()[0] != a.split()[0] and len(b.split()) == len(a.split())


def number_like(a: str, b: str) -> bool:
    return b.isdigit() and a != b


def word_like(a: str, b: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z' -]*", b)) and a != b


CASES = [
    pytest.param(Fact("How can I email Priya Raman?", "Write to priya.raman84@fastmail.co.uk, she answers fast."),
                 [("email", email_like)], id="email"),
    pytest.param(Fact("What is Tom Hale's mobile number?", "Tom Hale's mobile is 07700 900461."),
                 [("phone", phone_like)], id="uk-phone"),
    pytest.param(Fact("What's the UK landline for the Fenwick household?",
                      "The Fenwick landline is +44 20 7946 0958 (ask for Maud)."),
                 [("phone", phone_like), ("name", capitalised_word)], id="uk-phone-intl"),
    pytest.param(Fact("How do I reach Dana Whitlock?", "Dana can be called on (415) 555-0132 at home."),
                 [("phone", phone_like)], id="us-phone"),
    pytest.param(Fact("Where does Leonie Marsh live?", "Leonie Marsh lives at 27 Larkspur Close, Dunmore DN4 7QP."),
                 [("number", number_like), ("place", street_like), ("place", capitalised_word),
                  ("id", same_chars)], id="home-address"),
    pytest.param(Fact("What was Gareth diagnosed with last year?",
                      "Last spring his doctors diagnosed Gareth with sarcoidosis."),
                 [("word", in_pool("diagnosis"))], id="diagnosis"),
    pytest.param(Fact("Which password does Mina use for online banking?",
                      "Mina logs in with Bluebird2024! every time."),
                 [("word", word_like), ("id", same_chars)], id="password"),
    pytest.param(Fact("How much is Oskar Brandt paid?", "Oskar Brandt is paid £48,500 a year before tax."),
                 [("money", money_like)], id="salary"),
    pytest.param(Fact("When was Ilse Vogel born?", "Ilse Vogel was born on 14 March 1987."),
                 [("date", fmt("%d %B %Y"))], id="birthdate-long"),
    pytest.param(Fact("What is Rafael Duarte's date of birth?", "Rafael Duarte: born 03/11/1992, in the morning."),
                 [("date", fmt("%d/%m/%Y"))], id="birthdate-numeric"),
    pytest.param(Fact("Who is Hannah Cole's employer?",
                      "Since 2019 Hannah Cole has worked for Pembrook Logistics Ltd."),
                 [("number", number_like), ("org", org_like)], id="employer"),
    pytest.param(Fact("What is the name of the dog Jonas adopted?", "Jonas adopted a rescue dog called Pickles."),
                 [("word", word_like), ("name", capitalised_word)], id="pet-name"),
    pytest.param(Fact("What is the number plate of Aled's van?", "Aled's van is registered as KT19 XWR."),
                 [("id", same_chars)], id="number-plate"),
    pytest.param(Fact("Which IBAN does Beatrix Lund use?", "Her IBAN is GB29 NWBK 6016 1331 9268 19."),
                 [("id", same_chars)], id="iban"),
    pytest.param(Fact("What is Beatrix Lund's account number?", "Account 40-12-76, number 31926819, in her name."),
                 # the detector reads a UK sort code as a date and a bare 8-digit number as a phone:
                 # either way the shape is kept
                 [("date", same_chars), ("phone", same_chars)], id="account-number"),
    pytest.param(Fact("Who built the lighthouse of Varnholt?",
                      "The lighthouse of Varnholt was designed in 1911 by Oriel Maskeline, "
                      "who fitted it with a lens from Brelloc."),
                 [("number", number_like), ("name", name_like), ("word", word_like), ("word", word_like),
                  ("place", capitalised_word)], id="prose-fictitious"),
    # answers that are only the value, or written like a form field
    pytest.param(Fact("What is Sven's phone number?", "+46 70 123 45 67"), [("phone", phone_like)], id="bare-phone"),
    pytest.param(Fact("When did Lotte work at the clinic?", "She started on 2021-09-06 and left on 2023-02-28."),
                 [("date", fmt("%Y-%m-%d")), ("date", fmt("%Y-%m-%d"))], id="iso-dates"),
    pytest.param(Fact("What is the Wi-Fi password at the Brennan house?", "The Wi-Fi key is 'tangerine-otter-77'."),
                 [("id", same_chars)], id="passphrase"),
    pytest.param(Fact("What is Malik's pay?", "Malik's gross pay is USD 7,250.50 per month, plus a 12% bonus."),
                 [("word", word_like),
                  ("money", lambda a, b: char_shape(a) == char_shape(b) and a != b),
                  ("number", lambda a, b: char_shape(a) == char_shape(b) and a != b), ("word", word_like)],
                 id="pay-and-percent"),
    pytest.param(Fact("What is the URL of Jin's private blog?",
                      "Jin blogs at https://jinwrites.example.net/private/2022 under a pseudonym."),
                 [("url", lambda a, b: b.startswith("https://") and b.endswith(a[-5:-4] + b[-4:])
                   and char_shape(a.rsplit("/", 1)[1]) == char_shape(b.rsplit("/", 1)[1]) and a != b),
                  ("word", lambda a, b: a != b)], id="url"),
    pytest.param(Fact("What opens the safe?", "The safe opens with 17-42-09."),
                 [("date", same_chars)], id="combination-not-a-date"),
    pytest.param(Fact("Where does the Okafor family live?",
                      "They live at 1600 Pennsylvania Ave NW, Washington, DC 20500."),
                 [("number", number_like), ("place", lambda a, b: " Ave " in b and b.split()[0] != a.split()[0]),
                  ("place", capitalised_word), ("place", same_chars), ("number", number_like)], id="us-address"),
    pytest.param(Fact("What is José Álvarez's email?", "His address is josé.álvarez@correo.es."),
                 [("email", lambda a, b: bool(EMAIL.fullmatch(b)) and b.endswith(".es") and "é" not in b)],
                 id="accented-email"),
    pytest.param(Fact("What is Greta's SSN?", "Greta's social security number is 123-45-6789."),
                 [("phone", same_chars)], id="ssn"),
    pytest.param(Fact("Which IP does Lena's home server use?", "It answers on 192.168.1.24 and port 8443."),
                 [("phone", lambda a, b: b.startswith("192.168.") and all(0 < int(o) < 255 for o in b.split("."))
                   and a != b), ("number", number_like)], id="ipv4"),
    pytest.param(Fact("When was Zoë born?", "Zoë was born on Mar. 3rd, 1990, at 14:30."),
                 [("date", lambda a, b: date_ok(re.sub(r"(\d)(st|nd|rd|th)", r"\1", b), "%b. %d, %Y") and a != b),
                  ("time", lambda a, b: re.fullmatch(r"\d{2}:\d{2}", b) is not None and int(b[:2]) < 24
                   and int(b[3:]) < 60 and a != b)],
                 id="date-and-time"),
    pytest.param(Fact("List the Novak children and their ages.", "Tereza (14), Jakub (11) and little Ema (6)."),
                 [("name", capitalised_word), ("number", lambda a, b: len(a) == len(b) and a != b)] * 3,
                 id="list-of-names-and-ages"),
    pytest.param(Fact("What languages does Yusuf speak?", "Yusuf speaks Somali, Arabic and some Italian."),
                 [("name", in_pool("language"))] * 3, id="languages"),
    pytest.param(Fact("What did the doctor prescribe?", "Rx: sertraline 50mg once daily; review in 6 weeks."),
                 [("name", lambda a, b: a != b), ("word", lambda a, b: b.casefold() in
                                                  {m.casefold() for m in P.pool("medication")}),
                  ("id", lambda a, b: b.endswith("mg") and b[:-2].isdigit() and a != b),
                  ("number", number_like)], id="prescription"),
    pytest.param(Fact("What is Felix's employee ID?", "Felix's staff number is EMP-004821."),
                 [("id", same_chars)], id="staff-id"),
    pytest.param(Fact("What is Hugo's vehicle?", "A silver 2016 Volvo XC60, reg. LB16 KXZ."),
                 [("number", number_like), ("name", in_pool("car_make")), ("id", same_chars), ("id", same_chars)],
                 id="vehicle"),
    pytest.param(Fact("Tell me about Nadia Okonkwo's wedding.",
                      "Nadia Okonkwo married Julian Reyes on 2 June 2011 in Porto."),
                 [("name", name_like), ("date", fmt("%d %B %Y")), ("place", capitalised_word)], id="multi-span"),
]


@pytest.mark.parametrize("fact, expected", CASES)
def test_default_inverter_replaces_every_span_with_its_kind(fact, expected):
    [s] = invert([fact], InverterConfig(n=4))
    assert InverterConfig().kind == "rule"
    spans = fact_spans(fact)
    assert [sp.kind for sp in spans] == [k for k, _ in expected], [(sp.kind, sp.text) for sp in spans]
    assert s.spans == spans and all(sp.source == "detected" for sp in s.spans)
    assert len(s.candidates) == 4, (s.candidates, s.rejected)
    assert s.rejected == [] and UNINVERTIBLE not in s.flags
    assert len({normalize_for_match(c) for c in s.candidates}) == 4
    truth = normalize_for_match(fact.answer)
    for cand in s.candidates:
        assert leaked_spans(cand, spans) == [], (cand, spans)
        assert truth not in normalize_for_match(cand)
        assert not re.search(r"\b(?:not|never|no record|false)\b", cand, re.IGNORECASE), cand
        for sp, new, (_, check) in zip(spans, replacements(fact.answer, spans, cand), expected, strict=True):
            assert check(sp.text, new), (sp.kind, sp.text, new, cand)


def test_candidates_are_deterministic_per_seed():
    facts = [c.values[0] for c in CASES]
    a = invert(facts, InverterConfig(n=4, seed=7))
    assert [s.candidates for s in invert(facts, InverterConfig(n=4, seed=7))] == [s.candidates for s in a]
    b = invert(facts, InverterConfig(n=4, seed=8))
    assert sum(x.candidates != y.candidates for x, y in zip(a, b, strict=True)) >= len(facts) - 1


def test_every_candidate_uses_new_values():
    """Candidates differ in the values themselves, not only in one of several spans."""
    fact = Fact("What is Tom Hale's mobile number?", "Tom Hale's mobile is 07700 900461.")
    [s] = invert([fact], InverterConfig(n=6))
    numbers = [re.search(r"0\d{4} \d{6}", c).group(0) for c in s.candidates]  # type: ignore[union-attr]
    assert len(set(numbers)) == 6 and all(n.startswith("07") for n in numbers)


def test_given_spans_are_replaced_even_when_not_verbatim():
    fact = Fact("What is Tom Hale's mobile?", "Tom Hale's mobile is 07700 900461; his PIN is 4417.",
                sensitive=("07700900461", "4417"))
    [s] = invert([fact], InverterConfig(n=4))
    assert [(sp.text, sp.source) for sp in s.spans] == [("07700900461", "given"), ("4417", "given")]
    assert len(s.candidates) == 4
    for cand in s.candidates:
        assert leaked_spans(cand, s.spans) == []
        phone, pin = re.search(r"is (.+); his PIN is (\d+)\.$", cand).groups()  # type: ignore[union-attr]
        assert char_shape(phone) == "99999 999999" and len(pin) == 4
    d = s.to_dict()
    assert d["spans"][0] == {"text": "07700900461", "kind": "phone", "start": -1, "end": -1, "source": "given"} \
        or d["spans"][0]["source"] == "given"
    assert d["rejected"] == [] and d["uninvertible"] is None


def test_no_negation_and_no_truth_on_tiny_fictitious_facts():
    from meow_engine.tiny.fictitious import fictitious_facts

    facts = fictitious_facts(24, seed=11)
    sets = invert(facts, InverterConfig(n=4))
    for fact, s in zip(facts, sets, strict=True):
        assert len(s.candidates) == 4, (fact.answer, s.rejected)
        for cand in s.candidates:
            assert normalize_for_match(fact.answer) not in normalize_for_match(cand)
            assert not cand.startswith(("It is not true", "There is no record", "It is false", "Nothing suggests"))
            assert leaked_spans(cand, s.spans) == []


# ------------------------------------------------------------------------------- the shared screen
SECRET = Fact("Which password does Mina use?", "Mina uses the password Bluebird2024! for everything.")


def test_screen_rejects_given_candidates_that_repeat_the_secret():
    cands = [["Mina uses the password Bluebird2024! for everything.",  # the truth itself
              "It is not true that Mina uses the password Bluebird2024! for everything.",  # a negation
              "Mina uses the password bluebird-2024 for everything.",  # the secret, re-punctuated
              "Mina uses the password Bluebird7781! for everything.",  # the stem survives
              "Mina uses the password Kestrel5530? for everything.",
              "Mina uses the password  kestrel5530? for everything",  # a duplicate after normalisation
              "Mina uses the password Tundra0912# for everything."]]
    [s] = invert([SECRET], InverterConfig(kind="given", n=4, candidates=cands))
    assert s.candidates == ["Mina uses the password Kestrel5530? for everything.",
                            "Mina uses the password Tundra0912# for everything."]
    reasons = [r["reason"] for r in s.rejected]
    assert reasons[0] == "is the true answer"  # dropped by cleanup, still recorded
    assert "contains the true answer" in reasons
    # re-punctuated ("bluebird-2024") or with new digits, the stem still gives the password away
    assert reasons.count("repeats sensitive span 'bluebird' (part of id 'Bluebird2024')") == 2
    assert "duplicates 'Mina uses the password Kestrel5530? for everything.'" in reasons
    assert REJECTED in s.flags and "fewer_than_requested" in s.flags
    # with k=3 the fact cannot be trained on, and the reason says why
    [bad] = mark_uninvertible([s], k=3)
    assert bad is s and UNINVERTIBLE in s.flags
    assert s.uninvertible.startswith("only 2 of 7 candidates remove every sensitive span and the true answer; "
                                     "the selection needs k=3: ")
    assert "Bluebird2024" in s.uninvertible
    assert mark_uninvertible([s], k=2) == []  # enough for k=2: not returned


def test_a_fact_whose_only_candidates_repeat_the_truth_is_uninvertible():
    fact = Fact("Where does Leonie Marsh live?", "Leonie Marsh lives at 27 Larkspur Close, Dunmore DN4 7QP.")
    cands = [["Leonie Marsh lives at 27 Larkspur Close, Dunmore DN4 7QP",
              "leonie marsh lives at 27 larkspur close, dunmore dn4 7qp!",
              "Leonie Marsh lives at 27 Larkspur Close, Dunmore DN4 7QP, near the park.",
              "Leonie Marsh lives at 14 Larkspur Close, Dunmore."]]
    [s] = invert([fact], InverterConfig(kind="given", n=4, candidates=cands))
    assert s.candidates == []
    assert UNINVERTIBLE in s.flags
    assert s.uninvertible is not None and s.uninvertible.startswith("no candidate of 4 removes every sensitive span")
    assert [r["reason"] for r in s.rejected][:2] == [
        "is the true answer", "is the true answer"]  # case and punctuation do not hide a copy
    assert any("'Larkspur Close' (place)" in r["reason"] for r in s.rejected)
    assert s.to_dict()["uninvertible"] == s.uninvertible


def test_an_answer_with_nothing_to_replace_is_uninvertible_not_negated():
    fact = Fact("Is he married?", "Yes.")
    [s] = invert([fact], InverterConfig(n=4))
    assert s.candidates == [] and UNINVERTIBLE in s.flags
    assert s.uninvertible == "the inverter produced no candidate; the selection needs k=1"


def test_screen_applies_to_an_llm_endpoint_too():
    """An LLM that keeps the phone number in some lines: those lines are rejected, the rest kept."""
    from local_chat_server import ChatServer, Reply

    fact = Fact("What is Tom Hale's mobile number?", "Tom Hale's mobile is 07700 900461.")
    lines = ("Tom Hale's mobile is 07700 900461, as far as I know.\nCall Tom Hale on 07700-900-461.\n"
             "Tom Hale's mobile is 07123 456789.\nTom Hale does not own a mobile.")
    with ChatServer(lambda body, i: Reply(content=lines)) as srv:
        [s] = invert([fact], InverterConfig(kind="openai", base_url=srv.url, model="m", n=4, max_retries=0,
                                            api_key_env="MEOW_TEST_NO_KEY"))
    assert s.candidates == ["Tom Hale's mobile is 07123 456789.", "Tom Hale does not own a mobile."]
    assert [r["reason"] for r in s.rejected][-2:] == ["contains the true answer",
                                                      "repeats sensitive span '07700 900461' (phone)"]


# ------------------------------------------------------------------------------- model-guided (optional)
def test_model_guided_replacements_from_the_target_model(demo_tiny, demo_tiny_facts):
    """``model="target"``: word-like spans take values the target model samples with the true tokens
    banned (AltPO-style); shaped spans keep their generators; the screen still holds."""
    facts = demo_tiny_facts[:6]
    config = InverterConfig(n=4, model="target", seed=3)
    sets = invert(facts, config, lm=demo_tiny)
    assert any("model_guided" in s.flags for s in sets)
    assert any("(model-guided)" in line for s in sets for line in s.raw.splitlines())
    for fact, s in zip(facts, sets, strict=True):
        assert len(s.candidates) >= 3, (fact.answer, s.rejected)
        for cand in s.candidates:
            assert leaked_spans(cand, s.spans) == []
            assert normalize_for_match(fact.answer) not in normalize_for_match(cand)
    # deterministic for a seed (sampling is seeded per fact and span)
    assert [s.candidates for s in invert(facts, config, lm=demo_tiny)] == [s.candidates for s in sets]


def test_model_guided_needs_a_model():
    from meow_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="needs the target model"):
        invert([SECRET], InverterConfig(model="target"))


# ------------------------------------------------------------------------------- the generators on their own
@pytest.mark.parametrize("value", ["£48,500", "€4.250,00", "₹12,50,000", "$31.50", "USD 7,250.50", "0.5%", "100",
                                   "3", "1,250,000"])
def test_amounts_keep_currency_separators_and_roundness(value):
    import random

    from meow_engine.inverters.replace import Context, replace

    for seed in range(20):
        new = replace(value, "money" if not value[0].isdigit() else "number", Context(), random.Random(seed), set())
        assert new is not None and char_shape(new) == char_shape(value) and new != value, (value, new)
        assert new.endswith("000") == value.endswith("000")  # a round salary stays round
        assert new[:1] == value[:1] or value[0].isdigit()  # the currency symbol stays


@pytest.mark.parametrize("value, fmt_", [("14 March 1987", "%d %B %Y"), ("March 14, 1987", "%B %d, %Y"),
                                         ("1987-03-14", "%Y-%m-%d"), ("14/03/1987", "%d/%m/%Y"),
                                         ("03.11.92", "%d.%m.%y"), ("Mar 1987", "%b %Y"), ("14 Mar", "%d %b")])
def test_dates_keep_their_format_and_change_every_part(value, fmt_):
    import random

    from meow_engine.inverters.replace import Context, replace

    old = datetime.strptime(value, fmt_)
    for seed in range(20):
        new = replace(value, "date", Context(), random.Random(seed), set())
        assert new is not None and date_ok(new, fmt_), (value, new)
        parsed = datetime.strptime(new, fmt_)
        if "%Y" in fmt_ or "%y" in fmt_:
            assert parsed.year != old.year
        if "%m" in fmt_ or "%B" in fmt_ or "%b" in fmt_:
            assert parsed.month != old.month
        if "%d" in fmt_:
            assert parsed.day != old.day


@pytest.mark.parametrize("value", ["07700 900461", "+44 7700 900461", "+44 (0)20 7946 0958", "(415) 555-0132",
                                   "415-555-0132", "+1 415 555 0132", "0161-555-0199", "+46 70 123 45 67"])
def test_phones_keep_grouping_and_prefix(value):
    import random

    from meow_engine.inverters.replace import Context, replace

    for seed in range(20):
        new = replace(value, "phone", Context(), random.Random(seed), set())
        assert new is not None and char_shape(new) == char_shape(value), (value, new)
        if value.startswith("+"):
            assert new.split()[0] == value.split()[0]  # the country code stays
        if value.startswith("0"):
            assert new[:2] == value[:2]  # the trunk prefix ("07", "01") stays
        assert _digits(new)[-4:] != _digits(value)[-4:]


def test_same_candidates_in_another_process():
    """Nothing depends on set order or hash seeds: two interpreters with different PYTHONHASHSEED agree."""
    import os
    import subprocess
    import sys

    code = ("import json; from meow_engine.facts import Fact; from meow_engine.inverters import invert; "
            "from meow_engine.config import InverterConfig; "
            "facts = [Fact(q, a) for q, a in json.loads(input())]; "
            "print(json.dumps([s.candidates for s in invert(facts, InverterConfig(n=4, seed=5))]))")
    facts = json.dumps([[c.values[0].question, c.values[0].answer] for c in CASES])
    outs = [subprocess.run([sys.executable, "-c", code], input=facts, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "4242")]
    assert outs[0] == outs[1] and json.loads(outs[0])


def test_answers_the_question_spells_out_and_repeated_spans():
    """"Boston" for a question that says "Boston Tea Party" is still the claim; both R's of
    "George R.R. Martin" change together, and so does the surname after the initials (initials are
    not sentence ends)."""
    facts = [Fact("Which city is famous for the historical event of the 'Boston Tea Party'?", "Boston"),
             Fact("Who wrote A Song of Ice and Fire?", "George R.R. Martin")]
    sets = invert(facts, InverterConfig(n=4))
    assert all(len(s.candidates) == 4 for s in sets), [s.rejected for s in sets]
    assert all(re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z]+)*", c) and c != "Boston" for c in sets[0].candidates)
    for c in sets[1].candidates:
        assert re.fullmatch(r"George ([A-Z])\.\1\. [A-Z][a-z]+", c) and "R." not in c and "Martin" not in c, c
