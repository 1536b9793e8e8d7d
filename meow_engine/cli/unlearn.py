"""``meow unlearn``: run the full MEOW pipeline (or a baseline) from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars

if TYPE_CHECKING:
    from meow_engine.results import UnlearnResult


def register(app: typer.Typer) -> None:
    app.command("unlearn")(unlearn_cmd)


@handle_errors
def unlearn_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="model folder or a name load_model knows")],
    facts: Annotated[Path, typer.Option("--facts", "-f", help="facts to forget (JSON / JSON Lines)")],
    retain: Annotated[Path | None, typer.Option("--retain", "-r", help="retain facts used as utility probes")] = None,
    holdout: Annotated[Path | None, typer.Option(help="facts the model never saw: Min-K%++ membership AUC")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="where to write the adapter/model")] = None,
    # Flags default to None so that a --config file is only overridden by flags actually given;
    # the defaults themselves live once, in meow_engine.config.
    method: Annotated[str | None, typer.Option(help="method or alias (default meow; see meow methods)")] = None,
    inverter: Annotated[str | None, typer.Option(help="rule | openai | hf | given (default rule)")] = None,
    n: Annotated[int | None, typer.Option("--n", help="inverted candidates per fact (default 4)")] = None,
    k: Annotated[int | None, typer.Option("--k", help="inversions selected per fact (default 3)")] = None,
    order: Annotated[str | None, typer.Option(help="largest | smallest | random (default largest)")] = None,
    mode: Annotated[str | None, typer.Option(help="finetune mode: lora | full (default lora)")] = None,
    epochs: Annotated[float | None, typer.Option(help="finetune epochs")] = None,
    max_steps: Annotated[int | None, typer.Option(help="finetune optimizer steps (overrides epochs)")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for --inverter openai")] = None,
    inverter_model: Annotated[str | None, typer.Option(help="model for the openai/hf inverter")] = None,
    config: Annotated[Path | None, typer.Option(help="UnlearnConfig as JSON (flags given override it)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for inversion, selection and finetune")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the full result as JSON")] = False,
) -> None:
    """Make MODEL forget FACTS; print before/after MEMO and ROUGE-L, save the adapter to --out."""
    from meow_engine.config import UnlearnConfig
    from meow_engine.facts import load_facts
    from meow_engine.pipeline import unlearn

    def given(**values: object) -> dict:
        return {key: val for key, val in values.items() if val is not None}

    cfg = UnlearnConfig.model_validate(json.loads(config.read_text()) if config else {})
    cfg = UnlearnConfig.model_validate({
        **cfg.model_dump(),
        **given(method=method),
        "inverter": {**cfg.inverter.model_dump(),
                     **given(kind=inverter, n=n, seed=seed, base_url=base_url, model=inverter_model)},
        "selection": {**cfg.selection.model_dump(), **given(k=k, order=order, seed=seed)},
        "finetune": {**cfg.finetune.model_dump(), **given(mode=mode, seed=seed, epochs=epochs, max_steps=max_steps,
                                                          lr=lr)},
    })
    method = cfg.method
    forget = load_facts(facts)
    retain_facts = load_facts(retain) if retain else None
    out_dir = out or Path("runs") / f"unlearn-{method}"
    with progress_bars(not as_json) as cb:
        result = unlearn(model, forget, retain_facts, cfg, output_dir=out_dir, progress=cb,
                         holdout_facts=load_facts(holdout) if holdout else None)
    if as_json:
        print_json(result.model_dump(mode="json"))
        _exit_on_verdict(result)
        return
    _leak_table(result)
    f = result.forget
    typer.echo(f"forget ({f.n_facts} facts): MEMO {f.memo_before:.3f} -> {f.memo_after:.3f}, "
               f"ROUGE-L recall {f.rougeL_before:.3f} -> {f.rougeL_after:.3f}")
    if result.retain:
        r = result.retain
        typer.echo(f"retain ({r.n_facts} facts): ROUGE-L recall {r.rougeL_before:.3f} -> {r.rougeL_after:.3f}")
    membership = result.report.get("after", {}).get("membership")
    if membership:
        before = result.report["before"]["membership"]["mink_pp_auc"]
        typer.echo(f"Min-K%++ AUC forget vs held-out: {before:.3f} -> {membership['mink_pp_auc']:.3f} (0.5 = unseen)")
    if result.artifact:
        typer.echo(f"{result.artifact.kind} saved to {result.artifact.path}")
    typer.echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    typer.echo(f"verdict: {result.verdict} — {result.verdict_reason}")
    _exit_on_verdict(result)


#: ``meow unlearn``'s exit status when the audit says the facts are not (all) forgotten
EXIT_NOT_FORGOTTEN = 3


def _exit_on_verdict(result: UnlearnResult) -> None:
    """Exit 3 unless the leakage audit said ``forgotten`` (a disabled audit proves nothing either)."""
    if result.verdict != "forgotten":
        raise typer.Exit(EXIT_NOT_FORGOTTEN)


def _leak_table(result: UnlearnResult) -> None:
    """One line per forget fact: verdict, leaking probes after/before, the spans checked."""
    for r in result.facts:
        spans = ", ".join(s.text for s in r.spans) or "-"
        note = f"  [uninvertible: {r.uninvertible}]" if r.uninvertible else ""
        typer.echo(f"  fact {r.index}: {r.verdict or 'unmeasured':<13} leaking probes {r.leaks_after}/{len(r.probes)} "
                   f"(before {r.leaks_before})  spans: {spans}{note}")
    if result.rounds:
        last = result.rounds[-1]
        typer.echo(f"rounds: {len(result.rounds)}, last: {last.decision} at step {last.step} (lr {last.lr:.2g})")
