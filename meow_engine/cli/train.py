"""``meow train``: question-masked SFT of facts into a model, to make target models for demos,
tests and benchmarks. The output is always a folder ``load_model`` can open: full weights, or a
LoRA run merged into them (``--no-merge`` keeps the bare PEFT adapter instead)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from statistics import fmean
from typing import Annotated

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)


@handle_errors
def train_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="model folder or a name load_model knows")],
    facts: Annotated[Path, typer.Option("--facts", "-f", help="facts to learn (JSON / JSON Lines)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output model folder")],
    mode: Annotated[str, typer.Option(help="full | lora")] = "full",
    merge: Annotated[bool, typer.Option("--merge/--no-merge", help="lora: save merged full weights")] = True,
    epochs: Annotated[float | None, typer.Option(help="epochs over the facts")] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps (overrides --epochs)")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: by mode and model size, see "
                                             "FinetuneConfig.lr)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="rows per micro-batch")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="micro-batches per optimizer step")] = None,
    lora_rank: Annotated[int | None, typer.Option(help="LoRA rank")] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 42,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 | bfloat16 | float16 (load dtype)")] = None,
    prompt_format: Annotated[str, typer.Option(help="auto | chat | tofu | llama2")] = "auto",
    audit: Annotated[bool, typer.Option("--audit/--no-audit", help="report greedy ROUGE-L recall after")] = True,
    config: Annotated[Path | None, typer.Option(help="FinetuneConfig as JSON (flags override it)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Teach MODEL the FACTS (plain SFT) and save the trained model to OUT."""
    from meow_engine.config import FinetuneConfig
    from meow_engine.errors import ConfigError
    from meow_engine.facts import load_facts
    from meow_engine.models import load_model
    from meow_engine.progress import Reporter
    from meow_engine.training import finetune, rows_from_facts, save_merged

    if mode not in ("full", "lora"):
        raise ConfigError(f"--mode must be 'full' or 'lora', got {mode!r}")
    settings = json.loads(config.read_text()) if config else {}
    for key, val in (("mode", mode), ("epochs", epochs), ("max_steps", max_steps), ("lr", lr),
                     ("batch_size", batch_size), ("grad_accum", grad_accum), ("lora_rank", lora_rank),
                     ("seed", seed)):
        if val is not None:
            settings[key] = val
    cfg = FinetuneConfig.model_validate(settings)
    fact_list = load_facts(facts)
    lm = load_model(model, device=device, dtype=dtype, prompt_format=prompt_format)
    keep_adapter = cfg.mode == "lora" and not merge
    with progress_bars(not as_json) as cb:
        result = finetune(lm, rows_from_facts(fact_list), cfg, method="sft",
                          output_dir=out if cfg.mode == "full" or keep_adapter else None, reporter=Reporter(cb))
    artifact = result.artifact
    trained = result.lm
    if cfg.mode == "lora" and merge:
        artifact, merged = save_merged(result.model, lm.tokenizer, out, str(lm.path or lm.ref))
        trained = replace(trained, model=merged)
    summary = {
        "output_dir": str(out),
        "mode": cfg.mode,
        "merged": cfg.mode == "lora" and merge,
        "facts": len(fact_list),
        "steps": result.steps,
        "final_loss": result.losses[-1] if result.losses else None,
        "losses": result.losses,
        "seconds": result.seconds,
        "artifact": artifact.model_dump(mode="json") if artifact else None,
        "config": cfg.model_dump(mode="json"),
    }
    if audit:
        from meow_engine.generation import rouge_l_audit

        _, scores = rouge_l_audit(trained, [f.question for f in fact_list], [f.answer for f in fact_list])
        summary["rougeL_recall"] = fmean(scores)
    if as_json:
        print_json(summary)
        return
    typer.echo(f"trained {result.steps} steps in {result.seconds:.1f}s, final loss {summary['final_loss']:.4f}")
    if "rougeL_recall" in summary:
        typer.echo(f"greedy ROUGE-L recall on the facts: {summary['rougeL_recall']:.3f}")
    kind = "LoRA adapter" if keep_adapter else "model"
    typer.echo(f"{kind} saved to {out}")
