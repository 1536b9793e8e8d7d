"""The tiny model builder and the cached ``demo:tiny`` model: real training on CPU, real audits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from meow_engine.errors import ConfigError, StopRequested
from meow_engine.facts import load_facts
from meow_engine.generation import rouge_l_audit
from meow_engine.models import load_model
from meow_engine.progress import Reporter
from meow_engine.tiny.builder import FACTS_FILE, MANIFEST, TinySettings, build_tiny_model, read_manifest
from meow_engine.tiny.fictitious import fictitious_facts

#: small enough to memorize 6 facts in a few seconds on one core
CHEAP = TinySettings(hidden=64, layers=1, heads=2, intermediate=192, vocab_size=400, eval_every=10,
                     anneal_steps=10, corpus_weight=0.0, lr=1e-2, warmup_steps=5, max_steps=300)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.mark.slow
def test_build_memorizes_and_is_deterministic(tmp_path: Path) -> None:
    facts = fictitious_facts(6, seed=5)
    events = []
    a = build_tiny_model(facts, tmp_path / "a", seed=0, settings=CHEAP, reporter=Reporter(events.append))
    b = build_tiny_model(facts, tmp_path / "b", seed=0, settings=CHEAP)
    c = build_tiny_model(facts, tmp_path / "c", seed=1, settings=CHEAP)
    assert c.reached_target

    assert a.reached_target and a.recall >= 0.95 and a.min_recall > 0.5
    assert a.steps < CHEAP.max_steps and a.n_facts == 6
    assert any("recall" in e.data for e in events) and all(e.stage == "build-tiny" for e in events)

    wa, wb, wc = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "same seed, same weights"
    assert (a.steps, a.final_loss) == (b.steps, b.final_loss)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "another seed, other weights"

    # The saved folder is an ordinary model folder, and it really answers its facts.
    lm = load_model(tmp_path / "a", device="cpu")
    assert lm.prompt_format.name == "tofu"
    gens, scores = rouge_l_audit(lm, [f.question for f in facts], [f.answer for f in facts])
    assert sum(scores) / len(scores) == pytest.approx(a.recall)
    assert gens[0] == facts[0].answer or scores[0] >= 0.9

    manifest = read_manifest(tmp_path / "a")
    assert manifest["seed"] == 0 and manifest["settings"]["hidden"] == 64
    assert manifest["report"]["recall"] == a.recall
    assert load_facts(tmp_path / "a" / FACTS_FILE) == facts


def test_max_steps_reached_is_reported_not_hidden(tmp_path: Path) -> None:
    settings = TinySettings(hidden=32, layers=1, heads=2, intermediate=64, vocab_size=300, max_steps=3,
                            eval_every=100, max_new_tokens=8)
    report = build_tiny_model(fictitious_facts(2), tmp_path / "m", settings=settings)
    assert report.steps == 3
    assert not report.reached_target and report.recall < 0.95
    assert len(report.per_fact_recall) == 2
    assert (tmp_path / "m" / MANIFEST).is_file()


def test_stop_request_interrupts_the_build(tmp_path: Path) -> None:
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(StopRequested):
        build_tiny_model(fictitious_facts(2), tmp_path / "m", settings=CHEAP,
                         reporter=Reporter(should_stop=should_stop, stop_poll_s=0))
    assert not (tmp_path / "m" / MANIFEST).exists()


def test_bad_settings_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiple of heads"):
        TinySettings(hidden=65, heads=4)
    with pytest.raises(ConfigError, match="target_recall"):
        TinySettings(target_recall=1.5)
    with pytest.raises(ConfigError, match="at least one fact"):
        build_tiny_model([], tmp_path / "m")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        build_tiny_model(fictitious_facts(1), tmp_path / "file")


def test_demo_tiny_memorized_its_facts(demo_tiny, demo_tiny_facts) -> None:
    manifest = read_manifest(demo_tiny.path)
    assert manifest is not None and manifest["report"]["reached_target"]
    assert load_facts(demo_tiny.path / FACTS_FILE) == demo_tiny_facts
    assert 30 <= len(demo_tiny_facts) <= 40
    _, scores = rouge_l_audit(demo_tiny, [f.question for f in demo_tiny_facts], [f.answer for f in demo_tiny_facts])
    assert sum(scores) / len(scores) >= 0.95


def test_demo_tiny_is_cached_not_rebuilt(demo_tiny) -> None:
    from meow_engine.tiny.demo import DEMO_SETTINGS, demo_key, demo_model_path

    manifest = demo_tiny.path / MANIFEST
    before = manifest.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = load_model("demo:tiny", device="cpu")
    assert time.perf_counter() - t0 < 5.0
    assert again.path == demo_tiny.path == demo_model_path()
    assert manifest.stat().st_mtime_ns == before
    assert demo_key() in demo_tiny.path.name
    from dataclasses import replace

    assert demo_key(settings=replace(DEMO_SETTINGS, hidden=96)) != demo_key()
    assert demo_key(seed=1) != demo_key()


_BUILD_ONCE_SCRIPT = """
import os, sys, time
from pathlib import Path
from meow_engine.models import build_once

def build(tmp: Path) -> None:
    tmp.mkdir()
    with open(sys.argv[2], "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(1.0)
    (tmp / "config.json").write_text("{}")

print(build_once(Path(sys.argv[1]), build))
"""


def test_build_once_builds_once_across_processes(tmp_path: Path) -> None:
    final, log = tmp_path / "models" / "thing", tmp_path / "builds.log"
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD_ONCE_SCRIPT, str(final), str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs == [str(final)] * 2
    assert len(log.read_text().split()) == 1, "exactly one process built it"
    assert json.loads((final / "config.json").read_text()) == {}
    assert not [p for p in final.parent.iterdir() if ".tmp-" in p.name], "no temporary folder left behind"


def test_tokenizer_facts_give_subset_models_one_vocabulary(tmp_path: Path) -> None:
    facts = fictitious_facts(6, seed=9)
    tiny = TinySettings(hidden=32, layers=1, heads=2, intermediate=64, vocab_size=400, max_steps=1, max_new_tokens=4)
    build_tiny_model(facts, tmp_path / "all", settings=tiny, tokenizer_facts=facts)
    build_tiny_model(facts[:3], tmp_path / "sub", settings=tiny, tokenizer_facts=facts)
    build_tiny_model(facts[:3], tmp_path / "own", settings=tiny)
    vocab = {name: (tmp_path / name / "tokenizer.json").read_text() for name in ("all", "sub", "own")}
    assert vocab["all"] == vocab["sub"]
    assert vocab["own"] != vocab["all"]
