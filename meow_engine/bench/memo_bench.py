"""MEMO engine benchmark: the batched and speculative engines against the reference, and MEMO's
share of a whole MEOW job.

All engines score the same windows; the report gives each engine's throughput (windows/s), the
speedups, and how often each agrees with the reference on a window's score. Texts are each fact's
true answer plus inverted-like texts (the fact's perturbed answers, else other facts' answers),
i.e. what the pipeline scores. The reference engine is slow (one ``generate`` per window), so on a
large model it runs on a seeded random sample of the windows within a time budget: windows/s is a
rate, and agreement is measured on the sampled windows; the JSON says how many were sampled.

The job section runs ``pipeline.unlearn`` twice on fresh copies of the model, in the same process:
a default MEOW job (rule inverter, ``n`` candidates, top-``k`` selection) and a ``gd`` job with the
same number of optimizer steps (one fixed run each: no training in rounds), and reports both wall
and CPU times and the share of the MEOW job spent in MEMO (``memo_meter``: the audits' MEMO and the
candidates' MEMO).
"""

from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from meow_engine.config import MemoConfig
from meow_engine.errors import ConfigError
from meow_engine.facts import Fact, load_facts
from meow_engine.memo import Window, all_windows, predict_windows, rouge1_precision
from meow_engine.models import LoadedModel, load_model
from meow_engine.progress import NULL_REPORTER, ProgressEvent, Reporter

FACTS_IN_MODEL_FOLDER = "facts.jsonl"  # what the tiny builder writes next to its weights


@dataclass(frozen=True)
class MemoBenchSettings:
    model: str = "demo:tiny"
    facts: str | None = None
    n_facts: int = 12
    n_texts: int = 4
    mode: str = "suffix"
    max_new_tokens: int = 200
    batch_size: int | None = None
    reference_windows: int | None = None
    reference_budget_s: float = 300.0
    device: str | None = None
    dtype: str | None = None
    #: torch CPU threads for both engines (None or 0: torch's default). One thread by default: the
    #: bench compares batching, not threading, and on a shared CPU extra threads only wait on others.
    threads: int | None = 1
    seed: int = 0
    #: job section: forget facts, retain facts (gd needs them), candidates per fact, selected per fact
    #: and optimizer steps of both jobs (40 = a default MEOW job on 4 facts: 10 epochs of 16 rows, batch 4)
    job: bool = True
    job_facts: int = 4
    job_retain: int = 8
    job_n: int = 4
    job_k: int = 3
    job_steps: int = 40


def bench_facts(lm: LoadedModel, facts_path: str | None, n_facts: int) -> list[Fact]:
    """The facts given, else those the model was built on (tiny models), else fictitious ones."""
    if facts_path is not None:
        return load_facts(facts_path)
    if lm.path is not None and (lm.path / FACTS_IN_MODEL_FOLDER).is_file():
        return load_facts(lm.path / FACTS_IN_MODEL_FOLDER)
    from meow_engine.tiny.fictitious import fictitious_facts

    return fictitious_facts(max(n_facts, 8))


def bench_pairs(facts: Sequence[Fact], n_facts: int, n_texts: int) -> list[tuple[str, str]]:
    """(question, text) pairs: each fact's answer, then up to ``n_texts - 1`` inverted-like texts."""
    if n_facts < 1 or n_texts < 1:
        raise ConfigError("n_facts and n_texts must be >= 1")
    pairs: list[tuple[str, str]] = []
    for i, f in enumerate(facts[:n_facts]):
        others = list(f.perturbed_answers) + [facts[(i + j) % len(facts)].answer for j in range(1, len(facts))]
        others = [t for t in dict.fromkeys(others) if t != f.answer]
        pairs.extend((f.question, t) for t in [f.answer, *others][:n_texts])
    return pairs


def _reference_sample(lm: LoadedModel, windows: Sequence[Window], cfg: MemoConfig, limit: int | None,
                      budget_s: float, seed: int, reporter: Reporter) -> tuple[list[int], list[str], float, float]:
    """Reference predictions for a seeded random sample of windows, until ``limit`` or the budget."""
    order = list(range(len(windows)))
    random.Random(seed).shuffle(order)
    if limit is not None:
        order = order[:limit]
    done: list[int] = []
    preds: list[str] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in order:
        reporter.check_stop()
        preds.extend(predict_windows(lm, [windows[i]], cfg))
        done.append(i)
        reporter.emit("reference", len(done), len(order))
        if time.perf_counter() - start > budget_s:
            break
    return done, preds, time.perf_counter() - start, time.process_time() - cpu_start


