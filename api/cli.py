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
        auth: Annotated[str | None, typer.Option(help="required | off (MEOW_AUTH; default here: off with SQLite)")
                        ] = None,
    ) -> None:
        """Run the API and a worker on this machine (SQLite + a local broker unless MEOW_* URLs say otherwise)."""
        from api.embedded import serve as run

        if data_dir is not None:
            os.environ["MEOW_DATA_DIR"] = str(data_dir)
        if auth is not None:
            os.environ["MEOW_AUTH"] = auth
        elif not os.environ.get("MEOW_AUTH") and _settings(auth="off", quiet=True) is not None:
            # local (SQLite) use needs no keys; the banner says so loudly. Production settings
            # (Postgres) refuse auth off, so they keep the default, MEOW_AUTH=required.
            os.environ["MEOW_AUTH"] = "off"

        settings = _settings()
        assert settings is not None
        run(settings, host, port, with_worker=worker, seed_demo=demo)

    keys = typer.Typer(help="API keys: create (shown once), list, revoke. Uses MEOW_DATABASE_URL like the server.",
                       no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def keys_create(
        tenant: Annotated[str, typer.Option(help="tenant the key acts for")],
        scopes: Annotated[str, typer.Option(help="comma-separated: models:read,models:write,jobs:read,jobs:write,"
                                                 "memo:write,adapters:read,admin")],
        as_json: Annotated[bool, typer.Option("--json", help='print {"id", "key", "tenant", "scopes"}')] = False,
    ) -> None:
        """Create a key and print it once (only its hash is stored)."""
        import json

        from service.db import session_scope
        from service.keys import KeyProblem, create_key

        settings = _migrated_settings()
        try:
            with session_scope(settings.db_url) as s:
                made = create_key(s, settings, tenant, [x.strip() for x in scopes.split(",") if x.strip()])
        except (KeyProblem, ValueError) as e:
            _fail(str(e))
        if as_json:
            typer.echo(json.dumps({"id": made.id, "key": made.key, "tenant": made.tenant, "scopes": made.scopes}))
            return
        typer.echo(f"{made.key}\n(key {made.id} for tenant {made.tenant}, scopes {','.join(made.scopes)}; "
                   "shown once: store it now)")

    @keys.command("list")
    def keys_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """List keys (ids, tenants, scopes, prefixes; never the keys)."""
        import json

        from service.db import session_scope
        from service.keys import list_keys

        settings = _migrated_settings()
        with session_scope(settings.db_url) as s:
            rows = [{"id": r.id, "tenant": r.tenant_id, "scopes": r.scopes, "prefix": r.prefix,
                     "created_at": r.created_at.isoformat(),
                     "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                     "revoked": r.revoked_at is not None} for r in list_keys(s)]
        if as_json:
            typer.echo(json.dumps(rows))
            return
        for r in rows:
            state = "revoked" if r["revoked"] else "active"
            typer.echo(f"{r['id']}  {r['tenant']:<16} {state:<8} {r['prefix']}…  {','.join(r['scopes'])}")

    @keys.command("revoke")
    def keys_revoke(key_id: Annotated[str, typer.Argument(help="key id (key_…)")]) -> None:
        """Revoke a key: requests with it get 401 from now on."""
        from service.db import session_scope
        from service.keys import KeyProblem, revoke_key

        settings = _migrated_settings()
        try:
            with session_scope(settings.db_url) as s:
                changed = revoke_key(s, key_id)
        except KeyProblem as e:
            _fail(str(e))
        typer.echo(f"revoked {key_id}" if changed else f"{key_id} was already revoked")


    from meow_engine.cli.bench import bench_app

    @bench_app.command("service")
    def bench_service(
        n: Annotated[int, typer.Option("-n", help="POST /v1/unlearn submissions (a tenth repeat a key)")] = 1000,
        reads: Annotated[int | None, typer.Option(help="requests per read route (default: n)")] = None,
        concurrency: Annotated[int, typer.Option("-c", "--concurrency", help="requests in flight")] = 16,
        max_seconds: Annotated[float, typer.Option(help="give up after this long")] = 900.0,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="folder to write service_bench.json")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ) -> None:
        """Load `meow serve` (SQLite, auth required, no worker) over loopback: submissions with
        Idempotency-Keys, reads, and a bare FastAPI route for scale. Exit 1 if jobs persisted differ
        from the distinct keys or any request failed."""
        import json

        from api.service_bench import format_table, run_service_bench

        try:
            result = run_service_bench(n=n, reads=reads, concurrency=concurrency, max_seconds=max_seconds)
        except (RuntimeError, ValueError) as e:
            _fail(str(e))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "service_bench.json").write_text(json.dumps(result, indent=2) + "\n")
        typer.echo(json.dumps(result, indent=2) if as_json else format_table(result))
        if not result["ok"]:
            raise typer.Exit(1)

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


def _fail(message: str) -> None:
    typer.echo(f"meow: error: {message}", err=True)
    raise typer.Exit(2)


def _settings(quiet: bool = False, **overrides: object):  # noqa: ANN202 - Settings | None
    """The service settings from the environment; a bad value is one line on stderr (exit 2)."""
    from pydantic import ValidationError

    from service.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as e:
        if quiet:
            return None
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "settings"
        _fail(f"{where}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return None


def _migrated_settings():  # noqa: ANN202 - Settings
    """Settings whose database has the current schema (``meow keys`` may be the first command run)."""
    from service import migrate

    settings = _settings()
    assert settings is not None
    if settings.db_url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    return settings
