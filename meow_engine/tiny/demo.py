"""``demo:tiny``: the default demo/test target, a tiny Llama that memorized invented facts.

Built on first use from ``fictitious_facts(DEMO_N_FACTS, DEMO_SEED)`` and cached under
``cache_dir()/models/demo-tiny-<key>``, where the key hashes everything that determines the
weights (facts, settings, seed, builder version). Several processes (test workers, the API and a
Celery worker) may ask for it at once: an exclusive file lock makes one of them build while the
others wait, and the build lands in a temporary folder renamed into place, so a reader never sees
a half-written model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from meow_engine.errors import ModelLoadError
from meow_engine.facts import Fact
from meow_engine.models import NAMED_MODELS, build_once, cache_dir
from meow_engine.tiny.builder import BUILDER_VERSION, MANIFEST, TinySettings, build_tiny_model
from meow_engine.tiny.fictitious import fictitious_facts

DEMO_NAME = "demo:tiny"
DEMO_N_FACTS = 40
DEMO_SEED = 0
DEMO_SETTINGS = TinySettings()


def demo_facts() -> list[Fact]:
    """The facts ``demo:tiny`` memorized (also saved as ``facts.jsonl`` in its folder)."""
    return fictitious_facts(DEMO_N_FACTS, seed=DEMO_SEED)


def demo_key(facts: list[Fact] | None = None, settings: TinySettings = DEMO_SETTINGS, seed: int = DEMO_SEED) -> str:
    facts = demo_facts() if facts is None else facts
    blob = json.dumps({"builder": BUILDER_VERSION, "seed": seed, "settings": settings.to_dict(),
                       "facts": [f.to_dict() for f in facts]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cached_tiny_model(name: str, facts: list[Fact], settings: TinySettings, seed: int) -> Path:
    """Build (once per machine and key) and return the folder of a tiny model of ``facts``."""

    def build(tmp: Path) -> None:
        report = build_tiny_model(facts, tmp, seed=seed, settings=settings)
        if not report.reached_target:
            raise ModelLoadError(
                f"{name}: the tiny model reached ROUGE-L recall {report.recall:.3f} after {report.steps} steps,"
                f" below the target {settings.target_recall}"
            )

    return build_once(cache_dir() / "models" / f"{name}-{demo_key(facts, settings, seed)}", build, marker=MANIFEST)


@NAMED_MODELS.register(DEMO_NAME)
def demo_model_path() -> Path:
    return cached_tiny_model("demo-tiny", demo_facts(), DEMO_SETTINGS, DEMO_SEED)
