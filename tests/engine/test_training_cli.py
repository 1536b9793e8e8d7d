"""``meow train``: SFT of facts into a model folder that load_model opens."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from meow_engine.cli import app
from meow_engine.facts import save_facts
from meow_engine.models import load_model


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def files(random_tiny, sample_facts, tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    random_tiny.model.save_pretrained(d / "base")
    random_tiny.tokenizer.save_pretrained(d / "base")
    save_facts(sample_facts, d / "facts.json")
    return d


def run(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def test_full_training_writes_a_loadable_model_and_json(files, tmp_path):
    out = tmp_path / "full"
    r = run("--model", str(files / "base"), "--facts", str(files / "facts.json"), "--out", str(out),
            "--max-steps", "3", "--lr", "1e-3", "--batch-size", "2", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["steps"] == 3 and len(data["losses"]) == 3 and data["mode"] == "full" and data["facts"] == 4
    assert 0.0 <= data["rougeL_recall"] <= 1.0
    assert data["artifact"]["kind"] == "full" and "model.safetensors" in data["artifact"]["files"]
    lm = load_model(out)
    before = load_model(files / "base")
    assert not torch.equal(lm.model.lm_head.weight, before.model.lm_head.weight)


@pytest.mark.parametrize("merge", [True, False])
def test_lora_merges_by_default_and_can_keep_the_adapter(files, tmp_path, merge):
    out = tmp_path / "lora"
    args = ["--model", str(files / "base"), "--facts", str(files / "facts.json"), "--out", str(out),
            "--mode", "lora", "--max-steps", "2", "--lr", "1e-2", "--no-audit", "--json"]
    r = run(*args, *([] if merge else ["--no-merge"]))
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["merged"] is merge and "rougeL_recall" not in data
    names = set(data["artifact"]["files"])
    if merge:
        assert "model.safetensors" in names and not any(n.startswith("adapter") for n in names)
        load_model(out)
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= names
        load_model(files / "base", adapter=out)


def test_bad_settings_give_one_line_errors(files, tmp_path):
    r = run("--model", str(files / "base"), "--facts", str(files / "facts.json"), "--out", str(tmp_path / "x"),
            "--mode", "sideways")
    assert r.exit_code == 2 and "meow: error:" in r.stderr and "mode" in r.stderr
    r = run("--model", str(files / "base"), "--facts", str(tmp_path / "none.json"), "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "no such file" in r.stderr
