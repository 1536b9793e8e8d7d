"""Alembic is the only way the schema is made: models and migrations must agree, and the
migrations must round-trip (upgrade → downgrade → upgrade) on Postgres and SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import ROOT, create_database, drop_database
from sqlalchemy import inspect

from service import migrate
from service.db import get_engine
from service.tables import Base

TABLES = {"models", "jobs", "job_events", "adapters", "api_keys", "idempotency_keys", "webhook_endpoints",
          "webhook_messages", "webhook_deliveries", "workers", "alembic_version"}


def _diff(url: str) -> list:
    with get_engine(url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, Base.metadata)


@pytest.fixture()
def fresh_pg():
    url = create_database("meow_mig")
    yield url
    drop_database(url)


def test_models_match_migrations_on_postgres(fresh_pg):
    migrate.upgrade(fresh_pg)
    assert set(inspect(get_engine(fresh_pg)).get_table_names()) == TABLES
    assert _diff(fresh_pg) == []


def test_round_trip_on_postgres(fresh_pg):
    migrate.upgrade(fresh_pg)
    migrate.downgrade(fresh_pg, "base")
    assert set(inspect(get_engine(fresh_pg)).get_table_names()) == {"alembic_version"}
    migrate.upgrade(fresh_pg)
    assert _diff(fresh_pg) == []


def test_round_trip_on_sqlite(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'meow.db'}"
    migrate.upgrade(url)
    assert _diff(url) == []
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    assert set(inspect(get_engine(url)).get_table_names()) == TABLES


def test_single_head_and_cli(tmp_path: Path):
    heads = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1
    # `alembic upgrade head` from the repository root uses the meow settings for its URL
    env = {"PATH": str(Path(sys.executable).parent), "MEOW_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "meow.db").is_file()
    assert set(inspect(get_engine(f"sqlite:///{tmp_path / 'meow.db'}")).get_table_names()) == TABLES
