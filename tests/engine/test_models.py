"""load_model: local folders, built-in names, hub ids offline, devices, dtypes and adapters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from meow_engine.errors import ConfigError, ModelLoadError
from meow_engine.models import NAMED_MODELS, load_model, pick_device, pick_dtype


def _save(lm, folder: Path) -> Path:
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_local_folder_round_trip(random_tiny, tmp_path: Path) -> None:
    folder = _save(random_tiny, tmp_path / "m")
    lm = load_model(folder, device="cpu")
    assert lm.path == folder and lm.ref == str(folder)
    assert lm.device == torch.device("cpu") and lm.dtype == torch.float32
    assert lm.prompt_format.name == "tofu"  # no chat template
    assert not lm.model.training
    ids = torch.tensor([random_tiny.tokenizer("Where was Elara Voss born?").input_ids])
    with torch.no_grad():
        assert torch.equal(lm.model(ids).logits, random_tiny.model(ids).logits)


def test_dtype_and_prompt_format_options(random_tiny, tmp_path: Path) -> None:
    folder = _save(random_tiny, tmp_path / "m")
    lm = load_model(folder, dtype="bf16", prompt_format="llama2")
    assert lm.dtype == torch.bfloat16
    assert lm.prompt_format.name == "llama2"
    with pytest.raises(ModelLoadError, match="unknown dtype 'int3'"):
        load_model(folder, dtype="int3")
    with pytest.raises(ConfigError, match="chat template"):
        load_model(folder, prompt_format="chat")


def test_device_auto_and_explicit() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(None).type == expected
    assert pick_device("auto").type == expected
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_dtype(None, torch.device("cpu")) == torch.float32
    with pytest.raises(ModelLoadError, match="unknown device 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            pick_device("cuda")


def test_adapter_is_applied(random_tiny, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base = _save(random_tiny, tmp_path / "base")
    peft_model = get_peft_model(load_model(base).model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                                   init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    plain = load_model(base)
    adapted = load_model(base, adapter=tmp_path / "adapter")
    ids = torch.tensor([random_tiny.tokenizer("Which award did Mira Okafor win?").input_ids])
    with torch.no_grad():
        assert torch.allclose(adapted.model(ids).logits, peft_model.eval()(ids).logits, atol=1e-6)
        assert not torch.allclose(adapted.model(ids).logits, plain.model(ids).logits)
    with pytest.raises(ModelLoadError, match="not a PEFT adapter folder"):
        load_model(base, adapter=tmp_path)


def test_bad_references_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_model(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="unknown built-in model 'demo:huge'; known: .*demo:tiny"):
        load_model("demo:huge")


def test_hub_id_offline_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE, "the test suite runs with HF_HUB_OFFLINE=1"
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        load_model("meow-test-org/definitely-not-cached-model")
    assert time.perf_counter() - t0 < 30
    msg = str(err.value)
    assert "meow-test-org/definitely-not-cached-model" in msg and "\n" not in msg
    assert "smollm2-135m-instruct" in msg  # tells the user what would have worked offline


def test_builtin_names_are_registered() -> None:
    from meow_engine.models import _register_builtins

    _register_builtins()
    assert "demo:tiny" in NAMED_MODELS and "smollm2-135m-instruct" in NAMED_MODELS
