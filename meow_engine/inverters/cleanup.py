"""Turning a raw LLM response into usable inverted answers.

Stricter than the reference (which splits on newlines and only drops empty lines, so preambles
such as "Sure thing! Here are the answers:" leak into training data): a documented deviation,
see ``docs``/meow-method.md §2. Candidates are never padded; callers flag short sets instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

#: a leading list marker: "1.", "2)", "(a)", "a.", "-", "*", "•", "–", "#1:", "Answer 2:" ...
_MARKER = re.compile(
    r"""^(?:
        (?i:answer|option|candidate)\s*\d+\s*[:.)-]\s*   # "Answer 1:" / "Option 2 -"
      | \#?\d{1,3}\s*[.):\]](?:\s+|$)                   # "1." "2)" "3:" "#4." "5]" (not "3.5")
      | \(\s*(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})\s*\)\s* # "(1)" "(a)" "(iv)"
      | [a-h]\)\s+                                      # "a) " (not "J. Smith")
      | [-*•–—·+>]+\s*                                  # bullets
    )""",
    re.VERBOSE,
)
_PREAMBLE_START = re.compile(
    r"^(?:sure\b|certainly\b|of course\b|okay\b|ok\b|here (?:are|is)\b|here's\b|here’s\b|below (?:are|is)\b)",
    re.IGNORECASE,
)
_WRAPPING_QUOTES = ('"', "'", "“", "”", "‘", "’", "`")


_NON_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """Case, whitespace and punctuation-insensitive key for 'is this the same answer?'.

    Cached: the rule inverter compares every pool value against every answer's spans.
    """
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def strip_marker(line: str) -> str:
    """Remove list markers (repeatedly: "1. - foo" -> "foo") and bold/quote wrapping."""
    prev = None
    while prev != line:
        prev = line
        if line.startswith("**") and line.endswith("**") and len(line) > 4:
            line = line[2:-2].strip()
        line = _MARKER.sub("", line, count=1).strip()
        if len(line) > 1 and line[0] in _WRAPPING_QUOTES and line[-1] in _WRAPPING_QUOTES \
                and line.count(line[0]) == 2:
            line = line[1:-1].strip()
    return line


def is_preamble(line: str) -> bool:
    """A line that introduces answers rather than being one ("Sure! Here are 4 answers:")."""
    s = line.strip()
    return s.endswith(":") or bool(_PREAMBLE_START.match(s))


def split_lines(raw: str) -> list[str]:
    return raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def clean_candidates_with_reasons(lines: Iterable[str], truth: str) -> tuple[list[str], list[dict[str, str]]]:
    """``clean_candidates`` that also says what it dropped: ``[{"text", "reason"}]`` (blank lines are
    not reported: an LLM's line breaks are not candidates)."""
    truth_key = normalize(truth)
    seen: dict[str, int] = {}
    out: list[str] = []
    dropped: list[dict[str, str]] = []
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if is_preamble(s):
            dropped.append({"text": s, "reason": "preamble, not an answer"})
            continue
        s = strip_marker(s)
        if not s or is_preamble(s):
            dropped.append({"text": line.strip(), "reason": "preamble, not an answer"})
            continue
        key = normalize(s)
        if not key:
            continue
        if key == truth_key:
            dropped.append({"text": s, "reason": "is the true answer"})
            continue
        if key in seen:
            dropped.append({"text": s, "reason": f"duplicates {out[seen[key]]!r}"})
            continue
        seen[key] = len(out)
        out.append(s)
    return out, dropped


def clean_candidates(lines: Iterable[str], truth: str) -> list[str]:
    """Trim, drop empties/preambles/markers, exact duplicates and copies of the true answer.

    Order is kept (the first occurrence of a duplicate wins). Duplicates are detected on the
    normalized form too, so "Paris." and "paris" count once.
    """
    return clean_candidates_with_reasons(lines, truth)[0]


def clean_response(raw: str, truth: str) -> list[str]:
    """Split a raw completion into lines and clean them."""
    return clean_candidates(split_lines(raw), truth)
