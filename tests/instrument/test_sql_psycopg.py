"""psycopg 3 hooks: statements on sync, async and server-side cursors reach the recorder once."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from perfpilot.instrument.context import RequestContext, current_request, perf
from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from tests.instrument import test_sql
from tests.instrument.test_sql import line_of_next_statement, queries
from tests.pg import PostgresServer

recorder = test_sql.recorder
request_ctx = test_sql.request_ctx


# -- psycopg 3 (PostgreSQL) ------------------------------------------------------------
@pytest.mark.integration
def test_psycopg_sync_cursor_and_connection(recorder: Recorder, postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE pp_items (id int, name text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO pp_items VALUES (%s, %s)", [(1, "a"), (2, "b"), (3, "c")])
            line = line_of_next_statement()
            cur.execute("SELECT name FROM pp_items WHERE id > %s", (1,))
            assert cur.fetchall() == [("b",), ("c",)]
            cur.execute(b"SELECT 1")
            cur.execute(pgsql.SQL("SELECT {} FROM pp_items").format(pgsql.Identifier("name")))
        with psycopg.ClientCursor(conn) as client:
            client.execute("SELECT %s::int", (5,))
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM pp_missing")
    found = queries(recorder)
    assert found["INSERT INTO pp_items VALUES (%s, %s)"] == [(NO_ROUTE, "postgresql", 1, 0, 3)]
    assert found["SELECT name FROM pp_items WHERE id > %s"] == [(NO_ROUTE, "postgresql", 1, 0, 2)]
    assert found["SELECT 1"] == [(NO_ROUTE, "postgresql", 1, 0, 1)]
    assert found['SELECT "name" FROM pp_items'] == [(NO_ROUTE, "postgresql", 1, 0, 3)]
    assert found["SELECT %s::int"] == [(NO_ROUTE, "postgresql", 1, 0, 1)]
    assert found["SELECT * FROM pp_missing"] == [(NO_ROUTE, "postgresql", 1, 1, 0)]
    assert recorder.call_sites["SELECT name FROM pp_items WHERE id > %s"] == f"{__file__}:{line}"


@pytest.mark.integration
def test_psycopg_async_cursor(recorder: Recorder, postgres: PostgresServer) -> None:
    async def main() -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(postgres.dsn, autocommit=True) as conn:
            await conn.execute("CREATE TEMP TABLE pp_async (id int)")
            async with conn.cursor() as cur:
                await cur.executemany("INSERT INTO pp_async VALUES (%s)", [(1,), (2,)])
                await cur.execute("SELECT id FROM pp_async ORDER BY id")
                rows = await cur.fetchall()
            with pytest.raises(psycopg.errors.SyntaxError):
                await conn.execute("SELEC 1")
            return rows

    assert asyncio.run(main()) == [(1,), (2,)]
    found = queries(recorder)
    assert found["INSERT INTO pp_async VALUES (%s)"] == [(NO_ROUTE, "postgresql", 1, 0, 2)]
    assert found["SELECT id FROM pp_async ORDER BY id"] == [(NO_ROUTE, "postgresql", 1, 0, 2)]
    assert found["SELEC 1"] == [(NO_ROUTE, "postgresql", 1, 1, 0)]
    assert found["CREATE TEMP TABLE pp_async (id int)"][0][2] == 1


@pytest.mark.integration
def test_psycopg_async_inside_a_request(recorder: Recorder, postgres: PostgresServer) -> None:
    async def handler(n: int) -> RequestContext:
        ctx = RequestContext("GET", perf())
        ctx.route = f"/r{n}"
        current_request.set(ctx)  # each task has its own context
        async with await psycopg.AsyncConnection.connect(postgres.dsn) as conn:
            for _ in range(n):
                await conn.execute("SELECT pg_sleep(0)")
        return ctx

    async def main() -> list[RequestContext]:
        return list(await asyncio.gather(handler(2), handler(3)))

    first, second = asyncio.run(main())
    assert first.db_count == 2
    assert second.db_count == 3
