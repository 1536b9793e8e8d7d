"""Shared CLI plumbing: one-line errors, JSON output, progress bars."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from meow_engine.errors import MeowError
from meow_engine.progress import ProgressEvent

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit: the CLI's way to report bad input."""
    typer.echo(f"meow: error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn engine errors (and missing files) into one-line messages instead of tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MeowError as e:
            fail(str(e))
        except FileNotFoundError as e:
            fail(f"{e.filename}: no such file")
        except ValueError as e:  # pydantic ValidationError is a ValueError
            fail(str(e).replace("\n", "; "))

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Callable[[ProgressEvent], None] | None]:
    """A progress callback drawing one rich bar per stage (stderr); None when disabled."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        transient=False, console=None, redirect_stdout=False,
    )
    progress.console.stderr = True
    tasks: dict[str, Any] = {}

    def callback(ev: ProgressEvent) -> None:
        if ev.stage not in tasks:
            tasks[ev.stage] = progress.add_task(ev.stage, total=ev.total, info="")
        info = ev.message or " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in ev.data.items())
        progress.update(tasks[ev.stage], completed=ev.step, total=ev.total, info=info)

    with progress:
        yield callback
