"""``meow bench forget``: every method under the same target and leakage audit, at equal budgets.

TOFU's Forget Quality asks whether the model looks like one never trained on the facts; a compliance
user asks whether it still *says* them. This bench answers the second question for each method:
the same facts, the same ``UnlearnConfig`` defaults (target, rounds, audit), only ``method``
changes. Per method it records the verdict, the forget leak rate before/after, retain kept, the
optimizer steps the rounds used and the wall time, and writes them as JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from meow_engine.config import UnlearnConfig

#: the methods a default run compares (``--methods`` takes any registered name)
DEFAULT_METHODS = ("meow", "ga", "gd", "npo_gd", "simnpo", "idk")


def run_forget_bench(model: str, methods: list[str], n_forget: int = 10, n_retain: int = 20,
                     config: UnlearnConfig | None = None) -> dict[str, Any]:
    """One default ``unlearn`` per method on a fresh copy of ``model`` and its own facts."""
    from meow_engine.models import load_model
    from meow_engine.pipeline import unlearn
    facts = _model_facts(load_model(model))
    forget, retain = facts[:n_forget], facts[n_forget:n_forget + n_retain]
    rows = []
    for name in methods:
        lm = load_model(model)  # fresh weights: finetuning changes the model in place
        cfg = (config or UnlearnConfig()).model_copy(update={"method": name})
        t0 = time.perf_counter()
        res = unlearn(lm, forget, retain, cfg)
        rows.append({
            "method": name, "verdict": res.verdict, "target_met": res.target_met,
            "facts_forgotten": sum(1 for f in res.facts if f.verdict == "forgotten"),
            "leak_rate_before": res.forget.leak_rate_before, "leak_rate_after": res.forget.leak_rate_after,
            "retain_kept": res.retain.kept if res.retain else None,
            "retain_rougeL_after": res.retain.rougeL_after if res.retain else None,
            "steps": res.training.get("steps"), "rounds": len(res.rounds),
            "wall_s": round(time.perf_counter() - t0, 2),
        })
    return {"model": model, "n_forget": len(forget), "n_retain": len(retain), "rows": rows,
            "config": (config or UnlearnConfig()).model_dump(mode="json", exclude={"method"})}


def _model_facts(lm: Any) -> list:
    from meow_engine.errors import ConfigError
    from meow_engine.facts import load_facts

    folder = Path(lm.path) if lm.path is not None else None
    if folder is None or not (folder / "facts.jsonl").is_file():
        raise ConfigError("bench forget needs a model folder with the facts it learned (facts.jsonl), "
                          "e.g. demo:tiny or a `meow train` output")
    return load_facts(folder / "facts.jsonl")


def format_table(result: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    head = "| method | verdict | facts forgotten | leak rate before → after | retain kept | steps | wall s |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['method']} | {r['verdict']} | {r['facts_forgotten']}/{result['n_forget']} | "
                     f"{pct(r['leak_rate_before'])} → {pct(r['leak_rate_after'])} | {pct(r['retain_kept'])} | "
                     f"{r['steps']} | {r['wall_s']:.1f} |")
    return "\n".join(lines)


def write_json(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "forget_bench.json"
    path.write_text(json.dumps(result, indent=2))
    return path
