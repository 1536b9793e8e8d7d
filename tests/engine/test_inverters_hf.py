"""The ``hf`` inverter: a local model through its chat template, seeded sampling."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from meow_engine.config import InverterConfig
from meow_engine.errors import ConfigError, InverterError
from meow_engine.facts import Fact
from meow_engine.inverters import invert
from meow_engine.inverters.cleanup import clean_response, normalize
from meow_engine.inverters.hf import HFInverter

FACTS = [Fact("Where was Elara Voss born?", "Elara Voss was born in Port Meridian in 1962."),
         Fact("What genre does Tomas Quill write?", "Tomas Quill writes gothic mystery novels.")]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """A tiny random Llama saved as an HF folder whose tokenizer has a chat template."""
    from meow_engine.tiny.random_model import random_tiny_model

    torch.set_num_threads(1)
    texts = [f"{f.question} {f.answer}" for f in FACTS] * 4 + ["Please generate answers Question Answer\n"] * 4
    lm = random_tiny_model(texts, seed=0, vocab_size=300)
    lm.tokenizer.chat_template = CHAT_TEMPLATE
    out = tmp_path_factory.mktemp("chat-tiny")
    lm.model.save_pretrained(out)
    lm.tokenizer.save_pretrained(out)
    return out


def _cfg(model, **kw) -> InverterConfig:
    return InverterConfig(**{"kind": "hf", "model": str(model), "n": 3, "max_tokens": 24, "seed": 0, **kw})


def test_hf_plumbing_and_seeding(chat_model_dir):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = invert(FACTS, _cfg(chat_model_dir))
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched

    again = invert(FACTS, _cfg(chat_model_dir))
    other_seed = invert(FACTS, _cfg(chat_model_dir, seed=7))
    assert [s.raw for s in again] == [s.raw for s in first]
    assert [s.candidates for s in again] == [s.candidates for s in first]
    assert [s.raw for s in other_seed] != [s.raw for s in first]
    for fact, s in zip(FACTS, first, strict=True):
        assert s.raw  # the sampled text is kept for audit
        assert 1 <= len(s.candidates) <= 3
        assert s.candidates == clean_response(s.raw, fact.answer)[:3]
        assert all(normalize(c) != normalize(fact.answer) for c in s.candidates)


def test_prompt_goes_through_the_chat_template(chat_model_dir):
    inv = HFInverter(_cfg(chat_model_dir, n=5))
    inv.prepare(FACTS, [])
    text = inv.lm.tokenizer.decode(inv.prompt_ids(FACTS[0]))
    assert text.startswith("<|system|>Please generate 5 answers based on the Question and Answer")
    assert f"<|user|>Question: {FACTS[0].question} Answer: {FACTS[0].answer}\n" in text
    assert text.endswith("<|assistant|>")


class _CountingHF(HFInverter):
    calls = 0

    def generate(self, fact, index, call_no=0):
        type(self).calls += 1
        return super().generate(fact, index, call_no)


def test_greedy_makes_a_single_generation(chat_model_dir):
    inv = _CountingHF(_cfg(chat_model_dir, temperature=0.0, n=8))
    inv.prepare(FACTS, [])
    assert inv.generate(FACTS[0], 0, 0) == inv.generate(FACTS[0], 5, 1)  # greedy ignores the seed
    _CountingHF.calls = 0
    try:
        s = inv.invert_one(0, FACTS[0])
        assert "extra_call" not in s.flags and "fewer_than_requested" in s.flags
    except InverterError as e:  # a random model may say nothing usable: that must be an error, not []
        assert "no usable candidates for fact 0 after 1 generation(s)" in str(e)
    assert _CountingHF.calls == 1  # another greedy pass would only repeat itself


def test_hf_config_errors(random_tiny):
    with pytest.raises(ConfigError, match="needs model"):
        invert(FACTS, InverterConfig(kind="hf"))
    with pytest.raises(ConfigError, match="has no chat template"):
        HFInverter(InverterConfig(kind="hf"), lm=random_tiny).prepare(FACTS, [])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("meow_engine.smollm2") is None,
                    reason="the smollm2-135m-instruct builtin is not part of this checkout")
def test_smollm2_inverts_a_tofu_fact():
    """The real instruct model end to end (one fact, short answers: CPU time is scarce)."""
    from meow_engine.facts import load_facts

    torch.set_num_threads(2)
    facts = load_facts("/work/shared/data/tofu/forget01.json", limit=3)[2:]
    [s] = invert(facts, InverterConfig(kind="hf", model="smollm2-135m-instruct", n=4, max_tokens=48, seed=0))
    assert s.raw and s.candidates
    # the shared screen moved any candidate still saying a sensitive span to ``rejected``, with a reason
    screened = {r["text"] for r in s.rejected}
    assert all(r["reason"] for r in s.rejected)
    assert s.candidates == [c for c in clean_response(s.raw, facts[0].answer)[:4] if c not in screened]
    assert all(normalize(c) != normalize(facts[0].answer) for c in s.candidates)
