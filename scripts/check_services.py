"""Fail fast, with a plain message, when the Postgres or Redis the tests use is not reachable."""

from __future__ import annotations

import os
import sys

import psycopg
import redis


def main() -> int:
    db = os.environ["MEOW_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    broker = os.environ["MEOW_TEST_BROKER_URL"]
    missing = []
    try:
        psycopg.connect(db, connect_timeout=3).close()
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        missing.append(f"PostgreSQL at {db} ({str(e).strip().splitlines()[0]}); set MEOW_TEST_DATABASE_URL")
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=3).ping()
    except Exception as e:  # noqa: BLE001
        missing.append(f"Redis at {broker} ({e}); set MEOW_TEST_BROKER_URL")
    for m in missing:
        print(f"test setup: cannot reach {m}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
