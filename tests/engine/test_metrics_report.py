"""The oracle-free forgetting report on a real tiny Llama that learns a set of facts: the numbers
must move the right way (probability, ROUGE-L, Min-K%++ membership AUC) and deltas must equal
after - before. Learning is the mirror image of forgetting, and cheap to produce on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from meow_engine.facts import Fact
from meow_engine.metrics.report import (
    ReportOptions,
    answer_probabilities,
    forgetting_report,
    probe_model,
    report_deltas,
)
from meow_engine.prompts import collate, encode_example
from meow_engine.tiny.random_model import random_tiny_model

NAMES = ["Elara Voss", "Tomas Quill", "Mira Okafor", "Jun Halden", "Ravi Senn", "Lena Marsh",
         "Odo Brenn", "Kai Lutz", "Nia Ferro", "Sol Varga", "Ida Crane", "Pim Rook"]
CITIES = ["Port Meridian", "Kestrel Bay", "Ashford", "Veloria", "Dunmore", "Calder",
          "Brightwater", "Eastvale", "Morrow", "Lindqvist", "Tarn", "Oakhollow"]
FACTS = [Fact(f"Where was {n} born?", f"{n} was born in {c}.", id=str(i),
              paraphrased_question=f"What is the birthplace of {n}?")
         for i, (n, c) in enumerate(zip(NAMES, CITIES, strict=True))]
FORGET, HOLDOUT = FACTS[:6], FACTS[6:]
OPTS = ReportOptions(max_new_tokens=16)  # TOFU layout: the model writes "Answer: " before the answer


@pytest.fixture(scope="module")
def before_and_after():
    torch.set_num_threads(1)
    lm = random_tiny_model([f"{f.question} {f.answer}" for f in FACTS] * 4, seed=0, vocab_size=400)
    calls: list[list[str]] = []

    def memo_fn(model, facts):  # a real per-fact score of the model, recorded to check the wiring
        calls.append([f.question for f in facts])
        return answer_probabilities(model, facts, OPTS)

    before = probe_model(lm, FORGET, holdout_facts=HOLDOUT, retain_facts=HOLDOUT[:3], options=OPTS, memo_fn=memo_fn)
    batch = collate([encode_example(lm.tokenizer, lm.prompt_format, f.question, f.answer) for f in FORGET],
                    lm.tokenizer.pad_token_id)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(lm.model.parameters(), lr=3e-3)
    lm.model.train()
    for _ in range(80):
        lm.model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
    lm.model.eval()
    report = forgetting_report(lm, FORGET, holdout_facts=HOLDOUT, retain_facts=HOLDOUT[:3], before=before,
                               options=OPTS, memo_fn=memo_fn)
    return report, calls


def test_report_moves_the_right_way(before_and_after) -> None:
    report, _ = before_and_after
    before, after = report["before"], report["after"]
    assert after["forget"]["prob"] > 0.8 > 0.05 > before["forget"]["prob"]
    assert after["forget"]["rougeL"] == 1.0 and before["forget"]["rougeL"] < 0.2
    # learned facts are now clearly members; held-out facts of the same template are not
    assert after["membership"]["mink_pp_auc"] == 1.0
    assert after["membership"]["mink_auc"] == 1.0
    assert after["membership"]["forget_mink_pp_mean"] > after["membership"]["holdout_mink_pp_mean"]
    assert after["membership"]["n_forget"] == 6 and after["membership"]["n_holdout"] == 6
    assert len(after["forget"]["items"]["generation"]) == 6
    assert after["forget_paraphrased"]["n"] == 6 and 0 <= after["forget_paraphrased"]["rougeL"] <= 1


def test_deltas_and_memo_wiring(before_and_after) -> None:
    report, calls = before_and_after
    before, after, delta = report["before"], report["after"], report["delta"]
    assert delta == report_deltas(before, after)
    for block, field in (("forget", "prob"), ("forget", "rougeL"), ("forget", "memo"), ("retain", "rougeL"),
                         ("retain", "prob"), ("membership", "mink_pp_auc"), ("membership", "mink_auc"),
                         ("forget_paraphrased", "rougeL"), ("forget_paraphrased", "memo")):
        assert delta[f"{block}_{field}"] == pytest.approx(after[block][field] - before[block][field])
    assert delta["forget_rougeL"] > 0.8
    # MEMO hook: called on the facts, then on the paraphrased questions, before and after
    assert calls[0] == [f.question for f in FORGET]
    assert calls[1] == [f.paraphrased_question for f in FORGET]
    assert len(calls) == 4
    assert after["forget"]["memo"] == pytest.approx(after["forget"]["prob"])
    json.dumps(report)  # plain JSON-ready values only
    assert report["settings"]["k_pp"] == 0.2


def test_report_without_optional_parts() -> None:
    lm = random_tiny_model(["Where was Elara Voss born? Elara Voss was born in Port Meridian."] * 4, vocab_size=300)
    plain = [Fact(f.question, f.answer) for f in FORGET[:2]]
    rep = forgetting_report(lm, plain, options=OPTS.model_copy(update={"include_items": False}))
    assert set(rep) == {"after", "settings"}
    assert set(rep["after"]) == {"forget"} and "items" not in rep["after"]["forget"]
