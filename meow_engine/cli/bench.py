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
    out: Annotated[Path | None, typer.Option("--out", "-o", help="folder to write memo_bench_<model>.json")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Time the batched MEMO engine against the reference engine and check that they agree."""
    from meow_engine.bench.memo_bench import MemoBenchSettings, run_memo_bench, write_bench_json
    from meow_engine.progress import Reporter

    settings = MemoBenchSettings(model=model, facts=str(facts) if facts else None, n_facts=n_facts,
                                 n_texts=n_texts, mode=mode, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 reference_windows=reference_windows, reference_budget_s=reference_budget_s,
                                 device=device, dtype=dtype, threads=threads)
    with progress_bars(not as_json) as cb:
        result = run_memo_bench(settings, Reporter(cb))
    path = write_bench_json(result, out) if out is not None else None
    if as_json:
        print_json(result)
        return
    sub = " (sampled)" if result["reference_subset"] else ""
    rows = [
        ("model", f"{result['model']} on {result['device']}, {result['dtype']}"),
        ("texts / windows", f"{result['n_texts']} / {result['n_windows']}"),
        ("reference", f"{result['reference_windows_per_s']:.2f} windows/s "
                      f"({result['reference_n_windows']} windows{sub}, {result['reference_seconds']:.1f}s)"),
        ("batched", f"{result['batched_windows_per_s']:.2f} windows/s "
                    f"({result['n_windows']} windows, {result['batched_seconds']:.1f}s, batch {result['batch_size']})"),
        ("speedup", f"{result['speedup']:.1f}x wall clock ({result['speedup_cpu_time']:.1f}x in CPU time)"),
        ("agreement", f"{result['agreement']:.4f} (identical predictions {result['prediction_agreement']:.4f})"),
        ("mean |diff|", f"{result['mean_abs_diff']:.2e} (max {result['max_abs_diff']:.3f})"),
    ]
    for k, v in rows:
        typer.echo(f"{k:<16} {v}")
    if path:
        typer.echo(f"written to {path}")