def _engine_run(lm: LoadedModel, windows: Sequence[Window], cfg: MemoConfig, name: str,
                reporter: Reporter) -> tuple[list[str], float, float, int | None]:
    """Predictions, wall and CPU seconds, and the largest batch size one engine reported."""
    batch_sizes: list[int] = []

    def on_progress(ev: ProgressEvent) -> None:
        batch_sizes.append(int(ev.data.get("batch_size", 0)))
        reporter.emit(name, ev.step, ev.total)

    start, cpu_start = time.perf_counter(), time.process_time()
    preds = predict_windows(lm, windows, cfg, Reporter(on_progress))
    return preds, time.perf_counter() - start, time.process_time() - cpu_start, max(batch_sizes, default=None)


def _agreement(windows: Sequence[Window], idx: Sequence[int], ref: Sequence[str],
               other: Sequence[str]) -> dict[str, float]:
    """Share of windows (of ``idx``) with the same score and the same prediction, and |Δscore|."""
    diffs = []
    same = 0
    for i, rp in zip(idx, ref, strict=True):
        label = windows[i].label
        diffs.append(abs(rouge1_precision(label, rp) - rouge1_precision(label, other[i])))
        same += rp == other[i]
    n = len(diffs)
    return {"agreement": sum(d == 0.0 for d in diffs) / n, "prediction_agreement": same / n,
            "mean_abs_diff": sum(diffs) / n, "max_abs_diff": max(diffs)}


