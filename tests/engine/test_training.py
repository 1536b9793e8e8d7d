"""The shared trainer: saved layouts, determinism, progress, cooperative stop, accumulation."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import pytest
import torch

from meow_engine.config import FinetuneConfig
from meow_engine.errors import ConfigError
from meow_engine.models import load_model
from meow_engine.progress import Reporter
from meow_engine.training import TrainRow, finetune, plan_steps, save_merged


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def rows(sample_facts):
    return [TrainRow(f.question, f.answer) for f in sample_facts]


@pytest.fixture(scope="module")
def base_dir(random_tiny, tmp_path_factory):
    """The tiny model as a model folder, so the artifacts can be loaded back through load_model."""
    d = tmp_path_factory.mktemp("base")
    random_tiny.model.save_pretrained(d)
    random_tiny.tokenizer.save_pretrained(d)
    return d


def cfg(**kw) -> FinetuneConfig:
    kw.setdefault("max_steps", 2)
    kw.setdefault("batch_size", 2)
    kw.setdefault("warmup_ratio", 0.0)
    return FinetuneConfig(**kw)


def probe(lm, rows):
    from meow_engine.prompts import collate, encode_example

    b = collate([encode_example(lm.tokenizer, lm.prompt_format, r.question, r.answer) for r in rows],
                lm.tokenizer.pad_token_id)
    with torch.no_grad():
        return lm.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits


def check_hashes(info):
    from pathlib import Path

    total = 0
    for name, digest in info.files.items():
        data = (Path(info.path) / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        total += len(data)
    assert total == info.size_bytes


def test_plan_steps():
    assert plan_steps(10, FinetuneConfig(epochs=3, batch_size=4, grad_accum=1)) == 8  # ⌈30/4⌉
    assert plan_steps(10, FinetuneConfig(epochs=2, batch_size=2, grad_accum=5)) == 2
    assert plan_steps(3, FinetuneConfig(epochs=0.1, batch_size=4)) == 1
    assert plan_steps(10, FinetuneConfig(max_steps=7)) == 7


def test_lora_artifact_is_a_peft_folder_that_loads_as_is(fresh, rows, tmp_path, base_dir):
    from peft import PeftModel

    lm = dataclasses.replace(load_model(base_dir), ref=str(base_dir))
    res = finetune(lm, rows, cfg(mode="lora", lr=1e-2, lora_rank=4, lora_alpha=8), method="sft",
                   output_dir=tmp_path / "lora")
    info = res.artifact
    assert info.kind == "lora" and info.rank == 4 and info.alpha == 8
    assert info.target_modules == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(info.files)
    assert not any(n.endswith(".bin") for n in info.files)
    check_hashes(info)
    assert json.loads((tmp_path / "lora" / "adapter_config.json").read_text())["r"] == 4
    assert res.model.training is False

    expected = probe(res.lm, rows)
    base = load_model(base_dir).model
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "lora")).eval()
    assert torch.allclose(probe(dataclasses.replace(lm, model=reloaded), rows), expected, atol=1e-5)
    via_loader = load_model(base_dir, adapter=tmp_path / "lora")
    assert torch.allclose(probe(via_loader, rows), expected, atol=1e-5)
    # and the adapter really changed the model
    assert not torch.allclose(probe(load_model(base_dir), rows), expected, atol=1e-4)

    # a model that already carries an adapter: LoRA on top is refused, full mode trains the merge
    with pytest.raises(ConfigError, match="already carries a LoRA adapter"):
        finetune(via_loader, rows, cfg(mode="lora"), method="sft")
    res = finetune(via_loader, rows, cfg(mode="full", max_steps=1, lr=1e-3), method="sft")
    assert not isinstance(res.model, PeftModel)


def test_full_artifact_is_a_model_folder(fresh, rows, tmp_path):
    res = finetune(fresh, rows, cfg(mode="full", lr=1e-3), method="sft", output_dir=tmp_path / "full")
    info = res.artifact
    assert info.kind == "full" and info.rank is None
    assert "model.safetensors" in info.files and "config.json" in info.files and "tokenizer.json" in info.files
    check_hashes(info)
    reloaded = load_model(tmp_path / "full")
    assert torch.allclose(probe(reloaded, rows), probe(res.lm, rows), atol=1e-5)


def test_merged_lora_saves_a_plain_model_equal_to_the_adapter(fresh, rows, tmp_path):
    res = finetune(fresh, rows, cfg(mode="lora", lr=1e-2), method="sft")
    assert res.artifact is None  # no output_dir, nothing saved
    expected = probe(res.lm, rows)
    info, merged = save_merged(res.model, fresh.tokenizer, tmp_path / "merged", "random-tiny")
    assert info.kind == "full" and info.rank == 8 and "model.safetensors" in info.files
    assert not any(n.startswith("adapter") for n in info.files)
    check_hashes(info)
    assert torch.allclose(probe(load_model(tmp_path / "merged"), rows), expected, atol=1e-4)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_seeded_runs_are_identical(random_tiny, rows, mode):
    runs = []
    for _ in range(2):
        lm = dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))
        runs.append(finetune(lm, rows, cfg(mode=mode, max_steps=4, lr=1e-2, lora_dropout=0.1), method="sft").losses)
    assert runs[0] == runs[1]
    lm = dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))
    other = finetune(lm, rows, cfg(mode=mode, max_steps=4, lr=1e-2, lora_dropout=0.1, seed=7), method="sft").losses
    assert other != runs[0]


def test_progress_events_one_per_step_with_loss_and_schedule(fresh, rows):
    events = []
    res = finetune(fresh, rows, cfg(max_steps=5, warmup_ratio=0.4, lr=1e-3), method="sft",
                   reporter=Reporter(progress=events.append))
    assert [(e.stage, e.step, e.total) for e in events] == [("finetune", i, 5) for i in range(1, 6)]
    assert [e.data["loss"] for e in events] == res.losses
    # warm-up over 2 steps from 0, then linear decay to 0
    assert res.learning_rates == pytest.approx([0.0, 5e-4, 1e-3, 1e-3 * 2 / 3, 1e-3 / 3])


def test_cooperative_stop_returns_without_artifact(fresh, rows, tmp_path):
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 2  # polled before each step: steps 1 and 2 run, step 3 stops

    res = finetune(fresh, rows, cfg(max_steps=10), method="sft", output_dir=tmp_path / "out",
                   reporter=Reporter(should_stop=should_stop, stop_poll_s=0))
    assert res.stopped and res.steps == 2 and len(res.losses) == 2
    assert res.artifact is None and not (tmp_path / "out").exists()
    assert res.model.training is False


def test_gradient_accumulation_matches_a_bigger_batch(random_tiny):
    # Same answer for every row → equal token counts, so mean-of-means equals the big-batch mean.
    rows = [TrainRow(q, "The answer is always the same here.") for q in
            ("Who is Elara Voss?", "What does Tomas Quill write?", "Where is Veloria?", "What did Mira win?")]
    results = {}
    for bs, ga in ((4, 1), (2, 2), (1, 4)):
        lm = dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))
        res = finetune(lm, rows, FinetuneConfig(mode="full", max_steps=3, batch_size=bs, grad_accum=ga, lr=1e-3,
                                                warmup_ratio=0), method="sft")
        results[(bs, ga)] = (res.losses, [p.detach().clone() for p in res.model.parameters()])
    ref_losses, ref_params = results[(4, 1)]
    for key in ((2, 2), (1, 4)):
        losses, params = results[key]
        assert losses == pytest.approx(ref_losses, abs=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(params, ref_params, strict=True))


def test_inplace_false_leaves_the_callers_model_untouched(random_tiny, rows):
    before = [p.detach().clone() for p in random_tiny.model.parameters()]
    res = finetune(random_tiny, rows, cfg(mode="full", lr=1e-2), method="sft", inplace=False)
    assert res.model is not random_tiny.model
    assert all(torch.equal(a, b) for a, b in zip(before, random_tiny.model.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(before, res.model.parameters(), strict=True))


def test_bad_inputs_are_config_errors(fresh, rows):
    with pytest.raises(ConfigError, match="method 'gd' needs retain facts"):
        finetune(fresh, rows, cfg(), method="gd")
    with pytest.raises(ConfigError, match="unknown unlearning method"):
        finetune(fresh, rows, cfg(), method="forget-harder")
    with pytest.raises(ConfigError, match="no training rows"):
        finetune(fresh, [], cfg(), method="sft")
    with pytest.raises(ConfigError, match="forget row 0: the prompt alone has"):
        finetune(fresh, [TrainRow("word " * 40, "answer")], cfg(max_length=16), method="sft")
    with pytest.raises(ConfigError, match="LoRA"):
        finetune(fresh, rows, cfg(mode="lora", target_modules=["no_such_proj"]), method="sft")


def test_bf16_autocast_runs_when_forced(fresh, rows):
    res = finetune(fresh, rows, cfg(mode="lora", bf16="on", lr=1e-2), method="npo")
    assert res.bf16 and all(torch.isfinite(torch.tensor(res.losses)))
    assert res.losses[0] == pytest.approx(2 / 0.1 * 0.6931471805599453, abs=1e-3)
