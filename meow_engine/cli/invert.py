"""``meow invert``: inverted (counter-factual) answers per fact, for inspection or reuse.

Writes one JSON line per fact (question, answer, candidates, raw, flags) with ``--out``; the
file can be fed back with ``--inverter given`` style workflows or read by people checking what an
LLM really answered before cleanup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from meow_engine.cli.common import handle_errors, print_json, progress_bars

#: inverters that do real work per fact (network or a model) and deserve a progress bar
_SLOW = {"openai", "hf"}


def register(app: typer.Typer) -> None:
    app.command("invert")(invert_cmd)


def _read_given(path: Path) -> list[list[str]]:
    """A given-candidates file: a JSON list of lists, or JSON Lines with a ``candidates`` list each
    (the layout ``meow invert --out`` writes, so one run's output can be edited and replayed)."""
    from meow_engine.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}: line {lineno}: invalid JSON ({e.msg})") from None
    return [r.get("candidates") if isinstance(r, dict) else r for r in rows]  # types checked by the inverter


@handle_errors
def invert_cmd(
    facts: Annotated[Path, typer.Option("--facts", "-f", help="facts to invert (JSON / JSON Lines)")],
    inverter: Annotated[str, typer.Option("--inverter", "-i", help="rule | openai | hf | given")] = "rule",
    n: Annotated[int, typer.Option("--n", help="candidates per fact")] = 4,
    base_url: Annotated[str | None, typer.Option(help="openai: endpoint, e.g. http://localhost:8000/v1")] = None,
    model: Annotated[str | None, typer.Option(help="openai: model name at the endpoint; hf: local model")] = None,
    seed: Annotated[int, typer.Option(help="rule/hf: seed (openai: sent as 'seed')")] = 0,
    context: Annotated[Path | None, typer.Option("--context", help="rule: more facts to draw replacements "
                                                 "from (e.g. the retain set)")] = None,
    given: Annotated[Path | None, typer.Option("--given", help="given: candidates file (JSON list of lists, "
                                               "or JSON Lines with 'candidates')")] = None,
    temperature: Annotated[float | None, typer.Option(help="openai/hf sampling temperature (default 0.9)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="openai/hf: max tokens per answer (default 512)")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="openai: seconds per request")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="openai: parallel requests")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="openai: env var holding the API key")] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="openai: retries on 429/5xx/timeouts")] = None,
    retry_wait: Annotated[float | None, typer.Option("--retry-wait", help="openai: backoff base, seconds")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N facts")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write JSON Lines here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Invert facts: N counter-factual answers per fact, with the raw response and flags."""
    from pydantic import ValidationError

    from meow_engine.config import InverterConfig
    from meow_engine.errors import ConfigError
    from meow_engine.facts import load_facts
    from meow_engine.inverters import invert
    from meow_engine.progress import Reporter

    fact_list = load_facts(facts, limit=limit)
    context_facts = load_facts(context) if context is not None else None
    settings: dict[str, Any] = {"kind": inverter, "n": n, "seed": seed, "base_url": base_url, "model": model}
    optional = {"temperature": temperature, "max_tokens": max_tokens, "timeout_s": timeout,
                "max_concurrency": concurrency, "api_key_env": api_key_env, "max_retries": retries,
                "retry_wait_s": retry_wait}
    settings.update({k: v for k, v in optional.items() if v is not None})
    if given is not None:
        settings["candidates"] = _read_given(given)
    try:
        config = InverterConfig(**settings)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid inverter settings: {problems}") from None
    with progress_bars(enabled=not as_json and inverter in _SLOW) as callback:
        sets = invert(fact_list, config, context_facts=context_facts, reporter=Reporter(progress=callback))
    rows = []
    for s in sets:
        fact = fact_list[s.fact_index]
        rows.append({"index": s.fact_index, "id": fact.id, "question": fact.question, "answer": fact.answer,
                     "candidates": s.candidates, "raw": s.raw, "flags": s.flags})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    flagged = sum(1 for r in rows if r["flags"])
    if as_json:
        print_json({"inverter": inverter, "n": n, "facts": len(rows), "flagged": flagged,
                    "output": str(out) if out is not None else None, "items": rows})
        return
    for row in rows:
        typer.echo(f"[{row['index']}] Q: {row['question']}")
        typer.echo(f"    A: {row['answer']}")
        for c in row["candidates"]:
            typer.echo(f"    - {c}")
        if row["flags"]:
            typer.echo(f"    flags: {', '.join(row['flags'])}")
    typer.echo(f"{len(rows)} facts inverted with '{inverter}', {flagged} flagged"
               + (f"; written to {out}" if out is not None else ""))
