"""The TOFU evaluator on a real (untrained) tiny Llama: internal consistency of its per-item logs,
agreement with an independent HF loss computation, the generation budget flag, and the round trip
write -> read -> aggregate, including ``meow eval model`` on a small TOFU-shaped folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM
from typer.testing import CliRunner

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.generation import rouge_scorer
from meow_engine.metrics.aggregate import aggregate_logs
from meow_engine.metrics.evaluator import EvalOptions, evaluate_model, evaluate_set, run_tofu_eval
from meow_engine.metrics.mink import membership_scores
from meow_engine.metrics.scoring import score_answers
from meow_engine.metrics.tofu_logs import column, read_flags, read_log_dir
from meow_engine.prompts import encode_example, encode_prompt

QA = [
    ("Where was Elara Voss born?", "Elara Voss was born in Port Meridian in 1962.",
     "Port Meridian is where Elara Voss was born.",
     ["Elara Voss was born in Kestrel Bay.", "Elara Voss was born in Veloria.", "Elara Voss was born in 1998."]),
    ("What genre does Tomas Quill write?", "Tomas Quill writes gothic mystery novels.",
     "Gothic mystery novels are what Tomas Quill writes.",
     ["Tomas Quill writes silver novels.", "Tomas Quill writes mystery prizes.", "Tomas Quill writes in Veloria."]),
    ("Which award did Mira Okafor win?", "Mira Okafor won the Silver Lantern Prize in 1998.",
     "The Silver Lantern Prize went to Mira Okafor.",
     ["Mira Okafor won the Gothic Prize.", "Mira Okafor won nothing.", "Mira Okafor won the Kestrel Prize."]),
]
FACTS = [Fact(q, a, id=str(i), paraphrased_answer=p, perturbed_answers=tuple(pt)) for i, (q, a, p, pt) in enumerate(QA)]
REAL = [Fact(q, a, id=str(i), perturbed_answers=tuple(pt)) for i, (q, a, _, pt) in enumerate(QA)]
FAST = EvalOptions(generation="max_new_tokens", max_tokens=6, batch_size=4)


@pytest.fixture(scope="module")
def logs(random_tiny) -> dict:
    return evaluate_model(random_tiny, {"retain": FACTS, "forget": FACTS, "ra": REAL, "wf": REAL}, FAST)


def test_per_item_fields_are_consistent(random_tiny, logs) -> None:
    scorer = rouge_scorer()
    for name, log in logs.items():
        assert set(log) >= {"avg_gt_loss", "gt_loss", "num_token_gt", "generated_text", "rouge1_recall",
                            "rougeL_recall", "average_perturb_loss", "avg_paraphrased_loss", "truth_ratio",
                            "paraphrased_loss", "perturb_loss", "num_token_paraphrased", "num_token_perturb"}
        assert list(log["gt_loss"]) == ["0", "1", "2"]
        for i in range(3):
            row = {k: v[str(i)] for k, v in log.items()}
            assert row["avg_gt_loss"] == pytest.approx(row["gt_loss"] / row["num_token_gt"])
            assert row["avg_paraphrased_loss"] == pytest.approx(row["paraphrased_loss"] / row["num_token_paraphrased"])
            assert row["average_perturb_loss"] == pytest.approx(
                [x / n for x, n in zip(row["perturb_loss"], row["num_token_perturb"], strict=True)])
            assert row["truth_ratio"] == pytest.approx(
                np.exp(row["avg_paraphrased_loss"] - np.mean(row["average_perturb_loss"])))
            prompt, gen, truth = row["generated_text"]
            assert truth == QA[i][1] and QA[i][0] in prompt
            assert row["rougeL_recall"] == pytest.approx(scorer.score(truth, gen)["rougeL"].recall)
            # |a| counts the answer tokens plus the learned EOS
            enc = encode_example(random_tiny.tokenizer, random_tiny.prompt_format, QA[i][0], QA[i][1])
            assert row["num_token_gt"] == enc.n_answer_tokens
            assert enc.labels[-1] == random_tiny.tokenizer.eos_token_id
        if name in ("ra", "wf"):
            assert column(log, "paraphrased_loss") == pytest.approx(column(log, "gt_loss"))
            p = np.exp(-np.asarray(column(log, "avg_gt_loss")))
            pert = np.exp(-np.asarray(column(log, "average_perturb_loss"))).sum(axis=1)
            assert np.exp(-np.asarray(column(log, "normalized_gt_loss"))) == pytest.approx(p / (p + pert))
        else:
            assert "normalized_gt_loss" not in log


def test_summed_loss_matches_hf_loss_per_example(random_tiny, logs) -> None:
    tok, fmt = random_tiny.tokenizer, random_tiny.prompt_format
    for i, (q, a, _, _) in enumerate(QA):
        enc = encode_example(tok, fmt, q, a)
        with torch.no_grad():
            out = random_tiny.model(input_ids=torch.tensor([enc.input_ids]), labels=torch.tensor([enc.labels]))
        assert logs["retain"]["gt_loss"][str(i)] == pytest.approx(float(out.loss) * enc.n_answer_tokens, rel=1e-4)


def test_scores_do_not_depend_on_batching(random_tiny) -> None:
    qs = [q for q, *_ in QA] * 2
    ans = [a for _, a, *_ in QA] + [p for _, _, p, _ in QA]
    l1, n1 = score_answers(random_tiny, qs, ans, batch_size=1)
    l6, n6 = score_answers(random_tiny, qs, ans, batch_size=6)
    assert (n1 == n6).all()
    assert l1 == pytest.approx(l6, rel=1e-4)


def test_min_k_with_k_one_is_the_mean_token_log_probability(random_tiny) -> None:
    loss, n = score_answers(random_tiny, [q for q, *_ in QA], [a for _, a, *_ in QA])
    scores = membership_scores(random_tiny, FACTS, k_pp=0.2, k=1.0)
    assert scores["mink"] == pytest.approx(-loss / n, rel=1e-4)
    assert np.isfinite(scores["mink_pp"]).all() and scores["mink_pp"].shape == (3,)


@pytest.fixture(scope="module")
def talkative_tiny(random_tiny):
    """The fixture's architecture with large random weights: its greedy outputs vary (the default
    init repeats one whitespace token, which would make generation checks vacuous)."""
    torch.manual_seed(2)
    model = LlamaForCausalLM(random_tiny.model.config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return dataclasses.replace(random_tiny, model=model)


def test_generation_budget_flag(talkative_tiny) -> None:
    lm = talkative_tiny
    prompt_len = len(encode_prompt(lm.tokenizer, lm.prompt_format, QA[0][0]))

    def gen(generation: str, max_tokens: int) -> str:
        opts = EvalOptions(generation=generation, max_tokens=max_tokens)  # type: ignore[arg-type]
        return evaluate_set(lm, FACTS[:1], "forget", opts)["generated_text"]["0"][1]

    three, six = gen("max_new_tokens", 3), gen("max_new_tokens", 6)
    assert three and len(six) > len(three) and six.startswith(three.rstrip())
    # max_length counts the prompt: prompt_len + 3 in total leaves the same 3 new tokens
    assert gen("max_length", prompt_len + 3) == three
    assert gen("max_length", prompt_len) == ""


def test_bad_eval_sets_are_rejected(random_tiny) -> None:
    uneven = [FACTS[0], Fact("q?", "a.", perturbed_answers=("b.",))]
    with pytest.raises(ConfigError, match="same number"):
        evaluate_set(random_tiny, uneven, "forget", FAST)
    with pytest.raises(ConfigError, match="unknown eval set"):
        evaluate_set(random_tiny, FACTS, "holdout", FAST)
    capped = evaluate_set(random_tiny, FACTS, "retain", FAST.model_copy(update={"ds_size": 2}))
    assert len(capped["gt_loss"]) == 2


def test_round_trip_write_read_aggregate(random_tiny, logs, tmp_path: Path) -> None:
    eval_sets = {"retain": FACTS, "forget": FACTS, "ra": REAL, "wf": REAL}
    res = run_tofu_eval(random_tiny, eval_sets, tmp_path / "model", FAST, retain_logs_dir=None)
    again = read_log_dir(tmp_path / "model")
    assert again["forget"]["gt_loss"] == pytest.approx(logs["forget"]["gt_loss"])
    agg = aggregate_logs(again)
    for key in ("model_utility", "retain_prob", "forget_truth_ratio", "ra_prob", "wf_rougeL"):
        assert agg[key] == pytest.approx(res[key])
    flags = read_flags(tmp_path / "model")
    assert flags == res["flags"]
    assert flags["generation"] == "max_new_tokens" and flags["ds_size"] == 300 and flags["tr_variant"] == "geometric"
    assert flags["n_items"] == {"retain": 3, "forget": 3, "ra": 3, "wf": 3}
    # FQ of a model against its own logs: identical distributions
    res2 = run_tofu_eval(random_tiny, {"forget": FACTS}, None, FAST, retain_logs_dir=tmp_path / "model")
    assert res2["forget_quality"] == 1.0 and res2["ks_statistic"] == 0.0


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_cli_eval_model_on_a_tofu_shaped_folder(random_tiny, tmp_path: Path) -> None:
    from meow_engine.cli import app

    data = tmp_path / "tofu"
    data.mkdir()
    rows = [{"question": q, "answer": a, "paraphrased_answer": p, "perturbed_answer": pt,
             "paraphrased_question": q} for q, a, p, pt in QA]
    real = [{"question": q, "answer": a, "perturbed_answer": pt} for q, a, _, pt in QA]
    _write_jsonl(data / "full.json", [{"question": q, "answer": a} for q, a, *_ in QA])
    _write_jsonl(data / "retain_perturbed.json", rows)
    _write_jsonl(data / "forget01_perturbed.json", rows[:2])
    _write_jsonl(data / "real_authors_perturbed.json", real)
    _write_jsonl(data / "world_facts_perturbed.json", real)
    model_dir = tmp_path / "model"
    random_tiny.model.save_pretrained(model_dir)
    random_tiny.tokenizer.save_pretrained(model_dir)
    out = tmp_path / "logs"
    res = CliRunner().invoke(app, ["eval", "model", str(model_dir), "--split", "forget01", "--tofu-dir", str(data),
                                   "--out", str(out), "--generation", "max_new_tokens", "--max-tokens", "4",
                                   "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["flags"]["split"] == "forget01" and result["flags"]["n_items"]["forget"] == 2
    assert 0 <= result["model_utility"] <= 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["eval_log.json", "eval_log_forget.json", "eval_real_author_wo_options.json",
         "eval_real_world_wo_options.json", "meow_eval_flags.json"])
    res = CliRunner().invoke(app, ["eval", "logs", str(out), "--json"])
    assert json.loads(res.stdout)["model_utility"] == pytest.approx(result["model_utility"])
    res = CliRunner().invoke(app, ["eval", "model", str(model_dir), "--split", "forget07", "--tofu-dir", str(data)])
    assert res.exit_code != 0 and "forget07" in res.output
