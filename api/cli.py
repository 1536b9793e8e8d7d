"""``meow serve`` and ``meow worker`` (registered through the ``meow.cli`` entry-point group)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
        data_dir: Annotated[Path | None, typer.Option(help="embedded data folder (MEOW_DATA_DIR)")] = None,
        worker: Annotated[bool, typer.Option(help="start a local worker subprocess")] = True,
        demo: Annotated[bool, typer.Option(help="register the demo:tiny model")] = True,
    ) -> None:
        """Run the API and a worker on this machine (SQLite + a local broker unless MEOW_* URLs say otherwise)."""
        from api.embedded import serve as run
        from service.settings import Settings

        if data_dir is not None:
            os.environ["MEOW_DATA_DIR"] = str(data_dir)
        try:
            settings = Settings()
        except ValueError as e:
            typer.echo(f"meow: error: {str(e).splitlines()[0]}", err=True)
            raise typer.Exit(2) from None
        run(settings, host, port, with_worker=worker, seed_demo=demo)

    @app.command(name="worker")
    def worker_cmd(
        concurrency: Annotated[int, typer.Option("-c", "--concurrency", help="processes; keep 1 per GPU")] = 1,
        name: Annotated[str, typer.Option(help="node name prefix (gpu0, gpu1, ...)")] = "meow",
        loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
    ) -> None:
        """Run a production worker: prefork, one job at a time, a fresh child per job."""
        from api.embedded import worker_command
        from service.settings import Settings

        argv = worker_command(Settings(), name=name, loglevel=loglevel, concurrency=concurrency)
        os.execv(argv[0], argv)
