"""``meow bench tofu``: MEOW against every baseline under the TOFU protocol, one cached command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars


def register(app: typer.Typer) -> None:
    from meow_engine.cli.bench import bench_app

    bench_app.command("tofu")(tofu_bench_cmd)


@handle_errors
def tofu_bench_cmd(
    preset: Annotated[str, typer.Option("--preset", "-p", help="tiny | smollm2 | smollm2-cpu | micro")] = "tiny",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder (default bench_out/tofu-<preset>)")]
    = None,
    seed: Annotated[int, typer.Option(help="seed of the target/retain models and of every method")] = 0,
    methods: Annotated[str | None, typer.Option(help="comma-separated subset, e.g. meow,ga,npo (default: all)")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="ignore cached stages and recompute everything")] = False,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: the preset's, 1 for tiny)")]
    = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto (default: the preset's)")] = None,
    tofu_dir: Annotated[Path | None, typer.Option(help="TOFU data folder (default: MEOW_TOFU_DIR or "
                                                  "../shared/data/tofu)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole result as JSON")] = False,
) -> None:
    """Train target and retain models on a TOFU author subset, unlearn with MEOW and every baseline
    under one equal budget, and report FQ, MU, forget ROUGE-L/MEMO and wall time (table, JSON, PNG).
    Finished stages are cached under the output folder: rerunning resumes."""
    from transformers.utils import logging as hf_logging

    from meow_engine.bench.tofu_bench import TofuBenchSettings, run_tofu_bench
    from meow_engine.bench.tofu_report import format_table
    from meow_engine.progress import Reporter

    hf_logging.disable_progress_bar()  # dozens of "Loading weights" bars would drown the two bench bars
    method_list = tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else None
    settings = TofuBenchSettings(preset=preset, out=str(out) if out else None, seed=seed, methods=method_list,
                                 force=force, threads=threads, device=device,
                                 tofu_dir=str(tofu_dir) if tofu_dir else None)
    with progress_bars(not as_json) as cb:
        result = run_tofu_bench(settings, Reporter(cb))
    if as_json:
        print_json(result)
        return
    typer.echo(format_table(result["table"]))
    b = result["budget"]
    typer.echo(f"budget: {b['mode']} finetune, {b['max_steps']} steps × batch {b['batch_size']}, lr {b['lr']}, "
               f"seed {result['seed']}; FQ vs the retain model on {result['data']['n_forget']} forget items")
    typer.echo(f"json: {result['json']}")
    typer.echo(f"plot: {result['plot']}")
