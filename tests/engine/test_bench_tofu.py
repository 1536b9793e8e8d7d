"""``meow bench tofu`` on the ``micro`` preset: real tiny models, real TOFU rows, every stage cached.

The micro preset (2 authors × 4 QA, a few steps) makes numbers that mean nothing, but every part
is the real one: a tiny Llama trained from scratch as target and as retain model, unlearning
through ``unlearn()``, the TOFU evaluator, FQ against the retain model, the plot and the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from meow_engine.bench.tofu_bench import StageStore, TofuBenchSettings, run_tofu_bench, select_data
from meow_engine.bench.tofu_presets import ALL_METHODS, PRESETS, get_preset
from meow_engine.bench.tofu_report import format_table
from meow_engine.errors import ConfigError
from meow_engine.metrics.tofu_data import default_tofu_dir

pytestmark = pytest.mark.skipif(default_tofu_dir() is None, reason="TOFU data folder not found (MEOW_TOFU_DIR)")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tofu-micro")
    result = run_tofu_bench(TofuBenchSettings(preset="micro", out=str(out), seed=0, methods=("meow", "ga")))
    return out, result


@pytest.mark.slow
def test_micro_run_measures_every_model_and_method(first_run: tuple[Path, dict]) -> None:
    out, result = first_run
    res = result["results"]
    assert list(res) == ["target", "retain", "meow", "ga"]
    # The retain model is the reference of Forget Quality: identical to itself.
    assert res["retain"]["metrics"]["forget_quality"] == pytest.approx(1.0)
    # The target was trained on the forget authors, the retain model never saw them.
    assert res["target"]["metrics"]["forget_rougeL"] > res["retain"]["metrics"]["forget_rougeL"]
    for label, r in res.items():
        m = r["metrics"]
        assert 0.0 <= m["forget_quality"] <= 1.0
        assert 0.0 <= m["model_utility_retain_only"] <= 1.0
        assert "model_utility" in m and "retain_rougeL" in m
        assert 0.0 <= r["forget_memo"] <= 1.0, label
    # Equal budget: every method ran exactly the preset's optimizer steps.
    steps = get_preset("micro").unlearn.max_steps
    for m in ("meow", "ga"):
        assert res[m]["training"]["steps"] == steps
        assert res[m]["wall_seconds"] > 0
    # MEOW trains on inverted rows (rows_per_qa per question), the baselines on the true answers.
    assert res["meow"]["training"]["rows"] > res["ga"]["training"]["rows"] == result["data"]["n_forget"]
    # A method changed the model: GA's forget numbers differ from the target's.
    assert res["ga"]["metrics"]["forget_prob"] != pytest.approx(res["target"]["metrics"]["forget_prob"])

    written = json.loads(Path(result["json"]).read_text())
    assert written["seed"] == 0 and written["preset"] == "micro"
    assert written["budget"]["max_steps"] == steps and written["budget"]["mode"] == "full"
    assert set(written["method_settings"]) == {"meow", "ga"}
    assert written["versions"]["torch"] == torch.__version__
    assert written["data"]["n_forget"] == 4 and written["data"]["n_retain"] == 4
    assert Path(result["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # TOFU-layout logs are kept per model for re-aggregation with `meow eval logs`.
    assert (out / "seed0" / "runs" / "ga" / "eval" / "eval_log_forget.json").is_file()
    table = format_table(written["table"])
    assert table.splitlines()[0].split()[0] == "method" and "meow" in table


@pytest.mark.slow
def test_rerun_resumes_and_only_computes_new_stages(first_run: tuple[Path, dict]) -> None:
    out, first = first_run
    again = run_tofu_bench(TofuBenchSettings(preset="micro", out=str(out), seed=0, methods=("meow", "ga", "npo")))
    cached = {k: v["cached"] for k, v in again["results"].items()}
    assert cached == {"target": True, "retain": True, "meow": True, "ga": True, "npo": False}
    assert again["models"]["target"]["cached"] is True
    for label in ("target", "retain", "meow", "ga"):
        assert again["results"][label]["metrics"] == first["results"][label]["metrics"]
    assert again["results"]["npo"]["training"]["steps"] == get_preset("micro").unlearn.max_steps


def test_stage_store_refuses_stale_and_failed_stages(tmp_path: Path) -> None:
    store = StageStore(tmp_path, force=False)
    with store.building("runs/x") as d:
        (d / "file").write_text("x")
        store.save("runs/x", "fp1", {"value": 1})
    assert store.cached("runs/x", "fp1")["value"] == 1
    assert store.cached("runs/x", "fp2") is None  # a changed setting recomputes
    with pytest.raises(RuntimeError), store.building("runs/y") as d:
        (d / "half").write_text("x")
        raise RuntimeError("boom")
    assert not store.path("runs/y").exists()  # no half-written stage survives
    forced = StageStore(tmp_path, force=True)
    assert forced.cached("runs/x", "fp1") is None


def test_data_split_follows_tofu_forget_is_last_authors() -> None:
    preset = get_preset("tiny")
    data = select_data(preset)
    q = preset.questions_per_author
    assert len(data.forget) == preset.n_forget_authors * q
    assert len(data.retain) == (preset.n_authors - preset.n_forget_authors) * q
    assert data.rows["forget"] == list(range(len(data.retain), preset.n_authors * q))
    assert all(f.paraphrased_answer and len(f.perturbed_answers) == 5 for f in data.forget + data.retain)
    assert [f.id for f in data.forget] == [str(i) for i in range(len(data.forget))]
    assert len(data.ra) == 100 and len(data.wf) == 117


def test_bad_input_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown TOFU bench preset"):
        run_tofu_bench(TofuBenchSettings(preset="nope", out=str(tmp_path)))
    with pytest.raises(ConfigError, match="unlearning method"):
        run_tofu_bench(TofuBenchSettings(preset="micro", out=str(tmp_path), methods=("meow", "nope")))
    assert not any(tmp_path.iterdir())
    from meow_engine.methods.catalog import CATALOG

    assert set(ALL_METHODS) == set(CATALOG.names()) - {"sft"} and ALL_METHODS[0] == "meow"
    assert {"tiny", "smollm2", "smollm2-cpu"} <= set(PRESETS)


def test_cli_reports_bad_preset_in_one_line(tmp_path: Path) -> None:
    from meow_engine.cli import app

    r = CliRunner().invoke(app, ["bench", "tofu", "--preset", "nope", "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert "unknown TOFU bench preset 'nope'" in r.output
    assert len(r.output.strip().splitlines()) == 1
