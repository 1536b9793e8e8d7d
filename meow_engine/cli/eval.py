"""``meow eval``: TOFU metrics from existing logs (``logs``) or by running a model (``model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars

eval_app = typer.Typer(help="TOFU metrics: aggregate TOFU-layout logs or evaluate a model.", no_args_is_help=True)

_TABLE_ROWS = (
    ("Model Utility", "model_utility"), ("Forget Quality", "forget_quality"), ("KS statistic", "ks_statistic"),
    ("Forget Prob", "forget_prob"), ("Forget ROUGE-L", "forget_rougeL"), ("Forget Truth Ratio", "forget_truth_ratio"),
    ("Retain Prob", "retain_prob"), ("Retain ROUGE-L", "retain_rougeL"), ("Retain Truth Ratio", "retain_truth_ratio"),
    ("Real Authors Prob", "ra_prob"), ("Real Authors ROUGE-L", "ra_rougeL"),
    ("Real Authors Truth Ratio", "ra_truth_ratio"),
    ("World Facts Prob", "wf_prob"), ("World Facts ROUGE-L", "wf_rougeL"),
    ("World Facts Truth Ratio", "wf_truth_ratio"),
)


def _print_table(result: dict[str, Any]) -> None:
    for label, key in _TABLE_ROWS:
        if key in result:
            typer.echo(f"{label:<26} {result[key]:.4g}")
    typer.echo(f"{'truth ratio variant':<26} {result['flags']['tr_variant']}")


def _check_variant(value: str) -> str:
    from meow_engine.errors import ConfigError
    from meow_engine.metrics.aggregate import TR_VARIANTS

    if value not in TR_VARIANTS:
        raise ConfigError(f"--tr-variant must be one of {', '.join(TR_VARIANTS)}, got {value!r}")
    return value


@eval_app.command("logs")
@handle_errors
def logs_cmd(
    log_dir: Path = typer.Argument(..., help="folder with eval_log.json, eval_log_forget.json, "
                                   "eval_real_author_wo_options.json, eval_real_world_wo_options.json"),
    retain: Path | None = typer.Option(None, "--retain", help="the matching retain model's log folder (for FQ)"),
    tr_variant: str = typer.Option("geometric", "--tr-variant", help="geometric (official) | arithmetic (utils.py)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Aggregate TOFU-layout per-item logs: Model Utility, per-set numbers, and FQ with --retain."""
    from meow_engine.metrics.aggregate import aggregate_logs
    from meow_engine.metrics.tofu_logs import read_flags, read_log_dir

    variant = _check_variant(tr_variant)
    logs = read_log_dir(log_dir)
    retain_forget = read_log_dir(retain, ["forget"])["forget"] if retain is not None else None
    result = aggregate_logs(logs, retain_forget, variant)  # type: ignore[arg-type]
    result["flags"] = {"tr_variant": variant, "logs": read_flags(log_dir),
                       "retain_logs": read_flags(retain) if retain is not None else None}
    result["log_dir"] = str(log_dir)
    result["retain_dir"] = str(retain) if retain is not None else None
    if as_json:
        print_json(result)
    else:
        _print_table(result)


@eval_app.command("model")
@handle_errors
def model_cmd(
    model: str = typer.Argument(..., help="model folder, built-in name or HF id"),
    split: str = typer.Option("forget10", "--split", help="forget01 | forget05 | forget10"),
    tofu_dir: Path | None = typer.Option(None, "--tofu-dir", help="TOFU data folder (default: MEOW_TOFU_DIR or "
                                         "../shared/data/tofu)"),
    out: Path | None = typer.Option(None, "--out", help="write the per-item logs (TOFU layout) here"),
    retain_logs: Path | None = typer.Option(None, "--retain-logs", help="retain model's log folder (for FQ)"),
    ds_size: int = typer.Option(300, "--ds-size", help="first N rows per set (legacy 300); 0 = all rows"),
    generation: str = typer.Option("max_length", "--generation", help="max_length (legacy) | max_new_tokens"),
    max_tokens: int = typer.Option(200, "--max-tokens", help="generation token limit"),
    tr_variant: str = typer.Option("geometric", "--tr-variant", help="geometric (official) | arithmetic"),
    batch_size: int = typer.Option(16, "--batch-size"),
    device: str | None = typer.Option(None, "--device"),
    dtype: str | None = typer.Option(None, "--dtype"),
    prompt_format: str = typer.Option("auto", "--prompt-format", help="auto | chat | tofu | llama2"),
    adapter: Path | None = typer.Option(None, "--adapter", help="PEFT adapter folder to apply"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Run a model on TOFU's four eval sets, write TOFU-layout logs and print the metrics."""
    from meow_engine.metrics.evaluator import EvalOptions, run_tofu_eval
    from meow_engine.metrics.tofu_data import load_eval_sets
    from meow_engine.models import load_model
    from meow_engine.progress import Reporter

    options = EvalOptions(ds_size=ds_size or None, generation=generation, max_tokens=max_tokens,  # type: ignore[arg-type]
                          tr_variant=_check_variant(tr_variant), batch_size=batch_size)  # type: ignore[arg-type]
    sets = load_eval_sets(split, tofu_dir, options.ds_size)
    lm = load_model(model, device=device, dtype=dtype, prompt_format=prompt_format, adapter=adapter)
    with progress_bars(progress and not as_json) as cb:
        result = run_tofu_eval(lm, sets, out, options, retain_logs, Reporter(cb))
    result["flags"]["split"] = split
    if as_json:
        print_json(result)
    else:
        _print_table(result)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
