"""The ``hf`` inverter: a local model through its chat template, seeded sampling."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from meow_engine.config import InverterConfig
from meow_engine.errors import ConfigError
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


def test_greedy_makes_a_single_generation(chat_model_dir):
    [s] = invert(FACTS[:1], _cfg(chat_model_dir, temperature=0.0, n=8))
    [t] = invert(FACTS[:1], _cfg(chat_model_dir, temperature=0.0, n=8, seed=99))
    assert s.raw == t.raw  # greedy ignores the seed
    assert "extra_call" not in s.flags


def test_hf_config_errors(random_tiny):
    with pytest.raises(ConfigError, match="needs model"):
        invert(FACTS, InverterConfig(kind="hf"))
    with pytest.raises(ConfigError, match="has no chat template"):
        HFInverter(InverterConfig(kind="hf"), lm=random_tiny).prepare(FACTS, [])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("meow_engine.smollm2") is None,
                    reason="the smollm2-135m-instruct builtin is not part of this checkout")
def test_smollm2_inverts_tofu_facts():
    from meow_engine.facts import load_facts

    torch.set_num_threads(2)
    facts = load_facts("/work/shared/data/tofu/forget01.json", limit=2)
    config = InverterConfig(kind="hf", model="smollm2-135m-instruct", n=4, max_tokens=64, seed=0)
    inv = HFInverter(config)
    sets = inv.invert(facts, context_facts=[], reporter=__import__("meow_engine.progress").progress.NULL_REPORTER)
    for fact, s in zip(facts, sets, strict=True):
        assert s.raw and s.candidates
        assert all(normalize(c) != normalize(fact.answer) for c in s.candidates)
    # same seed, same model, same text
    assert inv.generate(facts[0], 0) == sets[0].raw.split("\n")[0] or inv.generate(facts[0], 0) in sets[0].raw
