"""``meow memo``: MEMO of each fact's answer under a model, with either engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars


def register(app: typer.Typer) -> None:
    app.command("memo")(memo_cmd)


@handle_errors
def memo_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="model folder or a name load_model knows")],
    facts: Annotated[Path, typer.Option("--facts", "-f", help="facts to score (JSON / JSON Lines)")],
    mode: Annotated[str, typer.Option(help="suffix (cut the answer) | prefix (cut the question)")] = "suffix",
    engine: Annotated[str | None, typer.Option(help="speculative (default) | batched | reference (one window "
                                               "at a time)")] = None,
    parity: Annotated[bool, typer.Option("--parity", help="decode predictions like the reference code")] = False,
    stride: Annotated[int, typer.Option(help="characters between cut points")] = 5,
    max_new_tokens: Annotated[int, typer.Option(help="greedy tokens generated per window")] = 200,
    batch_size: Annotated[int | None, typer.Option(help="windows per forward (default: sized to memory)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="score only the first N facts")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 (default) | bfloat16 | float16")] = None,
    adapter: Annotated[Path | None, typer.Option(help="PEFT adapter folder to apply on the model")] = None,
    windows: Annotated[bool, typer.Option("--windows", help="include per-window scores in --json")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON: mean and per-fact memo")] = False,
) -> None:
    """Print each fact's MEMO (mean ROUGE-1 precision of greedy continuations) and the mean."""
    from meow_engine.config import MemoConfig
    from meow_engine.facts import load_facts
    from meow_engine.memo import compute_memo
    from meow_engine.models import load_model
    from meow_engine.progress import Reporter

    cfg = MemoConfig(mode=mode, parity=parity, stride=stride,  # type: ignore[arg-type]
                     max_new_tokens=max_new_tokens, batch_size=batch_size,
                     **({"engine": engine} if engine is not None else {}))
    fact_list = load_facts(facts, limit=limit)
    lm = load_model(model, device=device, dtype=dtype, adapter=adapter)
    with progress_bars(not as_json) as cb:
        result = compute_memo(lm, fact_list, cfg, Reporter(cb))
    if as_json:
        payload = result.model_dump(mode="json")
        payload["model"] = model
        payload["memo"] = [
            {k: v for k, v in f.items() if windows or k != "windows"} for f in payload.pop("facts")
        ]
        print_json(payload)
        return
    width = min(60, max(len(f.question) for f in result.facts))
    for f in result.facts:
        q = f.question if len(f.question) <= width else f.question[: width - 1] + "…"
        typer.echo(f"{f.index:>4}  {q:<{width}}  {f.memo:.4f}  ({f.n_windows} windows)")
    typer.echo(f"mean MEMO ({result.mode}, {result.engine}): {result.mean:.4f} over {len(result.facts)} facts, "
               f"{result.windows_total} windows in {result.seconds:.1f}s")
