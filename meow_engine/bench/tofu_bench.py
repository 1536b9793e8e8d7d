"""``meow bench tofu``: the TOFU protocol at the scale of one machine, cached stage by stage.

One run = a preset (authors, base model, equal unlearning budget; see ``tofu_presets``) and a
seed. Stages, each saved under ``<out>/seed<seed>/`` with a ``stage.json`` written last:

1. ``models/target``: the base trained on forget + retain (tiny: built from scratch; pretrained:
   SFT); ``models/retain``: the same recipe and seed on retain only (the oracle FQ compares with);
2. ``evals/target``, ``evals/retain``: TOFU logs (forget, retain, real authors, world facts) and
   the MEMO of the true forget answers;
3. ``runs/<method>``: a fresh copy of the target unlearned with ``unlearn()`` under the preset's
   budget, then evaluated like the models above.

A stage is skipped when its ``stage.json`` carries the same fingerprint (a hash of everything its
output depends on: preset settings, seed, data rows, method parameters, upstream fingerprints), so
an interrupted run resumes where it stopped and a changed setting recomputes only what it affects.
FQ and MU are aggregated from the saved logs at the end (cheap), so adding a method never touches
the other stages. ``force`` recomputes everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from meow_engine.bench.tofu_presets import ALL_METHODS, QUESTIONS_PER_AUTHOR, TofuPreset, get_preset
from meow_engine.config import InverterConfig, LeakAuditConfig, SelectionConfig, TargetConfig, UnlearnConfig
from meow_engine.errors import ConfigError
from meow_engine.facts import Fact, save_facts
from meow_engine.metrics.aggregate import aggregate_logs
from meow_engine.metrics.tofu_data import EVAL_SET_FILES, load_split, resolve_tofu_dir
from meow_engine.metrics.tofu_logs import read_log_dir
from meow_engine.models import LoadedModel, load_model
from meow_engine.progress import NULL_REPORTER, ProgressCallback, ProgressEvent, Reporter

STAGE_FILE = "stage.json"
#: bump when a stage's computation changes in a way that invalidates cached results
BENCH_VERSION = 2  # 2: TOFU-exact prompt layout
DEFAULT_OUT_ROOT = Path("bench_out")


@dataclass(frozen=True)
class TofuBenchSettings:
    preset: str = "tiny"
    out: str | None = None
    seed: int = 0
    methods: tuple[str, ...] | None = None
    force: bool = False
    threads: int | None = None
    device: str | None = None
    tofu_dir: str | None = None


@dataclass(frozen=True)
class BenchData:
    forget: list[Fact]
    retain: list[Fact]
    ra: list[Fact]
    wf: list[Fact]
    rows: dict[str, list[int]]

    def eval_sets(self) -> dict[str, list[Fact]]:
        return {"forget": self.forget, "retain": self.retain, "ra": self.ra, "wf": self.wf}


def default_out(preset: str) -> Path:
    return DEFAULT_OUT_ROOT / f"tofu-{preset}"


def fingerprint(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _facts_digest(facts: Sequence[Fact]) -> str:
    return fingerprint([f.to_dict() for f in facts])


def select_data(preset: TofuPreset, tofu_dir: str | Path | None = None) -> BenchData:
    """The author subset: forget = its last authors, retain = the rest; plus the RA/WF probes."""
    head = load_split("retain_perturbed", tofu_dir)
    q = preset.questions_per_author
    rows = [a * QUESTIONS_PER_AUTHOR + j for a in range(preset.n_authors) for j in range(q)]
    if rows[-1] >= len(head):
        raise ConfigError(f"retain_perturbed.json has {len(head)} rows; preset {preset.name!r} needs {rows[-1] + 1}")
    n_retain = (preset.n_authors - preset.n_forget_authors) * q
    # Ids are the positions inside each eval set (TOFU's add_dataset_index), the TOFU row is recorded.
    subset = [head[i] for i in rows]
    forget = [_renumber(f, i) for i, f in enumerate(subset[n_retain:])]
    retain = [_renumber(f, i) for i, f in enumerate(subset[:n_retain])]
    for where, facts in (("forget", forget), ("retain", retain)):
        bad = [f.id for f in facts if not f.paraphrased_answer or len(f.perturbed_answers) == 0]
        if bad:
            raise ConfigError(f"{where} rows without paraphrased/perturbed answers: {bad[:5]}")
    ra = load_split(EVAL_SET_FILES["ra"], tofu_dir, preset.ra_wf_size)
    wf = load_split(EVAL_SET_FILES["wf"], tofu_dir, preset.ra_wf_size)
    return BenchData(forget=forget, retain=retain, ra=ra, wf=wf,
                     rows={"forget": rows[n_retain:], "retain": rows[:n_retain]})


def _renumber(f: Fact, i: int) -> Fact:
    return Fact(f.question, f.answer, id=str(i), paraphrased_answer=f.paraphrased_answer,
                paraphrased_question=f.paraphrased_question, perturbed_answers=f.perturbed_answers)


class StageStore:
    """Stage folders under one root; a stage is done when its ``stage.json`` has the expected fingerprint."""

    def __init__(self, root: Path, force: bool) -> None:
        self.root = root
        self.force = force
        self._forced: set[str] = set()

    def path(self, name: str) -> Path:
        return self.root / name

    def cached(self, name: str, fp: str) -> dict[str, Any] | None:
        if self.force and name not in self._forced:
            return None
        f = self.path(name) / STAGE_FILE
        if not f.is_file():
            return None
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        return data if data.get("fingerprint") == fp else None

    @contextmanager
    def building(self, name: str) -> Iterator[Path]:
        """A clean folder for the stage; removed again if the stage fails (no half-written cache)."""
        d = self.path(name)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        try:
            yield d
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise

    def save(self, name: str, fp: str, data: dict[str, Any]) -> dict[str, Any]:
        record = {"fingerprint": fp, "bench_version": BENCH_VERSION, **data}
        tmp = self.path(name) / (STAGE_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.path(name) / STAGE_FILE)
        self._forced.add(name)
        return record


def _sub_progress(reporter: Reporter, prefix: str) -> ProgressCallback:
    """Inner progress (finetune steps, eval sets) forwarded under one reused 'detail' stage, so a
    30-minute run draws two progress bars rather than one per inner stage."""

    def forward(ev: ProgressEvent) -> None:
        msg = f"{prefix}: {ev.stage}"
        if "loss" in ev.data:
            msg += f" loss={ev.data['loss']:.3g}"
        reporter.emit("detail", ev.step, ev.total, message=msg)

    return forward


def _sub_reporter(reporter: Reporter, prefix: str) -> Reporter:
    return Reporter(_sub_progress(reporter, prefix), reporter.stop_requested)


# -- stage 1: target and retain models ----------------------------------------------------------


def _build_model(preset: TofuPreset, facts: list[Fact], vocab_facts: list[Fact], out: Path, seed: int,
                 device: str | None, reporter: Reporter) -> dict[str, Any]:
    if preset.base == "tiny":
        from meow_engine.tiny.builder import build_tiny_model

        report = build_tiny_model(facts, out, seed=seed, settings=preset.tiny, reporter=reporter,
                                  tokenizer_facts=vocab_facts)
        if preset.require_recall and not report.reached_target:
            raise ConfigError(f"the tiny model reached ROUGE-L recall {report.recall:.3f} in {report.steps} steps, "
                              f"below the target {preset.tiny.target_recall if preset.tiny else '?'}; raise max_steps")
        info = report.to_dict()
        info.pop("per_fact_recall", None)
        return {"kind": "tiny", **info}
    from meow_engine.training import TrainRow, finetune, save_merged

    assert preset.target_finetune is not None
    cfg = preset.target_finetune.model_copy(update={"seed": seed})
    base = load_model(preset.base, device=device, dtype=preset.dtype)
    rows = [TrainRow(f.question, f.answer) for f in facts]
    if cfg.mode == "full":
        ft = finetune(base, rows, cfg, method="sft", output_dir=out, reporter=reporter)
    else:
        ft = finetune(base, rows, cfg, method="sft", reporter=reporter)
        save_merged(ft.model, base.tokenizer, out, preset.base)
    return {"kind": "sft", "base": preset.base, "steps": ft.steps, "seconds": ft.seconds,
            "final_loss": ft.losses[-1] if ft.losses else None, "mode": cfg.mode}


# -- evaluation ---------------------------------------------------------------------------------


def _evaluate(lm: LoadedModel, data: BenchData, preset: TofuPreset, out: Path, reporter: Reporter) -> dict[str, Any]:
    """TOFU logs of the four sets (written in TOFU's layout) + MEMO of the true forget answers."""
    from meow_engine.memo import compute_memo
    from meow_engine.metrics.evaluator import run_tofu_eval

    t0 = time.perf_counter()
    agg = run_tofu_eval(lm, data.eval_sets(), out_dir=out / "eval", options=preset.eval, reporter=reporter)
    eval_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    memo = compute_memo(lm, data.forget, preset.memo, reporter=reporter)
    memo_s = time.perf_counter() - t0
    return {"flags": agg["flags"], "forget_memo": memo.mean, "forget_memo_items": [f.memo for f in memo.facts],
            "eval_seconds": round(eval_s, 3), "memo_seconds": round(memo_s, 3)}


# -- the whole benchmark ------------------------------------------------------------------------


def _method_params(preset: TofuPreset, method: str, tofu: Path) -> dict[str, Any]:
    from meow_engine.methods import METHODS

    params = dict(preset.method_params.get(method, {}))
    cls = METHODS.get(method)
    # TOFU's own refusal strings for the refusal-based baselines, when the data folder ships them.
    if "refusals_file" in cls.Params.model_fields and "refusals_file" not in params:
        idk = tofu / "idontknow.jsonl"
        if idk.is_file():
            params["refusals_file"] = str(idk)
    return cls.Params(**params).model_dump(mode="json")


def _unlearn_config(preset: TofuPreset, method: str, params: dict[str, Any], seed: int) -> UnlearnConfig:
    # TOFU's protocol: a fixed number of epochs and the paper's data (no verify-until-forgotten
    # rounds, no retain anchors or raw rows), so FQ/MU are comparable with the published runs;
    # `meow bench forget` measures the product defaults instead.
    return UnlearnConfig(
        method=method, method_params=params, audit=False, memo=preset.memo,
        inverter=InverterConfig(kind="rule", seed=seed), selection=SelectionConfig(),
        finetune=preset.unlearn.model_copy(update={"seed": seed}),
        target=TargetConfig(enabled=False), leak_audit=LeakAuditConfig(enabled=False), retain_anchor=0.0,
        train_raw=False,
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from meow_engine import __version__

    out = {"meow": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "transformers", "peft", "scipy", "numpy", "rouge-score", "tokenizers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run_tofu_bench(settings: TofuBenchSettings, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run (or resume) the benchmark; returns the result dict also written as JSON next to the PNG plot."""
    from meow_engine.bench.tofu_report import build_rows, plot_fq_mu

    rep = reporter or NULL_REPORTER
    preset = get_preset(settings.preset)
    methods = tuple(settings.methods) if settings.methods else ALL_METHODS
    from meow_engine.methods import METHODS

    for m in methods:
        METHODS.get(m)  # unknown names fail before any work
    if len(set(methods)) != len(methods):
        raise ConfigError("--methods lists a method twice")
    tofu = resolve_tofu_dir(settings.tofu_dir)
    out_root = Path(settings.out) if settings.out else default_out(preset.name)
    store = StageStore(out_root / f"seed{settings.seed}", settings.force)
    device = settings.device or preset.device
    threads = settings.threads if settings.threads is not None else preset.threads
    if device is not None and device.startswith("cuda"):
        threads = settings.threads  # thread pinning is a CPU matter
    seed = settings.seed
    t_start = time.perf_counter()
    load_start = os.getloadavg()

    data = select_data(preset, tofu)
    data_fp = fingerprint({"forget": _facts_digest(data.forget), "retain": _facts_digest(data.retain),
                           "ra": _facts_digest(data.ra), "wf": _facts_digest(data.wf)})
    pdict = preset.to_dict()
    model_recipe = {k: pdict[k] for k in ("base", "tiny", "target_finetune", "dtype")}
    eval_recipe = {k: pdict[k] for k in ("eval", "memo", "ra_wf_size")}
    stages: list[str] = ["models/target", "models/retain", "evals/target", "evals/retain",
                         *[f"runs/{m}" for m in methods]]
    records: dict[str, dict[str, Any]] = {}
    cached: dict[str, bool] = {}

    with _torch_threads(threads):
        store.root.mkdir(parents=True, exist_ok=True)
        save_facts(data.forget, store.root / "forget.jsonl")
        save_facts(data.retain, store.root / "retain.jsonl")
        model_fps: dict[str, str] = {}
        for i, role in enumerate(("target", "retain")):
            name = f"models/{role}"
            facts = data.forget + data.retain if role == "target" else data.retain
            fp = fingerprint({"v": BENCH_VERSION, "recipe": model_recipe, "seed": seed, "data": data_fp, "role": role})
            model_fps[role] = fp
            rep.emit("tofu bench", i, len(stages), message=f"{name}")
            rec = store.cached(name, fp)
            cached[name] = rec is not None
            if rec is None:
                t0 = time.perf_counter()
                with store.building(name) as d:
                    info = _build_model(preset, facts, data.retain + data.forget, d / "model", seed, device,
                                        _sub_reporter(rep, name))
                    rec = store.save(name, fp, {"model": info, "n_facts": len(facts),
                                                "seconds": round(time.perf_counter() - t0, 3)})
            records[name] = rec

        def load(role: str) -> LoadedModel:
            return load_model(store.path(f"models/{role}") / "model", device=device, dtype=preset.dtype)

        for i, role in enumerate(("target", "retain")):
            name = f"evals/{role}"
            fp = fingerprint({"model": model_fps[role], "eval": eval_recipe, "data": data_fp})
            rep.emit("tofu bench", 2 + i, len(stages), message=name)
            rec = store.cached(name, fp)
            cached[name] = rec is not None
            if rec is None:
                with store.building(name) as d:
                    rec = store.save(name, fp, _evaluate(load(role), data, preset, d, _sub_reporter(rep, name)))
            records[name] = rec

        from meow_engine.pipeline import unlearn

        method_settings: dict[str, Any] = {}
        for i, m in enumerate(methods):
            name = f"runs/{m}"
            params = _method_params(preset, m, tofu)
            cfg = _unlearn_config(preset, m, params, seed)
            method_settings[m] = {"method_params": params, "unlearn_config": cfg.model_dump(mode="json")}
            fp = fingerprint({"v": BENCH_VERSION, "target": model_fps["target"], "config": cfg.model_dump(mode="json"),
                              "eval": eval_recipe, "data": data_fp})
            rep.emit("tofu bench", 4 + i, len(stages), message=name)
            rec = store.cached(name, fp)
            cached[name] = rec is not None
            if rec is None:
                with store.building(name) as d:
                    lm = load("target")  # a fresh copy: methods never see each other's updates
                    t0 = time.perf_counter()
                    # audit=False: the bench evaluates with the TOFU evaluator below instead.
                    res = unlearn(lm, data.forget, data.retain, cfg, progress=_sub_progress(rep, name),
                                  should_stop=rep.stop_requested)
                    unlearn_s = time.perf_counter() - t0
                    # unlearn() trains lm.model in place (full weights or injected LoRA layers), so lm
                    # now answers as the unlearned model.
                    ev = _evaluate(lm, data, preset, d, _sub_reporter(rep, name))
                    losses = res.training.get("losses") or []
                    rec = store.save(name, fp, {
                        "method": m, "unlearn_seconds": round(unlearn_s, 3), "timings": res.timings,
                        "training": {"steps": res.training.get("steps"), "rows": res.training.get("rows"),
                                     "seconds": res.training.get("seconds"),
                                     "first_loss": losses[0] if losses else None,
                                     "last_loss": losses[-1] if losses else None},
                        **ev,
                    })
                    del lm
            records[name] = rec
        rep.emit("tofu bench", len(stages), len(stages), message="aggregate")

    retain_forget = read_log_dir(store.path("evals/retain") / "eval", ["forget"])["forget"]
    results: dict[str, dict[str, Any]] = {}
    for label, name in [("target", "evals/target"), ("retain", "evals/retain"), *[(m, f"runs/{m}") for m in methods]]:
        logs = read_log_dir(store.path(name) / "eval")
        agg = aggregate_logs(logs, retain_forget, preset.eval.tr_variant)
        rec = records[name]
        results[label] = {
            "kind": "model" if label in ("target", "retain") else "method",
            "metrics": agg,
            "forget_memo": rec["forget_memo"],
            "wall_seconds": rec.get("unlearn_seconds"),
            "eval_seconds": rec["eval_seconds"],
            "memo_seconds": rec["memo_seconds"],
            "training": rec.get("training"),
            "timings": rec.get("timings"),
            "cached": cached[name],
        }

    result: dict[str, Any] = {
        "benchmark": "tofu",
        "bench_version": BENCH_VERSION,
        "preset": preset.name,
        "preset_settings": pdict,
        "seed": seed,
        "methods": list(methods),
        "budget": {**preset.unlearn.model_dump(mode="json"), "seed": seed,
                   "note": "equal for every method: same optimizer steps, batch, lr, schedule and mode"},
        "method_settings": method_settings,
        "data": {"tofu_dir": str(tofu), "source": "retain_perturbed.json (TOFU rows 0-399)",
                 "forget_rows": data.rows["forget"], "retain_rows": data.rows["retain"],
                 "n_forget": len(data.forget), "n_retain": len(data.retain), "n_ra": len(data.ra),
                 "n_wf": len(data.wf)},
        "models": {role: records[f"models/{role}"]["model"] | {"seconds": records[f"models/{role}"]["seconds"],
                                                               "cached": cached[f"models/{role}"]}
                   for role in ("target", "retain")},
        "eval_flags": records["evals/target"]["flags"],
        "results": results,
        "table": build_rows(results),
        "versions": _versions(),
        "runtime": {"device": device or "auto", "threads": threads, "cpu_count": os.cpu_count(),
                    "load_average_start": list(load_start), "load_average_end": list(os.getloadavg()),
                    "total_seconds_this_invocation": round(time.perf_counter() - t_start, 3),
                    "stage_seconds": _stage_seconds(records),
                    "stage_seconds_total": round(sum(_stage_seconds(records).values()), 3)},
        "out_dir": str(store.root),
    }
    json_path = out_root / f"tofu-{preset.name}-seed{seed}.json"
    png_path = out_root / f"tofu-{preset.name}-seed{seed}.png"
    result["plot"] = str(png_path)
    plot_fq_mu(result, png_path)
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    result["json"] = str(json_path)
    return result


def _stage_seconds(records: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Seconds each stage took when it was computed (cached stages keep their original timing)."""
    out: dict[str, float] = {}
    for name, rec in records.items():
        if name.startswith("models/"):
            out[name] = rec["seconds"]
        else:
            out[name] = round(sum(rec.get(k) or 0.0 for k in ("unlearn_seconds", "eval_seconds", "memo_seconds")), 3)
    return out

