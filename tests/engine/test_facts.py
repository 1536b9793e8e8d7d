"""Facts loading: JSON, JSON Lines, TOFU's own files, and one-line errors that name the line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meow_engine.errors import FactsError
from meow_engine.facts import Fact, facts_from_objects, load_facts, save_facts


def _tofu_dir() -> Path | None:
    env = os.environ.get("MEOW_TOFU_DIR")
    for c in ([Path(env)] if env else []) + [Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu"]:
        if (c / "forget01_perturbed.json").is_file():
            return c
    return None


TOFU = _tofu_dir()
needs_tofu = pytest.mark.skipif(TOFU is None, reason="TOFU data not found (../shared/data/tofu or MEOW_TOFU_DIR)")


def _write(tmp_path: Path, text: str, name: str = "facts.json") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_json_array_object_and_lines_give_the_same_facts(tmp_path: Path) -> None:
    rows = [{"question": "Q1?", "answer": "A one.", "id": 7}, {"question": " Q2? ", "answer": "A two. "}]
    arr = load_facts(_write(tmp_path, json.dumps(rows), "a.json"))
    obj = load_facts(_write(tmp_path, json.dumps({"facts": rows}), "b.json"))
    lines = load_facts(_write(tmp_path, "\n".join(json.dumps(r) for r in rows) + "\n\n", "c.jsonl"))
    assert arr == obj == lines
    assert arr[0] == Fact("Q1?", "A one.", id="7")
    assert (arr[1].question, arr[1].answer, arr[1].id) == ("Q2?", "A two.", None)  # stripped, no id


def test_a_single_fact_line_is_json_lines(tmp_path: Path) -> None:
    facts = load_facts(_write(tmp_path, '{"question": "Q?", "answer": "A."}\n'))
    assert facts == [Fact("Q?", "A.")]


def test_save_then_load_round_trips_every_field(tmp_path: Path) -> None:
    facts = [Fact("Q?", "A.", id="x", paraphrased_answer="P.", paraphrased_question="PQ?",
                  perturbed_answers=("W1.", "W2.")), Fact("Q2?", "B.")]
    save_facts(facts, tmp_path / "f.jsonl")
    assert load_facts(tmp_path / "f.jsonl") == facts


@needs_tofu
def test_tofu_perturbed_file_keeps_its_fields() -> None:
    facts = load_facts(TOFU / "forget01_perturbed.json")
    assert len(facts) == 40
    first = facts[0]
    raw = json.loads((TOFU / "forget01_perturbed.json").read_text().splitlines()[0])
    assert first.question == raw["question"].strip()
    assert first.answer == raw["answer"].strip()
    assert first.paraphrased_answer == raw["paraphrased_answer"]
    assert first.paraphrased_question == raw["paraphrased_question"]
    assert list(first.perturbed_answers) == raw["perturbed_answer"]
    assert all(len(f.perturbed_answers) == 5 for f in facts)


@needs_tofu
def test_tofu_plain_file_and_limit() -> None:
    facts = load_facts(TOFU / "forget01.json", limit=3)
    assert len(facts) == 3
    assert facts[0].answer.endswith("Basil Mahfouz Al-Kuwaiti.")
    assert facts[0].perturbed_answers == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"question": "Q?", "answer": "A."}\n{"question": "Q2?"}\n', "line 2: missing field 'answer'"),
        ('{"question": "Q?", "answer": "A."}\n\n{"question": "Q?", "answer": "   "}\n',
         "line 3: field 'answer' is empty"),
        ('{"question": "Q?", "answer": 5}\n{"question": "Q2?", "answer": "A."}\n',
         "line 1: field 'answer' must be a string, got int"),
        ('{"question": "Q?", "answer": "A."}\n{"question": "Q2?", "answer": "A.",\n', "line 2: invalid JSON"),
        ('[{"question": "Q?", "answer": "A."}, {"answer": "A."}]', "item 1: missing field 'question'"),
        ('[{"question": "Q?", "answer": "A."}, "just a string"]', "item 1: expected an object"),
        ('{"question": "Q?", "answer": "A.", "perturbed_answer": [1, 2]}\n', "line 1: field 'perturbed_answer'"),
        ('{"facts": 3}', "must hold a 'facts' list"),
        ("[]", "no facts given"),
        ("  \n", "file is empty"),
    ],
)
def test_bad_files_fail_with_one_line_naming_the_place(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(FactsError) as err:
        load_facts(path)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert str(path) in message or "no facts" in message


def test_oversize_text_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FactsError, match="characters"):
        load_facts(_write(tmp_path, json.dumps({"question": "Q?", "answer": "a" * 9000}) + "\n"))
    with pytest.raises(FactsError, match="no such file"):
        load_facts(tmp_path / "missing.json")
    with pytest.raises(FactsError, match="not UTF-8"):
        (tmp_path / "bin.json").write_bytes(b'{"question": "\xff"}\n')
        load_facts(tmp_path / "bin.json")


def test_facts_from_python_objects() -> None:
    facts = facts_from_objects([{"question": "Q?", "answer": "A.", "perturbed_answer": "W."}])
    assert facts[0].perturbed_answers == ("W.",)
    with pytest.raises(FactsError, match="fact 0: field 'question' must be a string"):
        facts_from_objects([{"question": ["Q?"], "answer": "A."}])
