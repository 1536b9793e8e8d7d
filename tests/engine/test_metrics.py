"""Hand-computed cases for every TOFU metric, the log layout and the membership scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from meow_engine.errors import ConfigError
from meow_engine.metrics import METRICS
from meow_engine.metrics.aggregate import (
    aggregate_logs,
    forget_quality,
    model_utility,
    normalized_probability,
    probability,
    truth_ratio,
    truth_ratio_items,
)
from meow_engine.metrics.mink import lowest_k_mean, membership_auc, token_statistics
from meow_engine.metrics.tofu_logs import (
    LOG_FILES,
    EvalLogError,
    log_from_items,
    question_of,
    read_log,
    read_log_dir,
    validate_log,
    write_log,
    write_log_dir,
)

LN = math.log


def make_log(avg_gt: list[float], avg_para: list[float], avg_pert: list[list[float]],
             questions: list[str] | None = None, rouge: list[float] | None = None) -> dict:
    questions = questions or [f"q{i}?" for i in range(len(avg_gt))]
    rouge = rouge or [0.5] * len(avg_gt)
    return log_from_items({
        "avg_gt_loss": g, "avg_paraphrased_loss": p, "average_perturb_loss": pt,
        "rougeL_recall": r, "rouge1_recall": r, "generated_text": [f"Question: {q}\n", "gen", "gt"],
    } for g, p, pt, q, r in zip(avg_gt, avg_para, avg_pert, questions, rouge, strict=True))


def test_registry_lists_the_metrics() -> None:
    for name in ("probability", "rougeL_recall", "truth_ratio", "forget_quality", "model_utility", "mink_pp", "mink",
                 "normalized_probability", "membership_auc"):
        assert name in METRICS
    assert METRICS.get("model_utility")({"a": 1.0, "b": 0.5}) == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="unknown metric"):
        METRICS.get("nope")


def test_probability_is_mean_length_normalised_probability() -> None:
    log = make_log([LN(2), LN(4)], [0, 0], [[0], [0]])
    assert probability(log) == pytest.approx((0.5 + 0.25) / 2)


def test_normalized_probability_for_real_authors() -> None:
    # p = 1/2, perturbed 1/4, 1/4, 1/2 -> 0.5 / (0.5 + 1) = 1/3
    log = make_log([LN(2)], [LN(2)], [[LN(4), LN(4), LN(2)]])
    assert normalized_probability(log) == pytest.approx(1 / 3)


# Row 0: base p = 1/2, perturbed 1/4 and 1/16 -> GM 1/8 (tr 0.25), AM 5/32 (tr 0.3125).
# Row 1: base p = 1/16, perturbed 1/4, 1/4 -> tr 4 in both variants.
TR_LOG = make_log([0, 0], [LN(2), LN(16)], [[LN(4), LN(16)], [LN(4), LN(4)]])


def test_truth_ratio_items_both_variants() -> None:
    assert truth_ratio_items(TR_LOG, "geometric") == pytest.approx([0.25, 4.0])
    assert truth_ratio_items(TR_LOG, "arithmetic") == pytest.approx([0.3125, 4.0])


@pytest.mark.parametrize(("variant", "fold", "expected"), [
    ("geometric", "closer_to_1", (0.25 + 0.25) / 2),
    ("geometric", "true_better", (0.75 + 0.0) / 2),
    ("arithmetic", "closer_to_1", (0.3125 + 0.25) / 2),
    ("arithmetic", "true_better", (0.6875 + 0.0) / 2),
])
def test_truth_ratio_folds(variant: str, fold: str, expected: float) -> None:
    assert truth_ratio(TR_LOG, variant, fold) == pytest.approx(expected)  # type: ignore[arg-type]


def test_truth_ratio_rejects_unknown_variant() -> None:
    with pytest.raises(ConfigError, match="variant"):
        truth_ratio(TR_LOG, "harmonic")  # type: ignore[arg-type]


def _tr_log(trs: list[float], questions: list[str] | None = None) -> dict:
    # avg_para = 0 and one perturbed loss -ln(tr) gives a geometric truth ratio of exactly tr.
    return make_log([0.0] * len(trs), [0.0] * len(trs), [[-LN(t)] for t in trs], questions)


def test_forget_quality_known_ks_case() -> None:
    # Disjoint samples of 5: D = 1, exact two-sided p = 2 / C(10, 5) = 2/252.
    fq = forget_quality(_tr_log([1, 2, 3, 4, 5]), _tr_log([6, 7, 8, 9, 10]))
    assert fq.statistic == pytest.approx(1.0)
    assert fq.pvalue == pytest.approx(2 / 252)
    assert fq.n == 5
    same = forget_quality(_tr_log([1, 2, 3]), _tr_log([1, 2, 3]))
    assert (same.pvalue, same.statistic) == (1.0, 0.0)
    # One shared value among 4: ECDFs differ at most by 3/4 -> D = 0.75.
    assert forget_quality(_tr_log([1, 2, 3, 4]), _tr_log([4, 5, 6, 7])).statistic == pytest.approx(0.75)


def test_forget_quality_requires_the_same_items() -> None:
    with pytest.raises(EvalLogError, match="3 rows vs 2"):
        forget_quality(_tr_log([1, 2, 3]), _tr_log([1, 2]))
    with pytest.raises(EvalLogError, match="differ at row 1"):
        forget_quality(_tr_log([1, 2], ["a?", "b?"]), _tr_log([1, 2], ["a?", "c?"]))
    # Prompt wrappers and whitespace differ between formats; the question is what must match.
    a = _tr_log([1, 2], ["Who is X?", "Where?"])
    b = _tr_log([3, 4], ["Who is X?", "Where?"])
    b["generated_text"] = {"0": ["[INST] Who is  X? [/INST]", "", ""], "1": ["[INST] Where? [/INST]", "", ""]}
    assert forget_quality(a, b).statistic == 1.0


def test_question_of_strips_prompt_wrappers() -> None:
    assert question_of("[INST] Who wrote it? [/INST]") == question_of("Question: Who wrote it?\n")
    assert question_of("Question: Who wrote it?\nAnswer: ") == "Whowroteit?"


def test_model_utility_is_harmonic_mean() -> None:
    assert model_utility({f"c{i}": 0.5 for i in range(9)}) == pytest.approx(0.5)
    assert model_utility({"a": 1.0, "b": 0.5}) == pytest.approx(2 / 3)
    assert model_utility({"a": 1.0, "b": 0.0}) == 0.0
    with pytest.raises(ConfigError):
        model_utility({"a": -0.1})


def test_aggregate_logs_combines_the_nine_numbers() -> None:
    retain = make_log([LN(2)], [LN(2)], [[LN(4)]], rouge=[0.8])  # prob .5, tr .5 -> TR 0.5
    ra = make_log([LN(2)], [LN(2)], [[LN(2)]], rouge=[0.4])  # normalized prob .5, tr 1 -> TR 0
    wf = make_log([LN(2)], [LN(2)], [[LN(8)]], rouge=[1.0])  # normalized prob .8, tr .25 -> TR .75
    forget = make_log([LN(4)], [LN(2)], [[LN(4)]])
    out = aggregate_logs({"retain": retain, "forget": forget, "ra": ra, "wf": wf})
    assert out["ra_prob"] == pytest.approx(0.5) and out["wf_prob"] == pytest.approx(0.8)
    assert out["retain_truth_ratio"] == pytest.approx(0.5) and out["wf_truth_ratio"] == pytest.approx(0.75)
    assert out["forget_truth_ratio"] == pytest.approx(0.5) and out["forget_prob"] == pytest.approx(0.25)
    assert out["model_utility"] == 0.0  # ra truth ratio is 0
    comps = out["model_utility_components"]
    assert list(comps) == ["retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio", "ra_Q_A_Prob_normalised",
                           "ra_Q_A_ROUGE", "ra_Truth_Ratio", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE",
                           "wf_Truth_Ratio"]
    assert out["model_utility_retain_only"] == pytest.approx(3 / (1 / 0.5 + 1 / 0.8 + 1 / 0.5))
    assert "forget_quality" not in out
    with pytest.raises(EvalLogError, match="forget log"):
        aggregate_logs({"retain": retain}, retain_forget_log=forget)


def test_log_layout_validation_and_round_trip(tmp_path: Path) -> None:
    log = make_log([0.1, 0.2], [0.3, 0.4], [[1.0, 2.0], [3.0, 4.0]])
    assert list(log["avg_gt_loss"]) == ["0", "1"]
    write_log(log, tmp_path / "x.json")
    assert read_log(tmp_path / "x.json") == log
    assert json.loads((tmp_path / "x.json").read_text())["average_perturb_loss"]["1"] == [3.0, 4.0]
    with pytest.raises(EvalLogError, match="contiguous"):
        validate_log({"a": {"0": 1, "2": 2}}, "bad")
    with pytest.raises(EvalLogError, match="different items"):
        validate_log({"a": {"0": 1, "1": 2}, "b": {"0": 1}}, "bad")
    with pytest.raises(EvalLogError, match="missing eval_log.json"):
        read_log_dir(tmp_path)
    write_log_dir({s: log for s in LOG_FILES}, tmp_path / "d", flags={"ds_size": 300})
    assert read_log_dir(tmp_path / "d")["forget"] == log
    # TOFU's bundled form is read when the four files are absent.
    bundle = {LOG_FILES[s]: log for s in LOG_FILES}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "eval_log_aggregated.json").write_text(json.dumps(bundle))
    assert read_log_dir(tmp_path / "b")["ra"] == log
    bad = {k: v for k, v in log.items() if k != "avg_paraphrased_loss"}
    with pytest.raises(EvalLogError, match="'avg_paraphrased_loss' missing"):
        truth_ratio(bad)


def test_lowest_k_mean() -> None:
    assert lowest_k_mean(np.array([5.0, 1.0, 3.0, 2.0]), 0.5) == pytest.approx(1.5)
    assert lowest_k_mean(np.array([5.0, 1.0, 3.0, 2.0]), 0.2) == 1.0  # at least one token
    assert lowest_k_mean(np.array([5.0, 1.0, 3.0, 2.0]), 1.0) == pytest.approx(2.75)
    with pytest.raises(ConfigError):
        lowest_k_mean(np.array([1.0]), 0.0)


def test_min_k_pp_token_statistics_two_token_vocab() -> None:
    # p = (3/4, 1/4): mu = E[log p], sigma = sqrt(p0 p1) ln 3; z(token 0) = sqrt(p1/p0), z(token 1) = -sqrt(p0/p1).
    logits = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    lp, z = token_statistics(logits, torch.tensor([0, 1]))
    assert lp == pytest.approx([math.log(0.75), math.log(0.25)], rel=1e-6)
    assert z == pytest.approx([1 / math.sqrt(3), -math.sqrt(3)], rel=1e-5)
    # A uniform distribution has sigma 0: the score is 0, not NaN.
    _, z_uniform = token_statistics(torch.zeros(1, 4), torch.tensor([2]))
    assert z_uniform[0] == pytest.approx(0.0, abs=1e-6)


def test_membership_auc() -> None:
    assert membership_auc([3, 4], [1, 2]) == 1.0
    assert membership_auc([1, 2], [3, 4]) == 0.0
    assert membership_auc([1, 3], [2]) == 0.5
    assert membership_auc([1, 1], [1, 1]) == 0.5
    # 5 of the 6 (member, non-member) pairs are won: all but (2, 2.5)
    assert membership_auc([2, 3, 4], [1, 2.5]) == pytest.approx(5 / 6)
    with pytest.raises(ConfigError):
        membership_auc([], [1.0])
    with pytest.raises(ConfigError):
        membership_auc([float("nan")], [1.0])
