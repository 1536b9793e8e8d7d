"""Unlearning methods: registry, parameter validation, and each loss on a tiny real model
(sign of the update, masking of prompt and padding, reference handling)."""

from __future__ import annotations

import copy
import dataclasses
import gc
import math

import pytest
import torch

from meow_engine.config import FinetuneConfig
from meow_engine.errors import ConfigError
from meow_engine.methods import METHODS, LossContext, make_method
from meow_engine.methods.losses import kl_reference_to_policy, mean_nll, sequence_nll
from meow_engine.methods.refusals import REFUSALS, load_refusals
from meow_engine.progress import Reporter
from meow_engine.prompts import IGNORE_INDEX, collate, encode_example
from meow_engine.training import TrainRow, finetune

ALL = ["altpo", "ce_u", "dpo", "ga", "gd", "idk", "idk_dpo", "idk_nll", "kl", "meow", "npo", "npo_gd", "pdu", "rmu",
       "satimp", "sft", "simnpo", "undial", "wga"]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def batch_of(lm, rows) -> dict[str, torch.Tensor]:
    exs = [encode_example(lm.tokenizer, lm.prompt_format, r.question, r.answer, 200) for r in rows]
    return collate(exs, lm.tokenizer.pad_token_id)


@torch.no_grad()
def nll_sum(lm, rows) -> float:
    b = batch_of(lm, rows)
    lm.model.eval()
    s, _ = sequence_nll(lm.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"])
    return float(s.sum())


def one_step(lm, forget, retain, method, params=None, mode="full", steps=1, lr=1e-3, reporter=None):
    cfg = FinetuneConfig(mode=mode, max_steps=steps, lr=lr, warmup_ratio=0.0, batch_size=len(forget))
    return finetune(lm, forget, cfg, method=method, method_params=params, retain_rows=retain, reporter=reporter)


# --- registry and parameters -------------------------------------------------------------------

def test_registry_has_meow_and_every_baseline_with_the_right_flags():
    assert METHODS.names() == ALL
    assert [n for n in ALL if METHODS.get(n).uses_inversions] == ["meow"]
    assert [n for n in ALL if METHODS.get(n).needs_reference] == ["altpo", "dpo", "idk_dpo", "kl", "npo", "npo_gd",
                                                                  "rmu", "undial"]
    assert [n for n in ALL if METHODS.get(n).needs_retain] == ["altpo", "gd", "idk", "idk_dpo", "idk_nll", "kl",
                                                               "npo_gd", "pdu", "rmu", "satimp", "simnpo", "wga"]
    with pytest.raises(ConfigError, match="unknown unlearning method 'nope'; known: altpo, ce_u, dpo, ga"):
        METHODS.get("nope")


def test_defaults_are_recorded():
    assert make_method("npo").params.beta == 0.1
    assert make_method("dpo").params.beta == 0.1
    assert make_method("npo_gd").params.model_dump() == {"beta": 0.1, "npo_coeff": 1.0, "retain_coeff": 1.0}
    assert make_method("simnpo").params.model_dump() == {"beta": 4.5, "gamma": 0.0, "forget_coeff": 0.125,
                                                        "retain_coeff": 1.0}
    # open-unlearning configs/trainer/*.yaml (and community/methods/PDU/run.sh for ε)
    assert make_method("idk_dpo").params.model_dump() == {"refusals_file": None, "beta": 0.1, "forget_coeff": 1.0,
                                                         "retain_coeff": 1.0}
    assert make_method("undial").params.beta == 10.0
    assert make_method("ce_u").params.ignore_first_n_answer_tokens == 1
    assert make_method("satimp").params.model_dump() == {"beta1": 5.0, "beta2": 1.0, "forget_coeff": 0.1,
                                                        "retain_coeff": 1.0}
    assert make_method("wga").params.model_dump() == {"beta": 1.0, "forget_coeff": 1.0, "retain_coeff": 1.0}
    assert make_method("rmu").params.model_dump() == {"layer": None, "steering_coeff": 2.0, "forget_coeff": 1.0,
                                                     "retain_coeff": 1.0, "seed": 0}
    assert make_method("pdu").params.model_dump() == {
        "retain_loss_eps": 0.3, "forget_coeff": 1.0, "retain_coeff": 1.0, "primal_dual": True, "dual_step_size": 1.0,
        "dual_warmup_ratio": 0.5}
    assert make_method("altpo").params.model_dump() == {"beta": 0.1, "forget_coeff": 1.0, "retain_coeff": 1.0,
                                                       "n_alternates": 5, "seed": 0}


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_is_a_one_line_config_error(name):
    with pytest.raises(ConfigError) as e:
        make_method(name, {"betta": 1})
    msg = str(e.value)
    assert f"method {name!r}" in msg and "unknown parameter 'betta'" in msg and "\n" not in msg


@pytest.mark.parametrize("name", ["npo", "npo_gd", "dpo", "simnpo", "idk_dpo", "altpo"])
@pytest.mark.parametrize("beta", [0, -0.5])
def test_beta_must_be_positive(name, beta):
    with pytest.raises(ConfigError, match=rf"method '{name}': beta: Input should be greater than 0"):
        make_method(name, {"beta": beta})
    # the pipeline validates through the class's Params directly: same error
    with pytest.raises(ConfigError, match="beta"):
        METHODS.get(name).Params(beta=beta)


def test_coefficients_must_be_non_negative_numbers():
    with pytest.raises(ConfigError, match="retain_coeff"):
        make_method("gd", {"retain_coeff": -1})
    with pytest.raises(ConfigError, match="kl_coeff"):
        make_method("kl", {"kl_coeff": "much"})


def test_refusals_builtin_and_from_file(tmp_path):
    assert len(set(REFUSALS)) >= 20
    p = tmp_path / "idk.jsonl"
    p.write_text('I do not know.\n\n"Not a clue."\n{"text": "No comment."}\n')
    assert load_refusals(p) == ["I do not know.", "Not a clue.", "No comment."]
    assert make_method("idk", {"refusals_file": str(p)}).refusals() == ["I do not know.", "Not a clue.", "No comment."]
    with pytest.raises(ConfigError, match="not found"):
        make_method("dpo", {"refusals_file": str(tmp_path / "missing.jsonl")})
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(ConfigError, match="no refusal answers"):
        load_refusals(tmp_path / "empty.txt")
    (tmp_path / "bad.jsonl").write_text('{"label": 1}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        load_refusals(tmp_path / "bad.jsonl")


# --- masking ---------------------------------------------------------------------------------

@torch.no_grad()
def test_nll_counts_answer_tokens_only_like_hf_and_by_hand(random_tiny, rows):
    lm = random_tiny
    forget, retain = rows
    b = batch_of(lm, forget + retain)
    assert (b["labels"] == IGNORE_INDEX).any(dim=1).all()  # prompts are masked
    assert (b["attention_mask"] == 0).any()  # and there is padding in this batch
    out = lm.model(**b)
    logits = lm.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    assert mean_nll(logits, b["labels"]).item() == pytest.approx(out.loss.item(), abs=1e-5)
    sums, counts = sequence_nll(logits, b["labels"])
    logp = torch.log_softmax(logits.float(), -1)
    for i in range(len(b["labels"])):
        ex = encode_example(lm.tokenizer, lm.prompt_format, (forget + retain)[i].question,
                            (forget + retain)[i].answer, 200)
        by_hand = -sum(logp[i, t - 1, ex.input_ids[t]].item() for t in range(ex.prompt_len, len(ex.input_ids)))
        assert sums[i].item() == pytest.approx(by_hand, rel=1e-5)
        assert counts[i].item() == ex.n_answer_tokens == len(ex.input_ids) - ex.prompt_len


@torch.no_grad()
def test_padding_does_not_contribute(random_tiny, rows):
    lm = random_tiny
    forget, retain = rows
    short = min(forget + retain, key=lambda r: len(r.question + r.answer))
    long = TrainRow(short.question, short.answer + " And much more text follows after that, at length.")
    alone = batch_of(lm, [short])
    padded = batch_of(lm, [short, long])
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]

    def seq(b):
        return sequence_nll(lm.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,
                            b["labels"])[0]

    assert seq(padded)[0].item() == pytest.approx(seq(alone)[0].item(), abs=1e-4)
    garbage = padded["input_ids"].clone()
    garbage[padded["attention_mask"] == 0] = 7  # junk under the padding positions
    b2 = {**padded, "input_ids": garbage}
    assert torch.allclose(seq(b2), seq(padded), atol=1e-6)
    # unmasking the prompt positions does change the loss: the mask is what keeps them out
    unmasked = padded["input_ids"].clone()
    unmasked[padded["attention_mask"] == 0] = IGNORE_INDEX
    b3 = {**padded, "labels": unmasked}
    assert not torch.allclose(seq(b3), seq(padded))


# --- loss formulas on a fixed batch ----------------------------------------------------------

@torch.no_grad()
def test_loss_formulas_against_hand_computation(random_tiny, rows, tmp_path):
    lm = random_tiny
    forget, retain = rows
    f, r = batch_of(lm, forget), batch_of(lm, retain)
    other = copy.deepcopy(lm.model)
    torch.manual_seed(1)
    for p in other.parameters():
        p.add_(0.02 * torch.randn_like(p))
    ctx = LossContext(model=lm.model, reference=lambda part: other(input_ids=part["input_ids"],
                                                                   attention_mask=part["attention_mask"]).logits)
    logits_f = lm.model(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).logits
    logits_r = lm.model(input_ids=r["input_ids"], attention_mask=r["attention_mask"]).logits
    nll_f, nll_r = mean_nll(logits_f, f["labels"]), mean_nll(logits_r, r["labels"])
    assert make_method("sft").loss(ctx, {"forget": f}) == pytest.approx(nll_f.item(), rel=1e-6)
    assert make_method("meow").loss(ctx, {"forget": f}) == pytest.approx(nll_f.item(), rel=1e-6)
    assert make_method("ga").loss(ctx, {"forget": f}) == pytest.approx(-nll_f.item(), rel=1e-6)
    gd = make_method("gd", {"forget_coeff": 0.5, "retain_coeff": 2.0}).loss(ctx, {"forget": f, "retain": r})
    assert gd.item() == pytest.approx(-0.5 * nll_f.item() + 2.0 * nll_r.item(), rel=1e-6)

    ref_r = other(input_ids=r["input_ids"], attention_mask=r["attention_mask"]).logits
    p_ref = torch.softmax(ref_r, -1)
    kl_by_hand = (p_ref * (torch.log_softmax(ref_r, -1) - torch.log_softmax(logits_r, -1))).sum() / (
        ref_r.shape[0] * ref_r.shape[1])
    assert kl_reference_to_policy(logits_r, ref_r).item() == pytest.approx(kl_by_hand.item(), rel=1e-4)
    assert kl_by_hand.item() > 0
    kl = make_method("kl", {"kl_coeff": 3.0}).loss(ctx, {"forget": f, "retain": r})
    assert kl.item() == pytest.approx(-nll_f.item() + 3.0 * kl_by_hand.item(), rel=1e-4)

    cur, n = sequence_nll(logits_f, f["labels"])
    ref, _ = sequence_nll(other(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).logits, f["labels"])
    beta = 0.3
    npo_by_hand = sum(-math.log(1 / (1 + math.exp(-beta * (c - q)))) for c, q in zip(cur.tolist(), ref.tolist(),
                                                                                    strict=True)) / len(cur) * 2 / beta
    assert make_method("npo", {"beta": beta}).loss(ctx, {"forget": f}).item() == pytest.approx(npo_by_hand, rel=1e-5)
    npo_gd = make_method("npo_gd", {"beta": beta, "npo_coeff": 0.5, "retain_coeff": 0.25})
    assert npo_gd.loss(ctx, {"forget": f, "retain": r}).item() == pytest.approx(
        0.5 * npo_by_hand + 0.25 * nll_r.item(), rel=1e-5)

    beta, gamma = 2.0, 0.7
    # γ is subtracted before β multiplies (SimNPO's code, open-unlearning's delta)
    sim_by_hand = sum(-math.log(1 / (1 + math.exp(-beta * (c / k - gamma)))) for c, k in zip(
        cur.tolist(), n.tolist(), strict=True)) / len(cur) * 2 / beta
    sim = make_method("simnpo", {"beta": beta, "gamma": gamma, "forget_coeff": 1.0, "retain_coeff": 0.5})
    assert sim.loss(ctx, {"forget": f, "retain": r}).item() == pytest.approx(sim_by_hand + 0.5 * nll_r.item(),
                                                                             rel=1e-5)

    # IDK: one token mean over refusal rows and retain rows together, as TOFU's concatenated batch
    idk_rows = [TrainRow(x.question, "I don't know.") for x in forget]
    i = batch_of(lm, idk_rows)
    both = batch_of(lm, idk_rows + retain)
    hf = lm.model(**both).loss.item()
    assert make_method("idk").loss(ctx, {"idk": i, "retain": r}).item() == pytest.approx(hf, rel=1e-5)

    # DPO: Δ and the loss by hand
    win = sequence_nll(lm.model(input_ids=i["input_ids"], attention_mask=i["attention_mask"]).logits, i["labels"])[0]
    win_ref = sequence_nll(other(input_ids=i["input_ids"], attention_mask=i["attention_mask"]).logits,
                           i["labels"])[0]
    delta = (win_ref - win) - (ref - cur)
    dpo = make_method("dpo", {"beta": 0.5})
    assert torch.allclose(dpo.margin(ctx, {"idk": i, "forget": f}), delta, atol=1e-4)
    dpo_by_hand = (-torch.nn.functional.logsigmoid(0.5 * delta)).mean().item() * 2 / 0.5
    assert dpo.loss(ctx, {"idk": i, "forget": f}).item() == pytest.approx(dpo_by_hand, rel=1e-5)


# --- sign: one optimizer step moves the forget NLL the intended way ----------------------------

@pytest.mark.parametrize("method,params", [
    ("ga", None), ("gd", {"retain_coeff": 0.0}), ("kl", None), ("npo", None),
    ("npo_gd", {"retain_coeff": 0.0}),
    # β small: with the default β = 4.5 the loss is saturated on an untrained model (NLL/token ≈ 6)
    ("simnpo", {"retain_coeff": 0.0, "beta": 0.1}),
])
def test_unlearning_step_raises_forget_nll(fresh, rows, method, params):
    forget, retain = rows
    before = nll_sum(fresh, forget)
    res = one_step(fresh, forget, retain, method, params)
    assert res.steps == 1
    assert nll_sum(res.lm, forget) > before + 1e-3


@pytest.mark.parametrize("method", ["sft", "meow"])
def test_learning_step_lowers_nll(fresh, rows, method):
    forget, retain = rows
    before = nll_sum(fresh, forget)
    res = one_step(fresh, forget, retain, method)
    assert nll_sum(res.lm, forget) < before - 1e-3


def test_retain_terms_lower_retain_nll(random_tiny, rows):
    forget, retain = rows
    for method, params in [("gd", {"forget_coeff": 0.0}), ("simnpo", {"forget_coeff": 0.0}),
                           ("npo_gd", {"npo_coeff": 0.0})]:
        lm = dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))
        before = nll_sum(lm, retain)
        res = one_step(lm, forget, retain, method, params)
        assert nll_sum(res.lm, retain) < before - 1e-3, method