def run_memo_bench(settings: MemoBenchSettings, reporter: Reporter | None = None) -> dict[str, Any]:
    reporter = reporter or NULL_REPORTER
    if settings.threads:
        torch.set_num_threads(settings.threads)
    lm = load_model(settings.model, device=settings.device, dtype=settings.dtype)
    job_need = settings.job_facts + settings.job_retain if settings.job else 0
    facts = bench_facts(lm, settings.facts, max(settings.n_facts, job_need))
    if settings.job and (settings.job_facts < 1 or len(facts) < job_need):  # fail before the long part
        raise ConfigError(f"the job bench needs job_facts + job_retain = {job_need} facts (job_facts >= 1), "
                          f"{len(facts)} available; pass --no-job or more facts")
    pairs = bench_pairs(facts, settings.n_facts, settings.n_texts)
    base = MemoConfig(mode=settings.mode, max_new_tokens=settings.max_new_tokens,  # type: ignore[arg-type]
                      batch_size=settings.batch_size)
    ref_cfg = base.model_copy(update={"engine": "reference"})
    bat_cfg = base.model_copy(update={"engine": "batched"})
    spec_cfg = base.model_copy(update={"engine": "speculative"})
    windows = all_windows(pairs, settings.mode)
    if not windows:
        raise ConfigError("no MEMO windows to benchmark (texts shorter than 2 characters)")

    # warm-up: first calls pay one-off costs (kernel selection, lazy imports) that are not throughput
    predict_windows(lm, windows[:1], ref_cfg)
    predict_windows(lm, windows[:2], bat_cfg)
    predict_windows(lm, windows[:2], spec_cfg)

    bat_preds, bat_s, bat_cpu, bat_bs = _engine_run(lm, windows, bat_cfg, "batched", reporter)
    spec_preds, spec_s, spec_cpu, spec_bs = _engine_run(lm, windows, spec_cfg, "speculative", reporter)
    ref_idx, ref_preds, ref_s, ref_cpu = _reference_sample(lm, windows, ref_cfg, settings.reference_windows,
                                                  settings.reference_budget_s, settings.seed, reporter)
    n_ref = len(ref_idx)
    vs_bat = _agreement(windows, ref_idx, ref_preds, bat_preds)
    vs_spec = _agreement(windows, ref_idx, ref_preds, spec_preds)
    spec_vs_bat = _agreement(windows, range(len(windows)), bat_preds, spec_preds)
    spec_scores = [rouge1_precision(w.label, p) for w, p in zip(windows, spec_preds, strict=True)]
    ref_rate = n_ref / ref_s
    ref_cpu_per = ref_cpu / n_ref
    result: dict[str, Any] = {
        "model": settings.model,
        "device": str(lm.device) + (f" ({torch.cuda.get_device_name(lm.device)})" if lm.device.type == "cuda"
                                    else f" ({platform.processor() or platform.machine()}, "
                                         f"{torch.get_num_threads()} threads)"),
        "dtype": str(lm.dtype).removeprefix("torch."),
        "mode": settings.mode,
        "max_new_tokens": settings.max_new_tokens,
        "n_facts": min(settings.n_facts, len(facts)),
        "n_texts": len(pairs),
        "n_windows": len(windows),
        "default_engine": MemoConfig().engine,
        "reference_n_windows": n_ref,
        "reference_subset": n_ref < len(windows),
        "reference_seconds": round(ref_s, 3),
        "batched_seconds": round(bat_s, 3),
        "speculative_seconds": round(spec_s, 3),
        "reference_windows_per_s": ref_rate,
        "batched_windows_per_s": len(windows) / bat_s,
        "speculative_windows_per_s": len(windows) / spec_s,
        # headline: the speculative engine (the default) against the reference loop
        "speedup": (len(windows) / spec_s) / ref_rate,
        "speedup_batched": (len(windows) / bat_s) / ref_rate,
        "speedup_over_batched": bat_s / spec_s,
        # CPU seconds this process used: on a machine shared with other jobs, wall-clock rates swing
        # with their load while CPU time tracks the work each engine does
        "reference_cpu_seconds": round(ref_cpu, 3),
        "batched_cpu_seconds": round(bat_cpu, 3),
        "speculative_cpu_seconds": round(spec_cpu, 3),
        "speedup_cpu_time": ref_cpu_per / (spec_cpu / len(windows)),
        "speedup_batched_cpu_time": ref_cpu_per / (bat_cpu / len(windows)),
        **vs_spec,
        "batched_vs_reference": vs_bat,
        "speculative_vs_batched": spec_vs_bat,
        "speculative_memo_mean": sum(spec_scores) / len(spec_scores),
        "batch_size": spec_bs or bat_bs or settings.batch_size,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "transformers_version": _transformers_version(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "settings": asdict(settings),
    }
    if settings.job:
        result["job"] = run_job_bench(settings, facts, base, reporter)
    return result


def run_job_bench(settings: MemoBenchSettings, facts: Sequence[Fact], memo: MemoConfig,
                  reporter: Reporter | None = None) -> dict[str, Any]:
    """A default MEOW job and a ``gd`` job with the same steps, each on a fresh copy of the model."""
    from meow_engine.config import FinetuneConfig, InverterConfig, SelectionConfig, TargetConfig, UnlearnConfig
    from meow_engine.memo import memo_meter
    from meow_engine.pipeline import unlearn

    reporter = reporter or NULL_REPORTER
    need = settings.job_facts + settings.job_retain
    if settings.job_facts < 1 or len(facts) < need:
        raise ConfigError(f"the job bench needs job_facts + job_retain = {need} facts (job_facts >= 1), "
                          f"{len(facts)} available")
    forget, retain = list(facts[: settings.job_facts]), list(facts[settings.job_facts: need])
    finetune = FinetuneConfig(max_steps=settings.job_steps)
    out: dict[str, Any] = {"forget_facts": len(forget), "retain_facts": len(retain), "steps": settings.job_steps,
                           "n": settings.job_n, "k": settings.job_k, "memo_engine": MemoConfig().engine}
    for method in ("meow", "gd"):
        cfg = UnlearnConfig(method=method, inverter=InverterConfig(n=settings.job_n),
                            selection=SelectionConfig(k=settings.job_k), memo=memo.model_copy(update={
                                "engine": MemoConfig().engine}), finetune=finetune,
                            # one fixed run of job_steps each: training in rounds would stop each job
                            # whenever its own target holds, and the steps would no longer be equal
                            target=TargetConfig(enabled=False))
        lm = load_model(settings.model, device=settings.device, dtype=settings.dtype)  # fresh: jobs train it
        reporter.emit(f"job {method}", 0, 1)
        with memo_meter() as meter:
            start, cpu_start = time.perf_counter(), time.process_time()
            res = unlearn(lm, forget, retain, cfg)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        reporter.emit(f"job {method}", 1, 1)
        out[method] = {"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                       "memo_seconds": round(meter.seconds, 3), "memo_cpu_seconds": round(meter.cpu_seconds, 3),
                       "memo_windows": meter.windows, "memo_share": meter.seconds / wall,
                       "train_steps": res.training["steps"], "timings": res.timings,
                       "memo_before": res.forget.memo_before, "memo_after": res.forget.memo_after}
    out["wall_ratio"] = out["meow"]["wall_seconds"] / out["gd"]["wall_seconds"]
    out["cpu_ratio"] = out["meow"]["cpu_seconds"] / out["gd"]["cpu_seconds"]
    return out


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def write_bench_json(result: dict[str, Any], out_dir: str | Path) -> Path:
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "memo_bench_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in result["model"]) + ".json"
    path = out / name
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
