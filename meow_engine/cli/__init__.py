"""The ``meow`` command line.

Each command group lives in its own module with a ``register(app)`` function, so areas of the
engine add commands without touching this file's logic. Service commands (``serve``, ``worker``)
come from the ``meow.cli`` entry-point group: the engine itself never imports web or queue code.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

import typer

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="meow",
    help="MEOW unlearning: invert facts, score them with MEMO, finetune, and prove the model forgot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.command()
def version() -> None:
    """Print the meow version."""
    from meow_engine import __version__

    typer.echo(__version__)


_COMMAND_MODULES = ("model", "train", "memo", "invert", "unlearn", "eval", "bench", "bench_tofu", "methods")


def _load_commands() -> None:
    for name in _COMMAND_MODULES:
        mod_name = f"meow_engine.cli.{name}"
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:
                continue
            raise
        mod.register(app)
    for ep in entry_points(group="meow.cli"):
        try:
            register = ep.load()
        except ModuleNotFoundError:
            continue  # the service extras are not installed: engine-only CLI
        register(app)


_load_commands()


def main() -> None:
    app()
