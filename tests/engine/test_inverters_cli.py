"""``meow invert``: JSON output, JSON Lines files, and one-line errors on bad input."""

from __future__ import annotations

import json

import pytest
from local_chat_server import ChatServer, Reply
from typer.testing import CliRunner

from meow_engine.cli import app
from meow_engine.facts import Fact, save_facts

runner = CliRunner()
FACTS = [Fact("Where was Elara Voss born?", "Elara Voss was born in Port Meridian in 1962.", id="f0"),
         Fact("What genre does Tomas Quill write?", "Tomas Quill writes gothic mystery novels.", id="f1")]


@pytest.fixture
def facts_file(tmp_path):
    p = tmp_path / "facts.jsonl"
    save_facts(FACTS, p)
    return p


def _one_line_error(result, needle: str) -> None:
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meow: error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.output


def test_rule_json_and_out_file(facts_file, tmp_path):
    out = tmp_path / "inv" / "out.jsonl"
    result = runner.invoke(app, ["invert", "--facts", str(facts_file), "--n", "3", "--seed", "5", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["inverter"] == "rule" and data["facts"] == 2 and data["flagged"] == 0
    assert [i["id"] for i in data["items"]] == ["f0", "f1"]
    for item, fact in zip(data["items"], FACTS, strict=True):
        assert item["question"] == fact.question and item["answer"] == fact.answer
        assert len(item["candidates"]) == 3 and fact.answer not in item["candidates"]
        assert item["raw"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == data["items"]
    # deterministic: the same seed gives the same file
    again = runner.invoke(app, ["invert", "--facts", str(facts_file), "--n", "3", "--seed", "5", "--json"])
    assert json.loads(again.stdout)["items"] == data["items"]


def test_human_output(facts_file):
    result = runner.invoke(app, ["invert", "--facts", str(facts_file), "--n", "2"])
    assert result.exit_code == 0
    assert "[0] Q: Where was Elara Voss born?" in result.stdout
    assert "2 facts inverted with 'rule', 0 flagged" in result.stdout


def test_openai_through_the_cli(facts_file, tmp_path):
    answers = "Sure! Here are 2 answers:\n1. Wrong one.\n2. Wrong two."
    with ChatServer(lambda body, i: Reply(content=answers)) as srv:
        result = runner.invoke(app, ["invert", "--facts", str(facts_file), "--inverter", "openai", "--n", "2",
                                     "--base-url", srv.url, "--model", "m", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    assert [i["candidates"] for i in items] == [["Wrong one.", "Wrong two."]] * 2
    assert items[0]["raw"] == answers
    assert srv.count == 2


def test_given_replays_an_edited_output(facts_file, tmp_path):
    given = tmp_path / "given.json"
    given.write_text(json.dumps([["Elara Voss was born in Lumen."], ["Tomas Quill writes poems.", FACTS[1].answer]]))
    result = runner.invoke(app, ["invert", "--facts", str(facts_file), "--inverter", "given", "--given", str(given),
                                 "--n", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert [i["candidates"] for i in json.loads(result.stdout)["items"]] == [
        ["Elara Voss was born in Lumen."], ["Tomas Quill writes poems."]]


def test_openai_endpoint_down_is_one_line(facts_file):
    from local_chat_server import free_port

    result = runner.invoke(app, ["invert", "--facts", str(facts_file), "--inverter", "openai", "--base-url",
                                 f"http://127.0.0.1:{free_port()}/v1", "--model", "m", "--retries", "1",
                                 "--retry-wait", "0.01", "--json"])
    _one_line_error(result, "failed after 2 attempt(s): unreachable")


@pytest.mark.parametrize("args, needle", [
    (["--facts", "/no/such/facts.json"], "no such file"),
    (["--inverter", "bogus"], "unknown inverter 'bogus'; known: given, hf, openai, rule"),
    (["--n", "0"], "invalid inverter settings: n: Input should be greater than or equal to 1"),
    (["--inverter", "openai"], "needs base_url"),
    (["--inverter", "given"], "needs candidates"),
    (["--inverter", "hf"], "needs model"),
])
def test_bad_input_is_one_line(facts_file, args, needle):
    base = [] if "--facts" in args else ["--facts", str(facts_file)]
    _one_line_error(runner.invoke(app, ["invert", *base, *args]), needle)


def test_bad_facts_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q?", "answer": "a"}\n{"question": "q2?"}\n')
    _one_line_error(runner.invoke(app, ["invert", "--facts", str(bad)]), "line 2: missing field 'answer'")
