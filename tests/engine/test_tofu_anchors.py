"""Regression anchors: our aggregation of TOFU's committed per-item logs reproduces the legacy
numbers (tofu-metrics.md §8). Skips only when the shared TOFU data folder is absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from meow_engine.metrics.aggregate import (
    aggregate_logs,
    forget_quality,
    item_normalized_probabilities,
    truth_ratio_items,
)
from meow_engine.metrics.tofu_logs import EvalLogError, column, read_log_dir


def _tofu_dir() -> Path | None:
    env = os.environ.get("MEOW_TOFU_DIR")
    beside_repo = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu"
    for cand in ([Path(env)] if env else []) + [beside_repo]:
        if (cand / "eval_logs").is_dir():
            return cand
    return None


TOFU = _tofu_dir()
pytestmark = pytest.mark.skipif(
    TOFU is None, reason="TOFU data folder not found (../shared/data/tofu beside the repo, or MEOW_TOFU_DIR)"
)

FAMILIES = {"llama2": "ft_epoch5_lr1e-05_llama2-7b", "phi": "ft_epoch5_lr2e-05_phi"}


def log_dir(family: str, data: str, wd: str) -> Path:
    assert TOFU is not None
    return TOFU / "eval_logs" / f"{FAMILIES[family]}_{data}_wd{wd}" / "eval_results" / "ds_size300"


_cache: dict[tuple[str, str, str], dict] = {}


def logs(family: str, data: str, wd: str) -> dict:
    key = (family, data, wd)
    if key not in _cache:
        _cache[key] = read_log_dir(log_dir(family, data, wd))
    return _cache[key]


# (family, data, wd) -> official MU (tofu-metrics.md §8 table)
MU_TABLE = {
    ("llama2", "full", "0.01"): 0.6227, ("llama2", "full", "0"): 0.6268,
    ("llama2", "retain90", "0.01"): 0.6137, ("llama2", "retain90", "0"): 0.6203,
    ("llama2", "retain95", "0.01"): 0.6006, ("llama2", "retain95", "0"): 0.6016,
    ("llama2", "retain99", "0.01"): 0.6207, ("llama2", "retain99", "0"): 0.6193,
    ("phi", "full", "0.01"): 0.5221, ("phi", "full", "0"): 0.5216,
    ("phi", "retain90", "0.01"): 0.5320, ("phi", "retain90", "0"): 0.5321,
    ("phi", "retain95", "0.01"): 0.5250, ("phi", "retain95", "0"): 0.5271,
    ("phi", "retain99", "0.01"): 0.5186, ("phi", "retain99", "0"): 0.5182,
}


@pytest.mark.parametrize(("family", "data", "wd"), list(MU_TABLE))
def test_model_utility_matches_tofu_table(family: str, data: str, wd: str) -> None:
    mu = aggregate_logs(logs(family, data, wd))["model_utility"]
    print(f"MU {family} {data} wd{wd}: {mu:.6f} (expected {MU_TABLE[(family, data, wd)]})")
    assert round(mu, 4) == MU_TABLE[(family, data, wd)]


@pytest.mark.parametrize(("family", "wd", "fq", "d"), [
    ("llama2", "0.01", "1.8e-21", 0.397), ("llama2", "0", "1.1e-19", None),
    ("phi", "0.01", "2.2e-16", 0.347), ("phi", "0", "5.1e-17", None),
])
def test_forget_quality_full_vs_retain90(family: str, wd: str, fq: str, d: float | None) -> None:
    res = aggregate_logs(logs(family, "full", wd), logs(family, "retain90", wd)["forget"])
    print(f"FQ {family} full wd{wd}: {res['forget_quality']:.4e} D={res['ks_statistic']:.4f}")
    assert f"{res['forget_quality']:.1e}" == fq
    assert res["forget_quality"] == pytest.approx(float(fq), rel=0.05)
    if d is not None:
        assert round(res["ks_statistic"], 3) == d


@pytest.mark.parametrize(("family", "data", "mu_utils", "tr", "prob", "rouge"), [
    ("llama2", "full", 0.586, 0.516, 0.991, 0.985),
    ("llama2", "retain90", 0.575, 0.674, 0.148, 0.408),
    ("phi", "full", 0.503, 0.483, 0.928, 0.925),
    ("phi", "retain90", 0.513, 0.629, 0.135, 0.428),
])
def test_forget10_details_and_utils_variant(family: str, data: str, mu_utils: float, tr: float, prob: float,
                                            rouge: float) -> None:
    official = aggregate_logs(logs(family, data, "0.01"), logs(family, "retain90", "0.01")["forget"])
    variant = aggregate_logs(logs(family, data, "0.01"), tr_variant="arithmetic")
    print(f"{family} {data}: MU utils.py variant {variant['model_utility']:.4f}, forget TR "
          f"{official['forget_truth_ratio']:.4f} prob {official['forget_prob']:.4f} "
          f"rouge {official['forget_rougeL']:.4f}")
    assert round(variant["model_utility"], 3) == mu_utils
    assert round(official["forget_truth_ratio"], 3) == tr
    assert round(official["forget_prob"], 3) == prob
    assert round(official["forget_rougeL"], 3) == rouge
    assert official["forget_n"] == 300 and variant["tr_variant"] == "arithmetic"
    if data == "retain90":
        assert official["forget_quality"] == 1.0 and official["ks_statistic"] == 0.0


def test_noise_floor_retain90_wd0_vs_wd001() -> None:
    llama = forget_quality(logs("llama2", "retain90", "0")["forget"], logs("llama2", "retain90", "0.01")["forget"])
    phi = forget_quality(logs("phi", "retain90", "0")["forget"], logs("phi", "retain90", "0.01")["forget"])
    assert round(llama.pvalue, 3) == 0.999
    assert phi.pvalue > 0.99


def test_stored_fields_agree_with_our_definitions() -> None:
    for family in FAMILIES:
        sets = logs(family, "full", "0.01")
        for name, log in sets.items():
            ours = truth_ratio_items(log, "geometric")
            stored = column(log, "truth_ratio")
            assert ours == pytest.approx(stored, rel=1e-5), name
        for name in ("ra", "wf"):
            normalized = np.exp(-np.asarray(column(sets[name], "normalized_gt_loss")))
            assert item_normalized_probabilities(sets[name]) == pytest.approx(normalized, rel=1e-9)


def test_refuses_the_reference_retain_pairing_bug() -> None:
    # MEOW's reference compared forget10 with retain99 (a 40-row forget01 log); we refuse.
    with pytest.raises(EvalLogError, match="300 rows vs 40"):
        forget_quality(logs("llama2", "full", "0.01")["forget"], logs("llama2", "retain99", "0.01")["forget"])
    # Same count but different items (retain log instead of forget log): refused row by row.
    with pytest.raises(EvalLogError, match="differ at row 0"):
        forget_quality(logs("llama2", "full", "0.01")["forget"], logs("llama2", "retain90", "0.01")["retain"])


def test_cli_eval_logs_json() -> None:
    from meow_engine.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "logs", str(log_dir("llama2", "full", "0.01")),
                              "--retain", str(log_dir("llama2", "retain90", "0.01")), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert round(out["model_utility"], 4) == 0.6227
    assert f"{out['forget_quality']:.1e}" == "1.8e-21"
    assert round(out["ks_statistic"], 3) == 0.397
    assert len(out["model_utility_components"]) == 9
    for key in ("retain_prob", "forget_rougeL", "ra_prob", "wf_truth_ratio", "forget_truth_ratio"):
        assert isinstance(out[key], float)
    assert out["flags"]["tr_variant"] == "geometric"

    res = runner.invoke(app, ["eval", "logs", str(log_dir("phi", "full", "0.01")), "--tr-variant", "arithmetic",
                              "--json"])
    out = json.loads(res.stdout)
    assert round(out["model_utility"], 3) == 0.503 and "forget_quality" not in out

    res = runner.invoke(app, ["eval", "logs", str(log_dir("phi", "full", "0.01")),
                              "--retain", str(log_dir("phi", "retain99", "0.01"))])
    assert res.exit_code != 0 and "300 rows vs 40" in res.output
