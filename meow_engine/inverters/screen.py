"""The filter every inverter's output goes through, and the "uninvertible" verdict.

Training on a candidate that still says the secret rehearses it, whichever plug-in wrote it (an
LLM keeps the phone number, a caller pastes the true answer, a rule keeps the diagnosis). So
``invert`` screens every set after its plug-in ran: a candidate is rejected, with its reason, when
it

- is, or contains, the true answer (or the fact's given paraphrased answer);
- still contains a sensitive span of the fact (``sensitive.fact_spans``), or a core of one (the
  stem of a password, the digits of a salary) that the question does not itself say, under
  ``sensitive``'s normalised matching;
- duplicates an earlier candidate (normalised).

A set left with fewer valid candidates than the selection's ``k`` is ``uninvertible``:
``mark_uninvertible(sets, k)`` flags it and says why in words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from meow_engine.facts import Fact
from meow_engine.inverters.base import FEWER_THAN_REQUESTED, REJECTED, UNINVERTIBLE, InversionSet
from meow_engine.sensitive import Span, contains_span, fact_spans, normalize_for_match, span_cores

#: how many rejected candidates an uninvertible reason quotes
QUOTED_REJECTIONS = 3


def _within(needle: str, hay: str) -> bool:
    return bool(needle) and f" {needle} " in f" {hay} "


def leak_reason(text: str, spans: Sequence[Span], question: str = "") -> str | None:
    """Which sensitive spans (or cores of them) ``text`` still says, in words; None if none.

    A core the question itself says is not counted: "Priya" in "What is Priya Raman's email?" is
    the subject, so a candidate may keep saying it while its email (``priya.raman84@...``) changes.
    """
    parts: list[str] = []
    hay = normalize_for_match(text)
    runs = " ".join(re.findall(r"[^\W\d_]+|\d+", hay))
    asked = normalize_for_match(question)
    for sp in spans:
        if contains_span(text, sp, cores=False):
            parts.append(f"{sp.text!r} ({sp.kind})")
            continue
        core = next((c for c in span_cores(sp) if _within(c, runs) and not _within(c, asked)), None)
        if core is not None:
            parts.append(f"{core!r} (part of {sp.kind} {sp.text!r})")
    return "repeats sensitive span " + ", ".join(parts) if parts else None


def rejection_reason(candidate: str, fact: Fact, spans: Sequence[Span], seen: dict[str, str]) -> str | None:
    """Why ``candidate`` must not become a training target, or None when it is valid.

    ``seen`` maps the normalised form of each candidate already kept to its text.
    """
    key = normalize_for_match(candidate)
    truth = normalize_for_match(fact.answer)
    if not key:
        return "empty"
    if key == truth:
        return "is the true answer"
    if _within(truth, key):
        return "contains the true answer"
    if fact.paraphrased_answer and key == normalize_for_match(fact.paraphrased_answer):
        return "is the fact's paraphrased (true) answer"
    leak = leak_reason(candidate, spans, fact.question)
    if leak:
        return leak
    if key in seen:
        return f"duplicates {seen[key]!r}"
    return None


def screen(fact: Fact, s: InversionSet, n: int, spans: Sequence[Span] | None = None) -> InversionSet:
    """``s`` with invalid candidates moved to ``rejected`` and its flags brought up to date (in place)."""
    spans = list(fact_spans(fact) if spans is None else spans)
    kept: list[str] = []
    seen: dict[str, str] = {}
    new_rejections = 0
    for cand in s.candidates:
        reason = rejection_reason(cand, fact, spans, seen)
        if reason is None:
            seen[normalize_for_match(cand)] = cand
            kept.append(cand)
        else:
            s.rejected.append({"text": cand, "reason": reason})
            new_rejections += 1
    s.candidates = kept
    s.spans = spans
    flags = [f for f in s.flags if f != FEWER_THAN_REQUESTED]
    if new_rejections and REJECTED not in flags:
        flags.append(REJECTED)
    if len(kept) < n:
        flags.append(FEWER_THAN_REQUESTED)
    s.flags = flags
    if not kept:
        _mark(s, uninvertible_reason(s, 1))
    return s


def uninvertible_reason(s: InversionSet, k: int) -> str | None:
    """Why ``s`` cannot give ``k`` distinct valid training targets, in words; None when it can."""
    valid = len(s.candidates)
    if valid >= k:
        return None
    total = valid + len(s.rejected)
    quoted = "; ".join(f"{r['text'][:70]!r} {r['reason']}" for r in s.rejected[:QUOTED_REJECTIONS])
    more = f" (and {len(s.rejected) - QUOTED_REJECTIONS} more)" if len(s.rejected) > QUOTED_REJECTIONS else ""
    need = f"; the selection needs k={k}"
    if total == 0:
        return f"the inverter produced no candidate{need}"
    if not s.rejected:
        return f"the inverter produced only {valid} candidate(s){need}"
    head = (f"no candidate of {total} removes every sensitive span and the true answer" if valid == 0 else
            f"only {valid} of {total} candidates remove every sensitive span and the true answer")
    return f"{head}{need}: {quoted}{more}"


def _mark(s: InversionSet, reason: str | None) -> None:
    if reason is None:
        return
    s.uninvertible = reason
    if UNINVERTIBLE not in s.flags:
        s.flags.append(UNINVERTIBLE)


def mark_uninvertible(sets: Sequence[InversionSet], k: int) -> list[InversionSet]:
    """Flag every set with fewer than ``k`` valid candidates ``uninvertible`` (with its reason); return those.

    The pipeline calls this with ``selection.k`` after ``invert`` and decides what to do with them
    (skip the fact and report it, or stop the job): they are never padded with rejected text.
    """
    out = []
    for s in sets:
        _mark(s, uninvertible_reason(s, k))
        if s.uninvertible is not None and len(s.candidates) < k:
            out.append(s)
    return out
