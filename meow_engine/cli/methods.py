"""``meow methods``: every unlearning method, its open-unlearning alias, what it needs, its parameters.

Reads the torch-free catalog (``meow_engine.methods.catalog``), so it answers instantly.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from meow_engine.cli.common import handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("methods")(methods_cmd)


def _fmt_default(v: Any) -> str:
    return "None" if v is None else str(v)


@handle_errors
def methods_cmd(
    name: Annotated[str | None, typer.Argument(help="one method (name or alias) to show in detail")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the catalog as JSON")] = False,
) -> None:
    """List the unlearning methods: name, aliases, whether it needs retain data or a reference model,
    and its parameters with defaults (the source of each default is in --json / the detail view)."""
    from meow_engine.methods.catalog import CATALOG

    specs = [CATALOG.spec(name)] if name else [CATALOG.spec(n) for n in CATALOG.names()]
    if as_json:
        rows = [s.to_dict() for s in specs]
        for r in rows:
            r.pop("params_schema")
        print_json(rows[0] if name else rows)
        return
    if name:
        s = specs[0]
        typer.echo(f"{s.name}" + (f" (alias: {', '.join(s.aliases)})" if s.aliases else ""))
        typer.echo(f"  loss: {s.description}")
        yes_no = {True: "yes", False: "no"}
        typer.echo(f"  needs retain data: {yes_no[s.needs_retain]}; reference model: {yes_no[s.needs_reference]}; "
                   f"trains on inversions: {yes_no[s.uses_inversions]}")
        if s.source:
            typer.echo(f"  source: {s.source}")
        for p in s.param_table():
            typer.echo(f"  --  {p['name']} = {_fmt_default(p['default'])}  ({p['type']}) {p['description']}")
        return
    header = ("method", "aliases", "retain", "reference", "parameters (defaults)")
    cells = [(s.name, ", ".join(s.aliases) or "-", "yes" if s.needs_retain else "-",
              "yes" if s.needs_reference else "-",
              ", ".join(f"{p['name']}={_fmt_default(p['default'])}" for p in s.param_table()) or "-") for s in specs]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header[:-1])]
    for row in (header, *cells):
        typer.echo("  ".join(x.ljust(w) for x, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
