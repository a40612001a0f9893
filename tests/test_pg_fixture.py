"""The PostgreSQL fixture itself: a real server with the extensions perfpilot uses."""

from __future__ import annotations

import subprocess

import pytest

from tests.pg import PG_BIN, PostgresServer

pytestmark = pytest.mark.integration


def psql(server: PostgresServer, sql: str) -> str:
    out = subprocess.run(
        [str(PG_BIN / "psql"), server.dsn, "-tAc", sql], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_server_has_pg_stat_statements_and_hypopg(postgres: PostgresServer) -> None:
    assert psql(postgres, "SHOW server_version").startswith("15.")
    psql(postgres, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    psql(postgres, "CREATE EXTENSION IF NOT EXISTS hypopg")
    assert psql(postgres, "SELECT count(*) >= 0 FROM pg_stat_statements") == "t"
    psql(postgres, "CREATE TABLE IF NOT EXISTS t (id int, v int)")
    name = psql(postgres, "SELECT indexname FROM hypopg_create_index('CREATE INDEX ON t (v)')")
    assert name.endswith("btree_t_v")
