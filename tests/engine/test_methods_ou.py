"""The methods added for parity with open-unlearning: names and aliases, the torch-free catalog,
each loss against a hand computation (explicit loops over rows and positions, not the library's
helpers), their stateful parts (PDU's dual variable, RMU's direction and reference activations),
and every registered method through ``unlearn()`` on the demo model in LoRA and full mode."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import pytest
import torch
from test_methods import batch_of

from meow_engine.config import FinetuneConfig, UnlearnConfig
from meow_engine.errors import ConfigError
from meow_engine.methods import CATALOG, METHODS, LossContext, make_method
from meow_engine.methods.refusals import REFUSALS
from meow_engine.methods.rmu import resolve_layer
from meow_engine.prompts import IGNORE_INDEX
from meow_engine.training import TrainRow, finetune
from meow_engine.training.data import BatchStream

OU_ALIASES = {"GradAscent": "ga", "GradDiff": "gd", "NPO": "npo_gd", "SimNPO": "simnpo", "IdkDPO": "idk_dpo",
              "IdkNLL": "idk_nll", "AltPO": "altpo", "RMU": "rmu", "UNDIAL": "undial", "CEU": "ce_u", "CE-U": "ce_u",
              "SatImp": "satimp", "WGA": "wga", "PDU": "pdu"}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)




def fwd(model, b, **kw):
    return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], **kw)


def answer_steps(b) -> list[tuple[int, int, int]]:
    """(row, position t, target token) for every position t whose next label is an answer token."""
    lab = b["labels"]
    return [(i, t, int(lab[i, t + 1])) for i in range(lab.shape[0]) for t in range(lab.shape[1] - 1)
            if lab[i, t + 1] != IGNORE_INDEX]


def seq_nll_by_hand(logits, b) -> list[float]:
    logp = torch.log_softmax(logits.double(), -1)
    out = [0.0] * logits.shape[0]
    for i, t, y in answer_steps(b):
        out[i] -= logp[i, t, y].item()
    return out


def mean_nll_by_hand(logits, b) -> float:
    steps = answer_steps(b)
    return sum(seq_nll_by_hand(logits, b)) / len(steps)


@pytest.fixture
def setup(random_tiny, rows):
    """Policy = the tiny model, reference = a perturbed copy (so every ratio is non-trivial)."""
    lm = random_tiny
    forget, retain = rows
    other = copy.deepcopy(lm.model)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ctx = LossContext(model=lm.model, reference=lambda part: fwd(other, part).logits,
                      run_reference=lambda fn: fn(other))
    return lm, ctx, other, batch_of(lm, forget), batch_of(lm, retain), forget


# --- names, aliases, catalog ---------------------------------------------------------------------

def test_open_unlearning_names_are_aliases():
    for alias, name in OU_ALIASES.items():
        assert METHODS.get(alias) is METHODS.get(name), alias
        assert CATALOG.canonical(alias) == name
        assert alias in METHODS
    assert CATALOG.aliases() == dict(sorted(OU_ALIASES.items()))
    assert make_method("NPO").needs_retain and make_method("NPO").name == "npo_gd"  # not meow's pure npo
    assert "DPO" not in METHODS  # ambiguous: open-unlearning's DPO is idk_dpo or altpo depending on the data
    with pytest.raises(ConfigError, match="open-unlearning names: AltPO"):
        METHODS.get("DPO")
    with pytest.raises(ConfigError, match="method 'rmu': unknown parameter 'module_regex'"):
        make_method("RMU", {"module_regex": "x"})


def test_catalog_describes_every_registered_method():
    described = {d["name"]: d for d in CATALOG.describe()}
    assert sorted(described) == METHODS.names()
    for name, d in described.items():
        cls = METHODS.get(name)
        assert (d["needs_retain"], d["needs_reference"], d["uses_inversions"], tuple(d["parts"])) == (
            cls.needs_retain, cls.needs_reference, cls.uses_inversions, cls.parts)
        assert [p["name"] for p in d["params"]] == list(cls.Params.model_fields)
        assert d["params_schema"]["type"] == "object"
    assert {p["name"]: p["default"] for p in described["satimp"]["params"]}["forget_coeff"] == 0.1
    assert CATALOG.validate("SimNPO", {"beta": 2}) == {"beta": 2.0, "gamma": 0.0, "forget_coeff": 0.125,
                                                       "retain_coeff": 1.0}
    with pytest.raises(ConfigError, match="method 'pdu': dual_step_size"):
        CATALOG.validate("pdu", {"dual_step_size": -1})


def test_catalog_imports_without_torch():
    code = ("import sys; from meow_engine.methods.catalog import CATALOG; import meow_engine.methods; "
            "CATALOG.validate('rmu', {'layer': 3}); CATALOG.describe(); "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(len(CATALOG.names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(METHODS.names()))


def test_registry_reached_through_base_alone_knows_every_method():
    """The trainer imports ``methods.base`` only; the lazy package must still register everything."""
    code = ("from meow_engine.methods.base import METHODS, make_method; "
            "print(make_method('sft').name, make_method('RMU').name, len(METHODS.names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sft", "rmu", str(len(CATALOG.names()))]


# --- losses by hand ------------------------------------------------------------------------------

@torch.no_grad()
def test_wga_and_satimp(setup):
    lm, ctx, _, f, r, _ = setup
    lf, lr_ = fwd(lm.model, f).logits, fwd(lm.model, r).logits
    logp = torch.log_softmax(lf.double(), -1)
    nll_r = mean_nll_by_hand(lr_, r)

    def weighted(w):
        terms = [w(math.exp(logp[i, t, y].item())) * -logp[i, t, y].item() for i, t, y in answer_steps(f)]
        return -sum(terms) / len(terms)

    wga = make_method("wga", {"beta": 2.0, "forget_coeff": 0.7, "retain_coeff": 0.3})
    assert wga.loss(ctx, {"forget": f, "retain": r}).item() == pytest.approx(
        0.7 * weighted(lambda p: p ** 2.0) + 0.3 * nll_r, rel=1e-5)
    sat = make_method("satimp", {"beta1": 3.0, "beta2": 2.0, "forget_coeff": 0.5, "retain_coeff": 2.0})
    assert sat.loss(ctx, {"forget": f, "retain": r}).item() == pytest.approx(
        0.5 * weighted(lambda p: p ** 3.0 * (1 - p) ** 2.0) + 2.0 * nll_r, rel=1e-5)
    # β = 0 is plain gradient ascent (weights 1)
    assert make_method("wga", {"beta": 0.0, "retain_coeff": 0.0}).loss(ctx, {"forget": f, "retain": r}).item() == (
        pytest.approx(-mean_nll_by_hand(lf, f), rel=1e-5))


@torch.no_grad()
def test_ce_u(setup):
    lm, ctx, _, f, _, _ = setup
    z = fwd(lm.model, f).logits.double()
    for n_skip in (0, 1, 3):
        seen: dict[int, int] = {}
        terms = []
        for i, t, y in answer_steps(f):
            seen[i] = seen.get(i, 0) + 1
            if seen[i] <= n_skip:
                continue
            target_logits = z[i, t].clone()
            target_logits[y] = -math.inf
            q = torch.softmax(target_logits, -1)
            terms.append(-(q * torch.log_softmax(z[i, t], -1)).sum().item())
        loss = make_method("ce_u", {"ignore_first_n_answer_tokens": n_skip}).loss(ctx, {"forget": f})
        assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5), n_skip


@torch.no_grad()
def test_undial(setup):
    lm, ctx, other, f, _, _ = setup
    z, zr = fwd(lm.model, f).logits.double(), fwd(other, f).logits.double()
    beta = 3.0
    terms = []
    for i, t, y in answer_steps(f):
        damped = zr[i, t].clone()
        damped[y] -= beta
        terms.append(-(torch.softmax(damped, -1) * torch.log_softmax(z[i, t], -1)).sum().item())
    assert make_method("undial", {"beta": beta}).loss(ctx, {"forget": f}).item() == pytest.approx(
        sum(terms) / len(terms), rel=1e-5)


@torch.no_grad()
def test_idk_nll_idk_dpo_and_altpo(setup):
    lm, ctx, other, f, r, forget = setup
    i = batch_of(lm, [TrainRow(x.question, "I have no idea.") for x in forget])
    a = batch_of(lm, [TrainRow(x.question, "It was somebody else entirely.") for x in forget])
    pol = {k: fwd(lm.model, b).logits for k, b in (("f", f), ("r", r), ("i", i), ("a", a))}
    ref = {k: fwd(other, b).logits for k, b in (("f", f), ("i", i), ("a", a))}
    nll_r = mean_nll_by_hand(pol["r"], r)

    idk_nll = make_method("idk_nll", {"forget_coeff": 0.5, "retain_coeff": 2.0})
    assert idk_nll.loss(ctx, {"idk": i, "retain": r}).item() == pytest.approx(
        0.5 * mean_nll_by_hand(pol["i"], i) + 2.0 * nll_r, rel=1e-5)
    # ... which is not TOFU's single token mean over both parts (idk)
    assert make_method("idk").loss(ctx, {"idk": i, "retain": r}).item() != pytest.approx(
        idk_nll.loss(ctx, {"idk": i, "retain": r}).item(), rel=1e-3)

    def dpo_by_hand(win_key, win_batch, beta):
        w, wr = seq_nll_by_hand(pol[win_key], win_batch), seq_nll_by_hand(ref[win_key], win_batch)
        lo, lor = seq_nll_by_hand(pol["f"], f), seq_nll_by_hand(ref["f"], f)
        deltas = [(wr[k] - w[k]) - (lor[k] - lo[k]) for k in range(len(w))]
        return sum(-math.log(1 / (1 + math.exp(-beta * d))) for d in deltas) / len(deltas) * 2 / beta

    m = make_method("idk_dpo", {"beta": 0.5, "forget_coeff": 0.25, "retain_coeff": 3.0})
    assert m.loss(ctx, {"idk": i, "forget": f, "retain": r}).item() == pytest.approx(
        0.25 * dpo_by_hand("i", i, 0.5) + 3.0 * nll_r, rel=1e-5)
    m = make_method("altpo", {"beta": 0.2, "retain_coeff": 0.5})
    assert m.loss(ctx, {"alt": a, "forget": f, "retain": r}).item() == pytest.approx(
        dpo_by_hand("a", a, 0.2) + 0.5 * nll_r, rel=1e-5)


@torch.no_grad()
def test_pdu_loss_and_dual_ascent(setup):
    lm, ctx, _, f, r, _ = setup
    z = fwd(lm.model, f).logits.double()
    gaps = [(z[i, t].max() - z[i, t].mean()).item() ** 2 for i, t, _ in answer_steps(f)]
    flat = sum(gaps) / len(gaps)
    nll_r = mean_nll_by_hand(fwd(lm.model, r).logits, r)
    m = make_method("pdu", {"retain_loss_eps": 0.5, "forget_coeff": 0.1, "retain_coeff": 4.0, "dual_step_size": 2.0,
                            "dual_warmup_ratio": 0.5})
    batch = {"forget": f, "retain": r}
    m.begin_step(5, 10)  # inside the warm-up: λ stays
    assert m.loss(ctx, batch).item() == pytest.approx(0.1 * flat + 4.0 * (nll_r - 0.5), rel=1e-5)
    assert m.dual == 4.0
    m.begin_step(6, 10)  # after it: λ ← max(0, λ + η·(NLL_R − ε)) after each micro-batch
    assert m.loss(ctx, batch).item() == pytest.approx(0.1 * flat + 4.0 * (nll_r - 0.5), rel=1e-5)
    assert m.dual == pytest.approx(4.0 + 2.0 * (nll_r - 0.5), rel=1e-6)
    lam = m.dual
    assert m.loss(ctx, batch).item() == pytest.approx(0.1 * flat + lam * (nll_r - 0.5), rel=1e-5)
    # a satisfied constraint (NLL_R below ε) drives λ down to 0, never below
    m2 = make_method("pdu", {"retain_loss_eps": nll_r + 100, "retain_coeff": 1.0, "dual_warmup_ratio": 0.0})
    m2.loss(ctx, batch)
    assert m2.dual == 0.0
    m3 = make_method("pdu", {"primal_dual": False, "dual_warmup_ratio": 0.0})
    m3.loss(ctx, batch)
    assert m3.dual == 1.0


@torch.no_grad()
def test_rmu_loss_by_hand(setup):
    lm, ctx, other, f, r, _ = setup
    layer = 0
    h_f = fwd(lm.model, f, output_hidden_states=True).hidden_states[layer + 1].double()  # output of block 0
    h_r = fwd(lm.model, r, output_hidden_states=True).hidden_states[layer + 1].double()
    h_ref = fwd(other, r, output_hidden_states=True).hidden_states[layer + 1].double()
    m = make_method("rmu", {"layer": layer, "steering_coeff": 5.0, "forget_coeff": 0.5, "retain_coeff": 7.0,
                            "seed": 3})
    u = torch.rand(h_f.shape[-1], generator=torch.Generator().manual_seed(3)).double()
    target = u / u.norm() * 5.0

    def by_hand(h, tgt, b):
        per_row = []
        for i in range(h.shape[0]):
            pos = [t for t in range(h.shape[1]) if b["labels"][i, t] != IGNORE_INDEX]
            per_row.append(sum(((h[i, t] - tgt[i, t]) ** 2).mean().item() for t in pos) / len(pos))
        return sum(per_row) / len(per_row)

    expected = 0.5 * by_hand(h_f, target.expand_as(h_f), f) + 7.0 * by_hand(h_r, h_ref, r)
    assert m.loss(ctx, {"forget": f, "retain": r}).item() == pytest.approx(expected, rel=1e-5)
    assert torch.equal(m.direction(h_f.shape[-1]), m.direction(h_f.shape[-1]))  # fixed for the run


def test_rmu_layer_choice():
    assert resolve_layer(16, None) == 7  # open-unlearning RMU.yaml: model.layers.7
    assert resolve_layer(2, None) == 1 and resolve_layer(7, None) == 3
    assert resolve_layer(2, 0) == 0
    with pytest.raises(ConfigError, match="layer 5 does not exist; the model has 2 decoder layers"):
        resolve_layer(2, 5)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_rmu_reference_activations_equal_policy_at_step_zero(fresh, rows, mode):
    """The retain term compares with the *reference* network's activations: 0 before the first
    update in both modes (adapter disabled / frozen copy), so the first loss is the forget term."""
    forget, retain = rows
    f = batch_of(fresh, forget)
    with torch.no_grad():
        h = fwd(fresh.model, f, output_hidden_states=True).hidden_states[1]
    m = make_method("rmu", {"layer": 0})
    target = m.direction(h.shape[-1]).expand_as(h)
    mask = (f["labels"] != IGNORE_INDEX).float()
    forget_only = (((h - target) ** 2).mean(-1) * mask).sum(-1).div(mask.sum(-1)).mean().item()
    cfg = FinetuneConfig(mode=mode, max_steps=2, lr=5e-3, warmup_ratio=0.0, batch_size=len(forget))
    res = finetune(fresh, forget, cfg, method="rmu", method_params={"layer": 0}, retain_rows=retain)
    assert res.losses[0] == pytest.approx(forget_only, rel=1e-4)
    assert res.losses[1] < res.losses[0]  # steering towards the direction works


def test_alt_rows_pair_each_forget_question_with_its_own_alternates(random_tiny, sample_facts):
    forget = [TrainRow(f.question, f.answer) for f in sample_facts[:2]]
    retain = [TrainRow(f.question, f.answer) for f in sample_facts[2:]]
    m = make_method("altpo", {"n_alternates": 3})
    alts = m.alternates([(r.question, r.answer) for r in forget], [(r.question, r.answer) for r in retain])
    assert [len(a) for a in alts] == [3, 3]
    assert all(a != r.answer for cands, r in zip(alts, forget, strict=True) for a in cands)
    # a fact with nothing to swap falls back to refusals (IdkDPO for that fact) instead of failing
    assert m.alternates([("Is it true?", "Yes.")], [(r.question, r.answer) for r in retain]) == [list(REFUSALS)]
    stream = BatchStream(random_tiny, m, forget, retain, batch_size=2, max_length=200, seed=0)
    tok = random_tiny.tokenizer
    for _ in range(3):
        b = next(stream)
        for row in range(2):
            f_text = tok.decode(b["forget"]["input_ids"][row][b["forget"]["attention_mask"][row] == 1])
            a_text = tok.decode(b["alt"]["input_ids"][row][b["alt"]["attention_mask"][row] == 1])
            k = next(j for j, r in enumerate(forget) if r.question in f_text)
            assert forget[k].question in a_text, "aligned row by row"
            assert any(c in a_text for c in alts[k]) and forget[k].answer not in a_text


# --- every method through the pipeline ----------------------------------------------------------

@pytest.fixture(scope="module")
def demo_copy_source(demo_tiny):
    return str(demo_tiny.path)


@pytest.mark.parametrize("mode", ["lora", "full"])
@pytest.mark.parametrize("method", sorted(set(CATALOG.names())))
def test_every_method_runs_through_unlearn_on_the_demo_model(demo_copy_source, demo_tiny_facts, method, mode):
    from meow_engine.models import load_model
    from meow_engine.pipeline import unlearn

    forget, retain = demo_tiny_facts[:2], demo_tiny_facts[2:6]
    # no audits and no leakage rounds: two optimizer steps of the method itself
    cfg = UnlearnConfig(method=method, audit=False, leak_audit={"enabled": False},
                        finetune=FinetuneConfig(mode=mode, max_steps=2, batch_size=2, lr=1e-3, warmup_ratio=0.0))
    res = unlearn(load_model(demo_copy_source), forget, retain, cfg)
    assert res.training["steps"] == 2 and all(math.isfinite(x) for x in res.training["losses"])
    assert res.method == method