def test_idk_and_dpo_prefer_the_refusal(random_tiny, rows, tmp_path):
    forget, retain = rows
    refusal = tmp_path / "one.txt"
    refusal.write_text("I have no idea.\n")
    idk_rows = [TrainRow(r.question, "I have no idea.") for r in forget]
    lm = dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))
    before = nll_sum(lm, idk_rows)
    res = one_step(lm, forget, retain, "idk", {"refusals_file": str(refusal)})
    assert nll_sum(res.lm, idk_rows) < before - 1e-3

    lm = dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))
    win0, lose0 = nll_sum(lm, idk_rows), nll_sum(lm, forget)
    res = one_step(lm, forget, retain, "dpo", {"refusals_file": str(refusal)})
    # Δ > 0 after the step: the refusal gained log-probability relative to the forget answer
    delta = (win0 - nll_sum(res.lm, idk_rows)) - (lose0 - nll_sum(res.lm, forget))
    assert delta > 1e-3


# --- reference handling -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["lora", "full"])
@pytest.mark.parametrize("method,beta", [("npo", 0.1), ("npo", 0.5), ("dpo", 0.1), ("dpo", 2.0)])
def test_reference_equals_policy_at_step_zero(fresh, rows, mode, method, beta):
    forget, retain = rows
    res = one_step(fresh, forget, retain, method, {"beta": beta}, mode=mode, steps=2, lr=5e-3)
    assert res.losses[0] == pytest.approx(2 / beta * math.log(2), abs=1e-5)
    assert abs(res.losses[1] - res.losses[0]) > 1e-5  # after one update policy and reference differ


