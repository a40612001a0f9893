"""Fixtures of the database advisor's tests: the shop workload on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbadvisor.workload import shop
from tests.pg import PostgresServer

SHOP_DB = "perfpilot_shop"


@pytest.fixture(scope="session")
def shop_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding the shop workload's 700 000 rows (built once per session)."""
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    shop.create_sqlite(str(path))
    return path


@pytest.fixture(scope="session")
def shop_postgres(postgres: PostgresServer) -> Iterator[str]:
    """The DSN of a PostgreSQL database holding the shop workload (built once per session),
    with pg_stat_statements installed and hypopg available but not installed."""
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SHOP_DB}")
        conn.execute(f"CREATE DATABASE {SHOP_DB}")
    dsn = postgres.dsn_for(SHOP_DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        shop.create_postgres(conn)
        conn.execute("CREATE EXTENSION pg_stat_statements")
    yield dsn
