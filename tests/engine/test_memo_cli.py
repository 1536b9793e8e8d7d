"""``meow memo`` and ``meow bench memo`` end to end on a saved tiny model folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from meow_engine.cli import app
from meow_engine.facts import save_facts
from tests.conftest import SAMPLE_FACTS


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, random_tiny):
    d = tmp_path_factory.mktemp("tiny-model")
    random_tiny.model.save_pretrained(d)
    random_tiny.tokenizer.save_pretrained(d)
    save_facts(SAMPLE_FACTS, d / "facts.jsonl")
    return d


def test_memo_cli_json_and_table(model_dir):
    runner = CliRunner()
    args = ["memo", "--model", str(model_dir), "--facts", str(model_dir / "facts.jsonl"), "--max-new-tokens", "8",
            "--limit", "2", "--device", "cpu"]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [m["index"] for m in data["memo"]] == [0, 1]
    assert [m["question"] for m in data["memo"]] == [f.question for f in SAMPLE_FACTS[:2]]
    assert data["mean"] == pytest.approx(sum(m["memo"] for m in data["memo"]) / 2)
    assert data["mode"] == "suffix" and data["engine"] == "speculative" and "windows" not in data["memo"][0]

    res = runner.invoke(app, [*args, "--mode", "prefix", "--engine", "reference"])
    assert res.exit_code == 0, res.output
    assert "mean MEMO (prefix, reference)" in res.stdout and SAMPLE_FACTS[0].question in res.stdout


def test_memo_cli_bad_input_is_one_line(model_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["memo", "--model", str(model_dir), "--facts", str(model_dir / "facts.jsonl"),
                              "--mode", "middle"])
    assert res.exit_code == 2 and "meow: error:" in res.stderr and "mode" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = runner.invoke(app, ["memo", "--model", str(model_dir), "--facts", str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2 and "no such file" in res.stderr


def test_bench_memo_cli_writes_json(model_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "memo", "--model", str(model_dir), "--n-facts", "2", "--n-texts", "2",
                              "--max-new-tokens", "8", "--threads", "1", "--device", "cpu", "--json",
                              "--job-facts", "2", "--job-retain", "2", "--job-steps", "2", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("reference_windows_per_s", "batched_windows_per_s", "speculative_windows_per_s", "speedup",
                "speedup_cpu_time", "agreement", "mean_abs_diff", "model", "device", "n_windows", "batch_size",
                "torch_version"):
        assert key in data
    assert data["n_texts"] == 4 and data["reference_n_windows"] == data["n_windows"] > 10
    assert data["default_engine"] == "speculative"
    assert data["speedup"] == pytest.approx(data["speculative_windows_per_s"] / data["reference_windows_per_s"])
    assert data["speedup_batched"] == pytest.approx(data["batched_windows_per_s"] / data["reference_windows_per_s"])
    assert 0.0 <= data["agreement"] <= 1.0 and data["mean_abs_diff"] >= 0.0
    # the engines decode identically on this model (see test_memo_engines, test_memo_speculative)
    assert data["agreement"] >= 0.9 and data["batched_vs_reference"]["agreement"] >= 0.9
    assert data["speculative_vs_batched"]["prediction_agreement"] >= 0.9
    job = data["job"]
    assert job["meow"]["train_steps"] == job["gd"]["train_steps"] == 2
    assert 0.0 < job["meow"]["memo_share"] < 1.0 and job["meow"]["memo_windows"] > job["gd"]["memo_windows"] > 0
    assert "memo_candidates" in job["meow"]["timings"] and "memo_candidates" not in job["gd"]["timings"]
    assert job["wall_ratio"] == pytest.approx(job["meow"]["wall_seconds"] / job["gd"]["wall_seconds"])
    written = json.loads((tmp_path / next(p.name for p in tmp_path.iterdir())).read_text())
    assert written["n_windows"] == data["n_windows"]
    table = runner.invoke(app, ["bench", "memo", "--model", str(model_dir), "--n-facts", "1", "--n-texts", "1",
                                "--max-new-tokens", "4", "--device", "cpu", "--no-job"])
    assert table.exit_code == 0, table.output
    assert "speculative" in table.stdout and "MEOW job" not in table.stdout


def test_bench_memo_job_without_enough_facts_fails_early_in_one_line(model_dir):
    res = CliRunner().invoke(app, ["bench", "memo", "--model", str(model_dir), "--device", "cpu",
                                   "--job-facts", "3", "--job-retain", "2", "--json"])
    assert res.exit_code == 2 and "needs job_facts + job_retain = 5 facts" in res.stderr
    last = res.stderr.strip().splitlines()[-1]  # (transformers' weight-loading bar may precede it)
    assert last.startswith("meow: error:") and "--no-job" in last and res.stdout == ""
