"""Oracle-free forgetting report: evidence of forgetting on real requests, where no retain model exists.

TOFU's Forget Quality needs a model retrained without the facts; a user's request never has one.
This report uses only the unlearned model (and, when given, measurements of the model before):

- forget facts: greedy ROUGE-L recall and length-normalised answer probability (does it still
  say / prefer the answer?), also on paraphrased questions when facts carry them (does it
  still know the fact when asked differently?);
- membership: Min-K%++ and Min-K% AUC of forget facts against held-out facts of the same kind
  (0.5 = the forgotten facts look like facts the model never saw);
- utility: the same ROUGE-L / probability on retain probes, with deltas against ``before``;
- MEMO (the MEOW paper's memorisation score) when the caller passes ``memo_fn``; MEMO lives in
  ``meow_engine.memo`` and is wired in by the pipeline, keeping this module free of it.

Everything returned is plain dicts, lists and floats (JSON-ready) so the pipeline can store it
in ``UnlearnResult.report`` as is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from meow_engine.facts import Fact
from meow_engine.generation import greedy_answers, rouge_l_recall
from meow_engine.metrics.mink import DEFAULT_K, DEFAULT_K_PP, membership_auc, membership_scores
from meow_engine.metrics.scoring import EVAL_MAX_LENGTH, score_answers
from meow_engine.models import LoadedModel

#: (model, facts) -> one MEMO value per fact
MemoFn = Callable[[LoadedModel, Sequence[Fact]], Sequence[float]]


class ReportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(128, ge=1, le=1024, description="greedy generation budget for ROUGE-L")
    max_length: int = Field(EVAL_MAX_LENGTH, ge=8, le=8192, description="scoring truncation")
    batch_size: int = Field(16, ge=1, le=1024)
    k_pp: float = Field(DEFAULT_K_PP, gt=0, le=1, description="Min-K%++ fraction of lowest tokens")
    k: float = Field(DEFAULT_K, gt=0, le=1, description="Min-K% fraction of lowest tokens")
    include_items: bool = Field(True, description="keep per-fact values (needed for per-fact reports)")


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def answer_probabilities(lm: LoadedModel, facts: Sequence[Fact], opts: ReportOptions) -> list[float]:
    """Length-normalised P(answer | question) per fact, ``exp(-NLL/|a|)`` as TOFU's Probability."""
    loss, n = score_answers(lm, [f.question for f in facts], [f.answer for f in facts], opts.max_length,
                            opts.batch_size)
    return [float(x) for x in np.exp(-loss / n)]


def _qa_block(lm: LoadedModel, facts: Sequence[Fact], opts: ReportOptions, questions: Sequence[str] | None = None,
              with_prob: bool = True) -> dict[str, Any]:
    qs = list(questions) if questions is not None else [f.question for f in facts]
    gens = greedy_answers(lm, qs, max_new_tokens=opts.max_new_tokens, batch_size=opts.batch_size)
    rouge = [rouge_l_recall(f.answer, g) for f, g in zip(facts, gens, strict=True)]
    block: dict[str, Any] = {"n": len(facts), "rougeL": _mean(rouge)}
    items: dict[str, Any] = {"rougeL": rouge, "generation": gens}
    if with_prob:
        probs = answer_probabilities(lm, facts, opts)
        block["prob"] = _mean(probs)
        items["prob"] = probs
    if opts.include_items:
        block["items"] = items
    return block


def probe_model(
    lm: LoadedModel,
    forget_facts: Sequence[Fact],
    *,
    holdout_facts: Sequence[Fact] | None = None,
    retain_facts: Sequence[Fact] | None = None,
    options: ReportOptions | None = None,
    memo_fn: MemoFn | None = None,
) -> dict[str, Any]:
    """All measurements of one model (run it before and after unlearning; pass the first as ``before``)."""
    opts = options or ReportOptions()
    out: dict[str, Any] = {"forget": _qa_block(lm, forget_facts, opts)}
    para = [f for f in forget_facts if f.paraphrased_question]
    if para:
        out["forget_paraphrased"] = _qa_block(lm, para, opts, [f.paraphrased_question for f in para],  # type: ignore[misc]
                                              with_prob=False)
    if memo_fn is not None:
        memo = [float(x) for x in memo_fn(lm, forget_facts)]
        out["forget"]["memo"] = _mean(memo)
        if opts.include_items:
            out["forget"]["items"]["memo"] = memo
        if para:
            para_memo = [float(x) for x in memo_fn(lm, [replace(f, question=f.paraphrased_question) for f in para])]
            out["forget_paraphrased"]["memo"] = _mean(para_memo)
    if holdout_facts:
        member = membership_scores(lm, forget_facts, opts.k_pp, opts.k, opts.max_length, opts.batch_size)
        held = membership_scores(lm, holdout_facts, opts.k_pp, opts.k, opts.max_length, opts.batch_size)
        mem: dict[str, Any] = {
            "n_forget": len(forget_facts),
            "n_holdout": len(holdout_facts),
            "k_pp": opts.k_pp,
            "k": opts.k,
            "mink_pp_auc": membership_auc(member["mink_pp"], held["mink_pp"]),
            "mink_auc": membership_auc(member["mink"], held["mink"]),
            "forget_mink_pp_mean": float(member["mink_pp"].mean()),
            "holdout_mink_pp_mean": float(held["mink_pp"].mean()),
        }
        if opts.include_items:
            mem["items"] = {"forget_mink_pp": member["mink_pp"].tolist(), "holdout_mink_pp": held["mink_pp"].tolist(),
                            "forget_mink": member["mink"].tolist(), "holdout_mink": held["mink"].tolist()}
        out["membership"] = mem
    if retain_facts:
        out["retain"] = _qa_block(lm, retain_facts, opts)
    return out


#: (block, key) pairs whose after-minus-before difference the report shows
DELTA_KEYS = (
    ("forget", "prob"), ("forget", "rougeL"), ("forget", "memo"),
    ("forget_paraphrased", "rougeL"), ("forget_paraphrased", "memo"),
    ("membership", "mink_pp_auc"), ("membership", "mink_auc"),
    ("retain", "prob"), ("retain", "rougeL"),
)


def report_deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """``after - before`` for every headline number both probes have (e.g. ``retain_rougeL``)."""
    deltas: dict[str, float] = {}
    for block, key in DELTA_KEYS:
        b = before.get(block, {}).get(key)
        a = after.get(block, {}).get(key)
        if a is not None and b is not None:
            deltas[f"{block}_{key}"] = float(a) - float(b)
    return deltas


def forgetting_report(
    lm_after: LoadedModel,
    forget_facts: Sequence[Fact],
    *,
    holdout_facts: Sequence[Fact] | None = None,
    retain_facts: Sequence[Fact] | None = None,
    before: dict[str, Any] | None = None,
    options: ReportOptions | None = None,
    memo_fn: MemoFn | None = None,
) -> dict[str, Any]:
    """Probe the unlearned model; with ``before`` (a ``probe_model`` result) add the deltas."""
    opts = options or ReportOptions()
    after = probe_model(lm_after, forget_facts, holdout_facts=holdout_facts, retain_facts=retain_facts,
                        options=opts, memo_fn=memo_fn)
    report: dict[str, Any] = {"after": after, "settings": opts.model_dump()}
    if before is not None:
        report["before"] = before
        report["delta"] = report_deltas(before, after)
    return report
