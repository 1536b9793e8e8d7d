"""Run a model on TOFU's eval sets and produce per-item logs in TOFU's own layout.

Defaults follow the legacy protocol (``locuslab/tofu``, tofu-metrics.md §1-§6) because the only
retain-model references we have (TOFU's committed logs) were made with it: each set capped to its
first 300 rows, scoring truncated at 200 tokens, greedy generation limited to ``max_length=200``
*total* tokens (prompt included), geometric truth ratio. ``ds_size=None`` and
``generation="max_new_tokens"`` give the open-unlearning protocol. The settings travel with the
logs (``flags``) because numbers from different settings are not comparable.

Deliberate difference from legacy: the ``max_length`` budget is applied per row (prompt length of
that row) rather than to the left-padded batch width, so results do not depend on batching.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.generation import generate_from_ids, rouge_scorer
from meow_engine.metrics.aggregate import EVAL_SETS, aggregate_logs
from meow_engine.metrics.scoring import EVAL_MAX_LENGTH, score_answers
from meow_engine.metrics.tofu_logs import TofuLog, log_from_items, read_log_dir, write_log_dir
from meow_engine.models import LoadedModel
from meow_engine.progress import NULL_REPORTER, Reporter
from meow_engine.prompts import encode_prompt


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ds_size: int | None = Field(300, ge=1, description="keep the first N rows per set (legacy 300); None = all")
    generation: Literal["max_length", "max_new_tokens"] = Field(
        "max_length", description="max_length: the token limit counts the prompt (legacy); max_new_tokens: it does not"
    )
    max_tokens: int = Field(200, ge=1, le=4096, description="the generation token limit")
    max_length: int = Field(EVAL_MAX_LENGTH, ge=8, le=8192, description="scoring truncation (prompt + answer + EOS)")
    tr_variant: Literal["geometric", "arithmetic"] = "geometric"
    batch_size: int = Field(16, ge=1, le=1024)


def evaluation_flags(options: EvalOptions, lm: LoadedModel | None = None,
                     n_items: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The settings that change numbers; recorded with every result."""
    flags: dict[str, Any] = {
        "protocol": "legacy" if options.ds_size == 300 and options.generation == "max_length" else "custom",
        "ds_size": options.ds_size,
        "generation": options.generation,
        "max_tokens": options.max_tokens,
        "max_length": options.max_length,
        "tr_variant": options.tr_variant,
    }
    if lm is not None:
        flags["model"] = lm.ref
        flags["prompt_format"] = lm.prompt_format.name
    if n_items is not None:
        flags["n_items"] = dict(n_items)
    return flags


def _generate(lm: LoadedModel, questions: Sequence[str], options: EvalOptions) -> tuple[list[str], list[str]]:
    """Prompt texts and greedy generations under the configured token budget."""
    tok = lm.tokenizer
    prompts = [encode_prompt(tok, lm.prompt_format, q) for q in questions]
    if options.generation == "max_new_tokens":
        budgets = [options.max_tokens] * len(prompts)
    else:
        budgets = [max(0, options.max_tokens - len(p)) for p in prompts]
    gens = generate_from_ids(lm, prompts, max_new_tokens=max(1, max(budgets)), batch_size=options.batch_size)
    # Greedy decoding is prefix-stable, so cutting a longer run at a row's budget equals stopping there.
    texts = [tok.decode(g[:b], skip_special_tokens=True).strip() for g, b in zip(gens, budgets, strict=True)]
    prompt_texts = [lm.prompt_format.prompt_text(tok, q) for q in questions]
    return prompt_texts, texts


