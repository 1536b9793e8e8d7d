"""Facts: the question/answer pairs a caller wants forgotten (or kept, as retain probes).

Files may be a JSON array, a JSON object with a ``facts`` list, or JSON Lines (TOFU ships JSON
Lines under a ``.json`` name, so the format is sniffed, not taken from the suffix). TOFU's field
names are accepted as is. Every problem is reported with the line (JSON Lines) or item index
(JSON array) so a user can fix the file without guessing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meow_engine.errors import FactsError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 8000
MAX_FACTS = 100_000
MAX_SPANS = 32
MAX_PARAPHRASES = 16


@dataclass(frozen=True)
class Fact:
    question: str
    answer: str
    id: str | None = None
    paraphrased_answer: str | None = None
    paraphrased_question: str | None = None
    perturbed_answers: tuple[str, ...] = field(default_factory=tuple)
    #: strings of the answer that must disappear (None of them said = forgotten); empty: detected
    sensitive: tuple[str, ...] = field(default_factory=tuple)
    #: other ways to ask the question, used as leak probes (the engine makes some when empty)
    paraphrases: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("perturbed_answers", "sensitive", "paraphrases"):
            d[key] = list(getattr(self, key))
        return {k: v for k, v in d.items() if v not in (None, [], ())}


def _text(value: Any, name: str, where: str, required: bool) -> str | None:
    if value is None:
        if required:
            raise FactsError(f"{where}: missing field {name!r}")
        return None
    if not isinstance(value, str):
        raise FactsError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise FactsError(f"{where}: field {name!r} is empty")
    if len(value) > MAX_TEXT_CHARS:
        raise FactsError(f"{where}: field {name!r} is {len(value)} characters (max {MAX_TEXT_CHARS})")
    return value


def fact_from_mapping(obj: Any, where: str = "fact") -> Fact:
    """Validate one mapping (TOFU or meow field names) into a Fact."""
    if not isinstance(obj, Mapping):
        raise FactsError(f"{where}: expected an object with 'question' and 'answer', got {type(obj).__name__}")
    question = _text(obj.get("question"), "question", where, True)
    answer = _text(obj.get("answer"), "answer", where, True)
    pert = obj.get("perturbed_answer", obj.get("perturbed_answers"))
    if pert is None:
        perturbed: tuple[str, ...] = ()
    elif isinstance(pert, str):
        perturbed = (pert,)
    elif isinstance(pert, list) and all(isinstance(p, str) for p in pert):
        perturbed = tuple(pert)
    else:
        raise FactsError(f"{where}: field 'perturbed_answer' must be a string or a list of strings")
    sensitive = _text_list(obj.get("sensitive"), "sensitive", where, MAX_SPANS)
    for span in sensitive:
        if span.strip().casefold() not in answer.casefold():  # type: ignore[union-attr]
            raise FactsError(f"{where}: sensitive span {span!r} does not occur in the answer")
    paraphrases = _text_list(obj.get("paraphrases"), "paraphrases", where, MAX_PARAPHRASES)
    raw_id = obj.get("id", obj.get("index"))
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise FactsError(f"{where}: field 'id' must be a string or an integer")
    return Fact(
        question=question.strip(),  # type: ignore[union-attr]
        answer=answer.strip(),  # type: ignore[union-attr]
        id=None if raw_id is None else str(raw_id),
        paraphrased_answer=_text(obj.get("paraphrased_answer"), "paraphrased_answer", where, False),
        paraphrased_question=_text(obj.get("paraphrased_question"), "paraphrased_question", where, False),
        perturbed_answers=perturbed,
        sensitive=tuple(s.strip() for s in sensitive),
        paraphrases=tuple(p.strip() for p in paraphrases),
    )


def _text_list(value: Any, name: str, where: str, max_items: int) -> list[str]:
    """An optional list of non-empty strings (a lone string is taken as a one-item list)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise FactsError(f"{where}: field {name!r} must be a list of strings")
    if len(items) > max_items:
        raise FactsError(f"{where}: field {name!r} has {len(items)} items (max {max_items})")
    for v in items:
        _text(v, name, where, True)
    return items


def facts_from_objects(objs: Iterable[Any], where_prefix: str = "fact") -> list[Fact]:
    facts = [fact_from_mapping(o, f"{where_prefix} {i}") for i, o in enumerate(objs)]
    _check_count(facts)
    return facts


def _check_count(facts: list[Fact]) -> None:
    if not facts:
        raise FactsError("no facts given")
    if len(facts) > MAX_FACTS:
        raise FactsError(f"{len(facts)} facts given (max {MAX_FACTS})")


def load_facts(path: str | Path, limit: int | None = None) -> list[Fact]:
    """Load facts from JSON, JSON Lines, or a JSON object with a ``facts`` list."""
    p = Path(path)
    if not p.is_file():
        raise FactsError(f"{p}: no such file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FactsError(f"{p}: file is {size} bytes (max {MAX_FILE_BYTES})")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FactsError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    stripped = text.lstrip()
    if not stripped:
        raise FactsError(f"{p}: file is empty")
    facts: list[Fact]
    if stripped[0] == "[" or (stripped[0] == "{" and _is_single_json(stripped) and not _is_one_fact(stripped)):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FactsError(f"{p}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if isinstance(data, dict):
            if not isinstance(data.get("facts"), list):
                raise FactsError(f"{p}: a JSON object must hold a 'facts' list")
            data = data["facts"]
        facts = [fact_from_mapping(o, f"{p}: item {i}") for i, o in enumerate(data)]
    else:
        facts = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise FactsError(f"{p}: line {lineno}: invalid JSON ({e.msg})") from None
            facts.append(fact_from_mapping(obj, f"{p}: line {lineno}"))
    if limit is not None:
        facts = facts[:limit]
    _check_count(facts)
    return facts


def _is_single_json(text: str) -> bool:
    """True when the text is one JSON document (an object), not JSON Lines of objects."""
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError:
        return False


def _is_one_fact(text: str) -> bool:
    """A lone fact object is a one-line JSON Lines file, not a ``{"facts": [...]}`` document."""
    data = json.loads(text)
    return isinstance(data, dict) and "facts" not in data and "question" in data


def save_facts(facts: Iterable[Fact], path: str | Path) -> None:
    """Write facts as JSON Lines (TOFU's layout)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for fact in facts:
            f.write(json.dumps(fact.to_dict(), ensure_ascii=False) + "\n")
