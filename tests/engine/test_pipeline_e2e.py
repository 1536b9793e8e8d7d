"""End to end: a tiny model that memorized its facts forgets 10 of them with MEOW + rule inverter."""

from __future__ import annotations

import pytest

from meow_engine.config import FinetuneConfig, UnlearnConfig
from meow_engine.errors import ConfigError, StopRequested
from meow_engine.pipeline import unlearn

pytestmark = pytest.mark.slow


def _fresh(demo_tiny):
    """A private copy of the demo model: finetuning must not leak into other tests."""
    from meow_engine.models import load_model

    return load_model(str(demo_tiny.path))


def test_meow_forgets_and_keeps_retain(demo_tiny, demo_tiny_facts, tmp_path):
    forget, retain = demo_tiny_facts[:10], demo_tiny_facts[10:30]
    # LoRA on the attention value/output projections only. Measured on demo:tiny (MEMO of the true
    # answers 0.708 before; retain ROUGE-L recall 1.0 before): all linear layers at lr 1e-3 left MEMO
    # at 0.54 with retain already at 0.77, and stronger settings traded retain for forgetting
    # (MLP-only r16 lr 3e-3: 0.37 / 0.59; full finetune lr 5e-4: 0.39 / 0.74). Value/output LoRA at
    # lr 1.5e-3 changes what a prompt retrieves without overwriting the other subjects' facts:
    # MEMO 0.32, retain 0.84.
    config = UnlearnConfig(finetune=FinetuneConfig(mode="lora", epochs=10, lr=1.5e-3, lora_rank=16, lora_alpha=32,
                                                   target_modules=["v_proj", "o_proj"]))
    events = []
    result = unlearn(_fresh(demo_tiny), forget, retain, config, output_dir=tmp_path / "out", progress=events.append)

    f, r = result.forget, result.retain
    assert f.memo_before is not None and f.memo_after is not None
    assert f.memo_after <= 0.5 * f.memo_before, (f.memo_before, f.memo_after)
    assert r is not None and r.rougeL_after >= 0.8 * r.rougeL_before, (r.rougeL_before, r.rougeL_after)
    assert f.rougeL_after < f.rougeL_before
    # every fact has its scored candidates and exactly k selected, never the true answer
    for rep in result.facts:
        assert sum(inv.selected for inv in rep.inversions) == config.selection.k
        assert all(inv.text.strip().lower() != rep.answer.strip().lower() for inv in rep.inversions)
        assert all(inv.memo is not None for inv in rep.inversions)
    assert result.artifact is not None and result.artifact.kind == "lora"
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    stages = [e.stage for e in events]
    for stage in ("audit_before", "invert", "memo", "finetune", "audit_after"):
        assert stage in stages, stage
    assert stages.index("invert") < stages.index("finetune") < stages.index("audit_after")
    assert set(result.timings) >= {"audit_before", "invert", "memo_candidates", "finetune", "audit_after"}


def test_stop_requested_aborts_without_artifact(demo_tiny, demo_tiny_facts, tmp_path):
    config = UnlearnConfig(audit=False, finetune=FinetuneConfig(max_steps=50, lr=1e-3))
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    with pytest.raises(StopRequested):
        unlearn(_fresh(demo_tiny), demo_tiny_facts[:3], None, config, output_dir=tmp_path / "o",
                should_stop=should_stop)
    assert not (tmp_path / "o" / "adapter_config.json").exists()


def test_baseline_without_retain_is_a_config_error(demo_tiny, demo_tiny_facts):
    with pytest.raises(ConfigError, match="retain"):
        unlearn(demo_tiny, demo_tiny_facts[:2], None, UnlearnConfig(method="gd"))