def evaluate_set(lm: LoadedModel, facts: Sequence[Fact], eval_set: str, options: EvalOptions | None = None,
                 reporter: Reporter = NULL_REPORTER) -> TofuLog:
    """Per-item TOFU log of one eval set.

    Base answer for the truth ratio: ``paraphrased_answer`` when the facts carry one (forget,
    retain), else the answer itself (real authors, world facts, as legacy). Every fact needs the
    same number of perturbed answers.
    """
    opts = options or EvalOptions()
    if eval_set not in EVAL_SETS:
        raise ConfigError(f"unknown eval set {eval_set!r}; known: {', '.join(EVAL_SETS)}")
    facts = list(facts)[: opts.ds_size] if opts.ds_size else list(facts)
    if not facts:
        raise ConfigError(f"eval set {eval_set!r} is empty")
    k = len(facts[0].perturbed_answers)
    for i, f in enumerate(facts):
        if len(f.perturbed_answers) != k or k == 0:
            raise ConfigError(f"{eval_set} row {i}: every fact needs the same number (>0) of perturbed answers")
    questions = [f.question for f in facts]
    bs, ml = opts.batch_size, opts.max_length
    reporter.emit(f"eval {eval_set}", 0, 3)
    gt_loss, gt_n = score_answers(lm, questions, [f.answer for f in facts], ml, bs)
    if any(f.paraphrased_answer for f in facts):
        para_loss, para_n = score_answers(lm, questions, [f.paraphrased_answer or f.answer for f in facts], ml, bs)
    else:  # RA/WF: the base answer is the answer itself (legacy re-scored it in a second pass)
        para_loss, para_n = gt_loss, gt_n
    reporter.emit(f"eval {eval_set}", 1, 3)
    reporter.check_stop()
    pert_loss, pert_n = score_answers(lm, [q for q in questions for _ in range(k)],
                                      [a for f in facts for a in f.perturbed_answers], ml, bs)
    pert_loss, pert_n = pert_loss.reshape(len(facts), k), pert_n.reshape(len(facts), k)
    reporter.emit(f"eval {eval_set}", 2, 3)
    reporter.check_stop()
    prompts, gens = _generate(lm, questions, opts)
    reporter.emit(f"eval {eval_set}", 3, 3)
    scorer = rouge_scorer()
    items: list[dict[str, Any]] = []
    for i, f in enumerate(facts):
        avg_gt = gt_loss[i] / gt_n[i]
        avg_para = para_loss[i] / para_n[i]
        avg_pert = pert_loss[i] / pert_n[i]
        rouge = scorer.score(f.answer, gens[i])
        item: dict[str, Any] = {
            "avg_gt_loss": float(avg_gt),
            "gt_loss": float(gt_loss[i]),
            "num_token_gt": int(gt_n[i]),
            "generated_text": [prompts[i], gens[i], f.answer],
            "rouge1_recall": float(rouge["rouge1"].recall),
            "rougeL_recall": float(rouge["rougeL"].recall),
            "average_perturb_loss": [float(x) for x in avg_pert],
            "avg_paraphrased_loss": float(avg_para),
            "truth_ratio": float(np.exp(avg_para - avg_pert.mean())),
            "paraphrased_loss": float(para_loss[i]),
            "perturb_loss": [float(x) for x in pert_loss[i]],
            "num_token_paraphrased": int(para_n[i]),
            "num_token_perturb": [int(x) for x in pert_n[i]],
        }
        if eval_set in ("ra", "wf"):
            p = math.exp(-avg_gt)
            item["normalized_gt_loss"] = float(-math.log(p / (p + float(np.exp(-avg_pert).sum()))))
        items.append(item)
    return log_from_items(items)


def evaluate_model(lm: LoadedModel, eval_sets: Mapping[str, Sequence[Fact]], options: EvalOptions | None = None,
                   reporter: Reporter = NULL_REPORTER) -> dict[str, TofuLog]:
    """Per-item TOFU logs for each given eval set (any of retain, forget, ra, wf)."""
    opts = options or EvalOptions()
    return {s: evaluate_set(lm, facts, s, opts, reporter) for s, facts in eval_sets.items()}


def run_tofu_eval(
    lm: LoadedModel,
    eval_sets: Mapping[str, Sequence[Fact]],
    out_dir: str | Path | None = None,
    options: EvalOptions | None = None,
    retain_logs_dir: str | Path | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> dict[str, Any]:
    """Evaluate, optionally write the logs (TOFU layout + flags sidecar), and aggregate.

    ``retain_logs_dir`` is a folder with the matching retain model's ``eval_log_forget.json``;
    Forget Quality is computed against it (item sets must match row by row).
    """
    opts = options or EvalOptions()
    logs = evaluate_model(lm, eval_sets, opts, reporter)
    flags = evaluation_flags(opts, lm, {s: len(next(iter(log.values()))) for s, log in logs.items()})
    if out_dir is not None:
        write_log_dir(logs, out_dir, flags)
    retain_forget = read_log_dir(retain_logs_dir, ["forget"])["forget"] if retain_logs_dir is not None else None
    result = aggregate_logs(logs, retain_forget, opts.tr_variant)
    result["flags"] = flags
    return result
