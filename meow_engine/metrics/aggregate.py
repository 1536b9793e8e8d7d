"""TOFU aggregate metrics from per-item logs (docs: ``shared/docs/tofu-metrics.md`` §5, §8).

Everything here is a pure function of TOFU-layout logs (see ``tofu_logs``), so the same code
aggregates TOFU's committed logs (the regression anchors) and the logs our evaluator writes.
Reference is the legacy ``aggregate_eval_stat.py``: length-normalised probabilities
``exp(-avg_loss)``, the *geometric* truth ratio folded as ``min(R, 1/R)`` on the forget set and
``max(0, 1 - 1/R)`` elsewhere, FQ = KS p-value of the raw forget truth ratios against the retain
model's, MU = harmonic mean of nine numbers. The ``arithmetic`` truth-ratio variant reproduces the
in-training ``utils.py`` evaluator (MU ~0.04 lower); results always record which one was used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from meow_engine.errors import ConfigError
from meow_engine.metrics import register_metric
from meow_engine.metrics.tofu_logs import EvalLogError, TofuLog, column, n_items, question_of

TRVariant = Literal["geometric", "arithmetic"]
TRFold = Literal["closer_to_1", "true_better"]
TR_VARIANTS = ("geometric", "arithmetic")
EVAL_SETS = ("retain", "forget", "ra", "wf")

#: MU component names (open-unlearning's keys), in the legacy order retain, real authors, world facts
MU_COMPONENTS = (
    "retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio",
    "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio",
    "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio",
)


def _array(log: TofuLog, name: str, where: str) -> np.ndarray:
    values = column(log, name, where)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise EvalLogError(f"{where}: field {name!r} is not numeric (or its lists differ in length)") from None
    if arr.size == 0:
        raise EvalLogError(f"{where}: field {name!r} is empty")
    return arr


def _check_variant(variant: str) -> None:
    if variant not in TR_VARIANTS:
        raise ConfigError(f"unknown truth-ratio variant {variant!r}; known: {', '.join(TR_VARIANTS)}")


def item_probabilities(log: TofuLog, where: str = "log") -> np.ndarray:
    """Per-item length-normalised probability of the answer, ``P(a|q)^(1/|a|) = exp(-avg_gt_loss)``."""
    return np.exp(-_array(log, "avg_gt_loss", where))


def item_normalized_probabilities(log: TofuLog, where: str = "log") -> np.ndarray:
    """Per-item ``p / (p + sum_j p_j)`` over the true and the perturbed answers, all length-normalised
    (RA/WF; the code's reading of the paper, TOFU issue #26)."""
    p = item_probabilities(log, where)
    pert = np.exp(-_array(log, "average_perturb_loss", where))
    return p / (p + pert.reshape(len(p), -1).sum(axis=1))


@register_metric("probability", "TofuLog", "mean length-normalised answer probability (forget, retain)")
def probability(log: TofuLog, where: str = "log") -> float:
    return float(item_probabilities(log, where).mean())


@register_metric("normalized_probability", "TofuLog", "mean p/(p+sum perturbed p) (real authors, world facts)")
def normalized_probability(log: TofuLog, where: str = "log") -> float:
    return float(item_normalized_probabilities(log, where).mean())


@register_metric("rougeL_recall", "TofuLog", "mean ROUGE-L recall of greedy generations vs the answer")
def rouge_recall(log: TofuLog, kind: Literal["rougeL", "rouge1"] = "rougeL", where: str = "log") -> float:
    return float(_array(log, f"{kind}_recall", where).mean())


@register_metric("rouge1_recall", "TofuLog", "mean ROUGE-1 recall of greedy generations vs the answer")
def rouge1_recall(log: TofuLog, where: str = "log") -> float:
    return rouge_recall(log, "rouge1", where)


def truth_ratio_items(log: TofuLog, variant: TRVariant = "geometric", where: str = "log") -> np.ndarray:
    """Per-item truth ratio in the paper's orientation ``tr = P(perturbed) / P(base answer)``.

    ``geometric`` (official): ``exp(L(base) - mean_j L(pert_j))`` = the logs' ``truth_ratio`` field
    = 1/R of ``aggregate_eval_stat.py``. ``arithmetic`` (``utils.py``): ``mean_j P(pert_j) / P(base)``.
    All probabilities are length-normalised. Lower = the model prefers the true answer.
    """
    _check_variant(variant)
    base = _array(log, "avg_paraphrased_loss", where)
    pert = _array(log, "average_perturb_loss", where).reshape(len(base), -1)
    if variant == "geometric":
        return np.exp(base - pert.mean(axis=1))
    return np.exp(-pert).mean(axis=1) / np.exp(-base)


def fold_truth_ratio(tr: np.ndarray, fold: TRFold) -> float:
    """Aggregate per-item ratios: forget set wants ``tr`` near 1 (``closer_to_1``: mean min(tr, 1/tr)),
    retain/RA/WF want the true answer preferred (``true_better``: mean max(0, 1 - tr))."""
    if fold == "closer_to_1":
        return float(np.minimum(tr, 1.0 / tr).mean())
    if fold == "true_better":
        return float(np.maximum(0.0, 1.0 - tr).mean())
    raise ConfigError(f"unknown truth-ratio fold {fold!r}; known: closer_to_1, true_better")


@register_metric("truth_ratio", "TofuLog", "folded truth ratio (geometric official / arithmetic variant)")
def truth_ratio(log: TofuLog, variant: TRVariant = "geometric", fold: TRFold = "true_better",
                where: str = "log") -> float:
    return fold_truth_ratio(truth_ratio_items(log, variant, where), fold)


@dataclass(frozen=True)
class ForgetQuality:
    pvalue: float
    statistic: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def check_same_items(model_log: TofuLog, retain_log: TofuLog) -> None:
    """Refuse to compare logs of different item sets (the MEOW reference paired forget10 with
    retain99's 40-row log, tofu-metrics.md §9): same count, same question in every row."""
    n_model, n_retain = n_items(model_log), n_items(retain_log)
    if n_model != n_retain:
        raise EvalLogError(
            f"forget logs cover different item sets: {n_model} rows vs {n_retain} in the retain model's log "
            "(pair forget01/05/10 with retain99/95/90 and use the same ds_size)"
        )
    prompts_m = column(model_log, "generated_text", "model forget log")
    prompts_r = column(retain_log, "generated_text", "retain forget log")
    for i, (a, b) in enumerate(zip(prompts_m, prompts_r, strict=True)):
        if question_of(a[0]) != question_of(b[0]):
            raise EvalLogError(f"forget logs differ at row {i}: {a[0]!r} vs {b[0]!r} (not the same item order)")


@register_metric("forget_quality", "TofuLog, TofuLog", "KS-test p-value of forget truth ratios vs the retain model")
def forget_quality(model_forget_log: TofuLog, retain_forget_log: TofuLog, check_items: bool = True) -> ForgetQuality:
    """FQ = ``ks_2samp(R_model, R_retain).pvalue`` on raw (unfolded) forget truth ratios; D kept.

    KS is invariant to monotone transforms applied to both samples, so tr, R or log R give the
    same p-value; the geometric ratio is used as in the reference.
    """
    if check_items:
        check_same_items(model_forget_log, retain_forget_log)
    r_model = truth_ratio_items(model_forget_log, "geometric", "model forget log")
    r_retain = truth_ratio_items(retain_forget_log, "geometric", "retain forget log")
    res = stats.ks_2samp(r_model, r_retain)
    return ForgetQuality(pvalue=float(res.pvalue), statistic=float(res.statistic), n=len(r_model))


@register_metric("model_utility", "dict[str, float]", "harmonic mean of the 9 retain/RA/WF numbers")
def model_utility(components: Mapping[str, float]) -> float:
    """``scipy.stats.hmean`` of the given numbers (the nine MU components; 0 if any is 0)."""
    values = np.asarray(list(components.values()), dtype=np.float64)
    if values.size == 0:
        raise ConfigError("model utility needs at least one component")
    if (values < 0).any():
        raise ConfigError("model utility components must be non-negative")
    return float(stats.hmean(values))


def set_stats(log: TofuLog, eval_set: str, tr_variant: TRVariant = "geometric") -> dict[str, Any]:
    """Prob, ROUGE and folded truth ratio of one eval set with the set's own definitions."""
    if eval_set not in EVAL_SETS:
        raise ConfigError(f"unknown eval set {eval_set!r}; known: {', '.join(EVAL_SETS)}")
    where = f"{eval_set} log"
    real = eval_set in ("ra", "wf")
    return {
        "n": n_items(log),
        "prob": normalized_probability(log, where) if real else probability(log, where),
        "rougeL": rouge_recall(log, "rougeL", where),
        "rouge1": rouge_recall(log, "rouge1", where),
        "truth_ratio": truth_ratio(log, tr_variant, "closer_to_1" if eval_set == "forget" else "true_better", where),
    }


def mu_components(per_set: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in ("retain", "ra", "wf"):
        prob_key = "retain_Q_A_Prob" if s == "retain" else f"{s}_Q_A_Prob_normalised"
        out[prob_key] = per_set[s]["prob"]
        out[f"{s}_Q_A_ROUGE"] = per_set[s]["rougeL"]
        out[f"{s}_Truth_Ratio"] = per_set[s]["truth_ratio"]
    return {k: out[k] for k in MU_COMPONENTS}


def aggregate_logs(
    logs: Mapping[str, TofuLog],
    retain_forget_log: TofuLog | None = None,
    tr_variant: TRVariant = "geometric",
) -> dict[str, Any]:
    """The TOFU numbers of one model from its logs (any subset of retain/forget/ra/wf).

    MU needs retain, ra and wf; FQ needs the forget log and ``retain_forget_log`` (the matching
    retain model's forget log). ``model_utility_retain_only`` (hmean of the 3 retain numbers) is
    for tiny models that know no real-world facts.
    """
    _check_variant(tr_variant)
    per_set = {s: set_stats(logs[s], s, tr_variant) for s in EVAL_SETS if s in logs}
    out: dict[str, Any] = {"tr_variant": tr_variant}
    for s, st in per_set.items():
        for k in ("prob", "rougeL", "rouge1", "truth_ratio", "n"):
            out[f"{s}_{k}"] = st[k]
    if "retain" in per_set:
        out["model_utility_retain_only"] = model_utility(
            {k: per_set["retain"][m] for k, m in (("p", "prob"), ("r", "rougeL"), ("t", "truth_ratio"))}
        )
    if all(s in per_set for s in ("retain", "ra", "wf")):
        comps = mu_components(per_set)
        out["model_utility_components"] = comps
        out["model_utility"] = model_utility(comps)
    if retain_forget_log is not None:
        if "forget" not in logs:
            raise EvalLogError("forget quality needs the model's forget log (eval_log_forget.json)")
        fq = forget_quality(logs["forget"], retain_forget_log)
        out["forget_quality"] = fq.pvalue
        out["ks_statistic"] = fq.statistic
    return out
