"""``meow model``: gen-facts, demo-facts, build-tiny and show, plus one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from meow_engine.cli import app
from meow_engine.facts import load_facts
from meow_engine.tiny.fictitious import fictitious_facts


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def run(*args: str):
    return CliRunner().invoke(app, ["model", *args])


def test_gen_facts_to_file_and_stdout(tmp_path: Path) -> None:
    r = run("gen-facts", "--n", "5", "--seed", "3", "--out", str(tmp_path / "f.jsonl"))
    assert r.exit_code == 0, r.output
    assert load_facts(tmp_path / "f.jsonl") == fictitious_facts(5, seed=3)
    r = run("gen-facts", "--n", "2")
    lines = r.stdout.strip().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["fx0-000", "fx0-001"]


def test_demo_facts_writes_what_demo_tiny_memorized(tmp_path: Path) -> None:
    from meow_engine.tiny.demo import demo_facts

    r = run("demo-facts", "--out", str(tmp_path / "demo.jsonl"))
    assert r.exit_code == 0, r.output
    assert load_facts(tmp_path / "demo.jsonl") == demo_facts()


def test_show_demo_tiny_json(demo_tiny) -> None:
    r = run("show", "demo:tiny", "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["path"] == str(demo_tiny.path)
    assert info["parameters"] == sum(p.numel() for p in demo_tiny.model.parameters())
    assert (info["device"], info["dtype"], info["prompt_format"]) == ("cpu", "float32", "tofu")
    assert info["tiny_build"]["recall"] >= 0.95 and info["tiny_build"]["facts"] == 40


def test_build_tiny_json_and_exit_code(tmp_path: Path) -> None:
    facts = tmp_path / "facts.jsonl"
    run("gen-facts", "--n", "2", "--out", str(facts))
    out = tmp_path / "m"
    r = run("build-tiny", "--facts", str(facts), "--out", str(out), "--max-steps", "2", "--hidden", "32",
            "--layers", "1", "--json")
    assert r.exit_code == 1, "an under-trained model must not look like success"
    report = json.loads(r.stdout)
    assert report["steps"] == 2 and report["reached_target"] is False and report["n_facts"] == 2
    assert (out / "model.safetensors").is_file() and (out / "meow_tiny.json").is_file()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["build-tiny", "--facts", "{bad}", "--out", "{tmp}/m"], "line 2: missing field 'answer'"),
        (["build-tiny", "--facts", "{tmp}/nope.json", "--out", "{tmp}/m"], "no such file"),
        (["build-tiny", "--facts", "{bad}", "--out", "{tmp}/m", "--max-steps", "0"], "max_steps must be at least 1"),
        (["gen-facts", "--n", "0"], "n must be between 1 and"),
        (["show", "{tmp}"], "not a Hugging Face model folder"),
        (["show", "demo:nope"], "unknown built-in model 'demo:nope'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q?", "answer": "A."}\n{"question": "Q2?"}\n')
    args = [a.replace("{bad}", str(bad)).replace("{tmp}", str(tmp_path)) for a in args]
    r = run(*args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meow: error: ") and expected in lines[0], r.stderr


def test_the_installed_command_runs() -> None:
    meow = Path(sys.executable).parent / "meow"
    r = subprocess.run([str(meow), "model", "gen-facts", "--n", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "fx0-000"
