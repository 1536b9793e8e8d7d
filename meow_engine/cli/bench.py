"""``meow bench``: benchmark commands. ``bench_app`` is module-level so other modules can add
their own ``bench <name>`` commands to the same group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars

bench_app = typer.Typer(help="Benchmarks (timed comparisons written as JSON).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("memo")
@handle_errors
def memo_bench_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="model folder or a name load_model knows")] = "demo:tiny",
    facts: Annotated[Path | None, typer.Option("--facts", "-f", help="facts file (default: the model's own "
                                                "facts for tiny models, else fictitious facts)")] = None,
    n_facts: Annotated[int, typer.Option(help="facts to take")] = 12,
    n_texts: Annotated[int, typer.Option(help="texts per fact: the answer + inverted-like texts")] = 4,
    mode: Annotated[str, typer.Option(help="suffix | prefix")] = "suffix",
    max_new_tokens: Annotated[int, typer.Option(help="greedy tokens per window")] = 200,
    batch_size: Annotated[int | None, typer.Option(help="batched engine windows per forward")] = None,
    reference_windows: Annotated[int | None, typer.Option(help="run the reference on at most this many "
                                                          "(randomly sampled) windows")] = None,
    reference_budget_s: Annotated[float, typer.Option(help="stop the reference after this many seconds")] = 300.0,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 (default) | bfloat16 | float16")] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads for both engines (0: torch's default)")] = 1,
    job: Annotated[bool, typer.Option("--job/--no-job", help="also time a MEOW job against a gd job with the "
                                      "same steps (MEMO's share of the job)")] = True,
    job_facts: Annotated[int, typer.Option(help="job: facts to forget")] = 4,
    job_retain: Annotated[int, typer.Option(help="job: retain facts (gd trains on them)")] = 8,
    job_n: Annotated[int, typer.Option(help="job: inverted candidates per fact")] = 4,
    job_k: Annotated[int, typer.Option(help="job: candidates selected per fact")] = 3,
    job_steps: Annotated[int, typer.Option(help="job: optimizer steps of both jobs")] = 40,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="folder to write memo_bench_<model>.json")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Time the batched and speculative MEMO engines against the reference engine, check that they
    agree, and time a MEOW job against a gd job."""
    from meow_engine.bench.memo_bench import MemoBenchSettings, run_memo_bench, write_bench_json
    from meow_engine.progress import Reporter

    settings = MemoBenchSettings(model=model, facts=str(facts) if facts else None, n_facts=n_facts,
                                 n_texts=n_texts, mode=mode, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 reference_windows=reference_windows, reference_budget_s=reference_budget_s,
                                 device=device, dtype=dtype, threads=threads, job=job, job_facts=job_facts,
                                 job_retain=job_retain, job_n=job_n, job_k=job_k, job_steps=job_steps)
    with progress_bars(not as_json) as cb:
        result = run_memo_bench(settings, Reporter(cb))
    path = write_bench_json(result, out) if out is not None else None
    if as_json:
        print_json(result)
        return
    sub = " (sampled)" if result["reference_subset"] else ""
    bat = result["batched_vs_reference"]
    rows = [
        ("model", f"{result['model']} on {result['device']}, {result['dtype']}"),
        ("texts / windows", f"{result['n_texts']} / {result['n_windows']}"),
        ("reference", f"{result['reference_windows_per_s']:.2f} windows/s "
                      f"({result['reference_n_windows']} windows{sub}, {result['reference_seconds']:.1f}s)"),
        ("batched", f"{result['batched_windows_per_s']:.2f} windows/s ({result['batched_seconds']:.2f}s): "
                    f"{result['speedup_batched']:.1f}x ({result['speedup_batched_cpu_time']:.1f}x in CPU time), "
                    f"agreement {bat['agreement']:.4f}"),
        ("speculative", f"{result['speculative_windows_per_s']:.2f} windows/s ({result['speculative_seconds']:.2f}s, "
                        f"batch {result['batch_size']})"),
        ("speedup", f"{result['speedup']:.1f}x wall clock ({result['speedup_cpu_time']:.1f}x in CPU time), "
                    f"{result['speedup_over_batched']:.2f}x over batched"),
        ("agreement", f"{result['agreement']:.4f} (identical predictions {result['prediction_agreement']:.4f})"),
        ("mean |diff|", f"{result['mean_abs_diff']:.2e} (max {result['max_abs_diff']:.3f})"),
    ]
    if "job" in result:
        j = result["job"]
        rows += [
            ("MEOW job", f"{j['meow']['wall_seconds']:.1f}s wall, {j['meow']['cpu_seconds']:.1f}s CPU, "
                         f"MEMO {100 * j['meow']['memo_share']:.0f}% ({j['meow']['memo_windows']} windows)"),
            ("gd job", f"{j['gd']['wall_seconds']:.1f}s wall, {j['gd']['cpu_seconds']:.1f}s CPU "
                       f"({j['steps']} steps each)"),
            ("MEOW / gd", f"{j['wall_ratio']:.2f}x wall clock, {j['cpu_ratio']:.2f}x CPU time"),
        ]
    for k, v in rows:
        typer.echo(f"{k:<16} {v}")
    if path:
        typer.echo(f"written to {path}")


@bench_app.command("forget")
@handle_errors
def forget_bench_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="a model folder with its facts.jsonl")] = "demo:tiny",
    methods: Annotated[str | None, typer.Option(help="comma-separated method names (default: meow and baselines)")]
    = None,
    n_forget: Annotated[int, typer.Option(help="facts to forget (the first ones)")] = 10,
    n_retain: Annotated[int, typer.Option(help="retain facts (the next ones)")] = 20,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="folder to write forget_bench.json")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Every method under the same default target and leakage audit: verdict, leak rate, retain kept, cost."""
    from meow_engine.bench.forget_bench import DEFAULT_METHODS, format_table, run_forget_bench, write_json

    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else list(DEFAULT_METHODS)
    result = run_forget_bench(model, names, n_forget=n_forget, n_retain=n_retain)
    path = write_json(result, out) if out is not None else None
    if as_json:
        print_json(result)
        return
    typer.echo(format_table(result))
    if path:
        typer.echo(f"wrote {path}")