def test_kl_is_zero_at_step_zero_with_lora(fresh, rows):
    forget, retain = rows
    expected = -nll_sum(fresh, forget)  # summed; convert to the token mean below
    b = batch_of(fresh, forget)
    n_tokens = int((b["labels"][:, 1:] != IGNORE_INDEX).sum())
    res = one_step(fresh, forget, retain, "kl", mode="lora", steps=1)
    assert res.losses[0] == pytest.approx(expected / n_tokens, abs=1e-5)


@torch.no_grad()
def test_lora_reference_is_the_original_model(fresh, rows):
    forget, retain = rows
    original = copy.deepcopy(fresh.model)
    res = one_step(fresh, forget, retain, "npo", mode="lora", steps=3, lr=1e-2)
    b = batch_of(fresh, forget)
    trained = res.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    with res.model.disable_adapter():
        ref = res.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    orig = original(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    assert torch.allclose(ref, orig, atol=1e-6)
    assert not torch.allclose(trained, orig, atol=1e-4)


def _count_llamas() -> int:
    from transformers import LlamaForCausalLM

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, LlamaForCausalLM))


@pytest.mark.parametrize("mode,extra", [("lora", 0), ("full", 1)])
def test_lora_reference_makes_no_second_model_copy(fresh, rows, mode, extra):
    forget, retain = rows
    baseline = _count_llamas()
    seen: list[int] = []
    one_step(fresh, forget, retain, "npo", mode=mode, steps=1,
             reporter=Reporter(progress=lambda ev: seen.append(_count_llamas())))
    assert seen == [baseline + extra]
