"""Cost per optimizer step of every method, relative to ``ga``: ``python -m meow_engine.methods.cost``.

How it measures: each method finetunes a fresh copy of ``demo:tiny`` (or ``--model``) for
``steps`` optimizer steps on the same forget/retain rows and batch size, in LoRA or full mode;
a progress callback reads the process CPU clock (``time.process_time``; one torch thread, so it is
the compute of this process alone, which other jobs on a shared machine barely disturb) at every
step and the cost is the *median* step time after the first ``skip`` steps (warm-up, lazy
allocations), so one-off setup — tokenisation, the frozen reference copy of full mode, AltPO's
alternates — is left out. Methods run in rounds (every method once per
round, order rotated) and the per-method median over rounds is reported, so load drift on a
shared machine hits all methods alike. Ratios are what transfer to other models: forward
passes, backward passes and reference forwards per step; absolute seconds are this machine's.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from dataclasses import replace
from typing import Any

__all__ = ["measure_step_costs"]


def measure_step_costs(model: str = "demo:tiny", mode: str = "full", steps: int = 12, skip: int = 2,
                       rounds: int = 3, batch_size: int = 4, methods: list[str] | None = None) -> dict[str, Any]:
    import torch

    from meow_engine.config import FinetuneConfig
    from meow_engine.methods import METHODS
    from meow_engine.models import load_model
    from meow_engine.progress import Reporter
    from meow_engine.training import TrainRow, finetune

    torch.set_num_threads(1)
    lm = load_model(model, device="cpu")
    if model == "demo:tiny":
        from meow_engine.tiny.demo import demo_facts

        facts = demo_facts()
    else:  # pragma: no cover - other models: bring facts via the CLI instead
        raise SystemExit("only demo:tiny has built-in facts")
    forget = [TrainRow(f.question, f.answer) for f in facts[:8]]
    retain = [TrainRow(f.question, f.answer) for f in facts[8:24]]
    names = methods or [n for n in METHODS.names() if n != "sft"]
    cfg = FinetuneConfig(mode=mode, max_steps=steps, lr=1e-4, batch_size=batch_size, warmup_ratio=0.0, bf16="off")
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            stamps: list[float] = []
            rep = Reporter(progress=lambda ev, s=stamps: s.append(time.process_time()) if ev.stage == "finetune"
                           else None)
            fresh = replace(lm, model=copy.deepcopy(lm.model))
            finetune(fresh, forget, cfg, method=name, retain_rows=retain, reporter=rep)
            gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)][skip:]
            per_round[name].append(statistics.median(gaps))
    seconds = {n: statistics.median(v) for n, v in per_round.items()}
    base = seconds.get("ga") or min(seconds.values())
    return {"model": model, "mode": mode, "steps": steps, "skip": skip, "rounds": rounds, "batch_size": batch_size,
            "n_forget": len(forget), "n_retain": len(retain), "threads": 1, "clock": "process_time",
            "cpu_seconds_per_step": {n: round(s, 5) for n, s in seconds.items()},
            "relative_to_ga": {n: round(s / base, 2) for n, s in seconds.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo:tiny")
    ap.add_argument("--mode", choices=["lora", "full"], default="full")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", default=None, help="comma-separated subset (default: all but sft)")
    args = ap.parse_args()
    out = measure_step_costs(args.model, args.mode, args.steps, rounds=args.rounds,
                             methods=args.methods.split(",") if args.methods else None)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
