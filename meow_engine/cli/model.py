"""``meow model``: build tiny target models, generate fictitious facts, and inspect models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars

model_app = typer.Typer(help="Build tiny models, make fictitious facts, inspect models.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


@model_app.command("build-tiny")
@handle_errors
def build_tiny_cmd(
    facts: Annotated[Path, typer.Option("--facts", "-f", help="facts to memorize (JSON / JSON Lines)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output model folder")],
    seed: Annotated[int, typer.Option(help="seed for weights, data order and tokenizer")] = 0,
    max_steps: Annotated[int | None, typer.Option(help="give up after this many optimizer steps")] = None,
    target_recall: Annotated[float | None, typer.Option(help="stop once greedy ROUGE-L recall reaches this")] = None,
    lr: Annotated[float | None, typer.Option(help="peak learning rate")] = None,
    hidden: Annotated[int | None, typer.Option(help="hidden size")] = None,
    layers: Annotated[int | None, typer.Option(help="number of transformer blocks")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (the result is deterministic per count)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the build report as JSON")] = False,
) -> None:
    """Train a tiny Llama from scratch until it has memorized FACTS; save it to OUT."""
    from meow_engine.facts import load_facts
    from meow_engine.progress import Reporter
    from meow_engine.tiny.builder import TinySettings, build_tiny_model

    overrides = {k: v for k, v in (("max_steps", max_steps), ("target_recall", target_recall), ("lr", lr),
                                   ("hidden", hidden), ("layers", layers), ("threads", threads)) if v is not None}
    settings = TinySettings(**overrides)
    fact_list = load_facts(facts)
    with progress_bars(not as_json) as cb:
        report = build_tiny_model(fact_list, out, seed=seed, settings=settings, reporter=Reporter(cb))
    if as_json:
        print_json({"output_dir": str(out), "seed": seed, **report.to_dict()})
    else:
        status = "memorized" if report.reached_target else "NOT memorized (target not reached)"
        typer.echo(f"{status}: greedy ROUGE-L recall {report.recall:.3f} (min {report.min_recall:.3f}) on "
                   f"{report.n_facts} facts after {report.steps} steps, {report.seconds:.1f} s -> {out}")
    if not report.reached_target:
        raise typer.Exit(1)  # scripts must not mistake an under-trained model for a target model


@model_app.command("gen-facts")
@handle_errors
def gen_facts_cmd(
    n: Annotated[int, typer.Option("--n", help="how many facts")] = 30,
    seed: Annotated[int, typer.Option(help="generator seed")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON Lines file (default: stdout)")] = None,
) -> None:
    """Generate N fictitious TOFU-style facts (invented people, places, works, dates, awards)."""
    from meow_engine.tiny.fictitious import fictitious_facts

    _write_facts(fictitious_facts(n, seed=seed), out)


@model_app.command("demo-facts")
@handle_errors
def demo_facts_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON Lines file (default: stdout)")] = None,
) -> None:
    """Write the facts the built-in demo:tiny model memorized."""
    from meow_engine.tiny.demo import demo_facts

    _write_facts(demo_facts(), out)


@model_app.command("show")
@handle_errors
def show_cmd(
    model: Annotated[str, typer.Argument(help="model folder or a name load_model knows (demo:tiny, ...)")],
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 | bfloat16 | float16")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Load MODEL and print what it is: size, device, dtype, prompt format, where it lives."""
    from meow_engine.models import load_model
    from meow_engine.tiny.builder import read_manifest

    lm = load_model(model, device=device, dtype=dtype)
    cfg = lm.model.config
    info = {
        "ref": lm.ref,
        "path": str(lm.path) if lm.path else None,
        "architecture": (getattr(cfg, "architectures", None) or [type(lm.model).__name__])[0],
        "parameters": sum(p.numel() for p in lm.model.parameters()),
        "layers": getattr(cfg, "num_hidden_layers", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "vocab_size": len(lm.tokenizer),
        "device": str(lm.device),
        "dtype": str(lm.dtype).removeprefix("torch."),
        "prompt_format": lm.prompt_format.name,
        "chat_template": bool(getattr(lm.tokenizer, "chat_template", None)),
    }
    manifest = read_manifest(lm.path) if lm.path else None
    if manifest:
        info["tiny_build"] = {"seed": manifest["seed"], "recall": manifest["report"]["recall"],
                              "facts": manifest["report"]["n_facts"], "steps": manifest["report"]["steps"]}
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:14} {json.dumps(value) if isinstance(value, dict) else value}")


def _write_facts(facts: list, out: Path | None) -> None:
    from meow_engine.facts import save_facts

    if out is None:
        for f in facts:
            sys.stdout.write(json.dumps(f.to_dict(), ensure_ascii=False) + "\n")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    save_facts(facts, out)
    typer.echo(f"wrote {len(facts)} facts to {out}", err=True)
