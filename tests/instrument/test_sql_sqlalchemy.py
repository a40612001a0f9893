"""SQLAlchemy hooks: each statement recorded once, whatever the driver; pool checkouts."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from perfpilot.instrument import sql, sql_sqlalchemy
from perfpilot.instrument.context import RequestContext, perf
from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from tests.instrument import test_sql
from tests.instrument.test_sql import flush, line_of_next_statement, queries
from tests.pg import PostgresServer

recorder = test_sql.recorder
request_ctx = test_sql.request_ctx


# -- SQLAlchemy on sqlite -------------------------------------------------------------
def statements_seen_by(engine: sqlalchemy.engine.Engine) -> list[str]:
    """What SQLAlchemy itself sends to the driver, from a listener of the test's own."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    return seen


def test_sqlalchemy_on_sqlite_records_each_statement_once(recorder: Recorder) -> None:
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as conn:  # warm up: dialect initialization
        conn.execute(text("SELECT 0"))
    queries(recorder)
    seen = statements_seen_by(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(
            text("INSERT INTO items (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}]
        )
        assert conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": 1}).all() == [
            ("a",)
        ]
        with pytest.raises(sqlalchemy.exc.OperationalError):
            conn.execute(text("SELECT * FROM nowhere"))
    # the driver is hooked: SQLAlchemy needs no listeners (and stays on its fast path)
    assert not event.contains(engine, "before_cursor_execute", sql_sqlalchemy._sa_before)
    engine.dispose()
    found = queries(recorder)
    assert sum(v[0][2] for v in found.values()) == len(seen)
    assert found["INSERT INTO items (name) VALUES (?)"] == [(NO_ROUTE, "sqlite", 1, 0, 2)]
    assert found["SELECT name FROM items WHERE id = ?"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]
    assert found["SELECT * FROM nowhere"] == [(NO_ROUTE, "sqlite", 1, 1, 0)]
    assert all(v[0][1] == "sqlite" for v in found.values())


def test_sqlalchemy_on_sqlite_counts_fetched_rows_and_fetch_time_once(
    recorder: Recorder, request_ctx: RequestContext
) -> None:
    engine = sqlalchemy.create_engine("sqlite://")
    lookup = text("SELECT id FROM customers WHERE email = :email")
    with engine.connect() as conn:
        with sql.suppressed():
            conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)"))
            conn.execute(
                text("INSERT INTO customers VALUES (:id, :email)"),
                [{"id": i, "email": f"c{i}@example.com"} for i in range(50_000)],
            )
        walls = []
        for _ in range(3):  # the first run also compiles the statement
            started = perf()
            assert conn.execute(lookup, {"email": "c10@example.com"}).all() == [(10,)]
            walls.append(perf() - started)
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar() == 50_000
        partial = conn.execute(text("SELECT id FROM customers WHERE id < 5"))
        assert partial.fetchone() == (0,)
        partial.close()  # SQLAlchemy closes the DB-API cursor: recorded here
        assert conn.execute(text("SELECT id FROM customers WHERE id < 3")).first() == (0,)
    engine.dispose()
    lookups = [q for q in request_ctx.queries if q[0] == "SELECT id FROM customers WHERE email = ?"]
    assert [q[3] for q in lookups] == [1, 1, 1]
    assert lookups[1][2] >= 0.8 * walls[1]
    assert lookups[2][2] >= 0.8 * walls[2]
    recorded = {q[0]: q for q in request_ctx.queries if q not in lookups}
    assert len(recorded) == len(request_ctx.queries) - 3  # each statement once
    assert recorded["SELECT count(*) FROM customers"][3] == 1
    assert recorded["SELECT id FROM customers WHERE id < 5"][3] == 1
    assert recorded["SELECT id FROM customers WHERE id < 3"][3] == 1


def test_sqlalchemy_call_site_is_the_app_line(recorder: Recorder) -> None:
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as conn:
        line = line_of_next_statement()
        conn.execute(text("SELECT 'sa call site'"))
    engine.dispose()
    assert recorder.call_sites["SELECT 'sa call site'"] == f"{__file__}:{line}"


def plain_sqlite_engine() -> sqlalchemy.engine.Engine:
    """An engine on untimed sqlite3 connections, as on a driver perfpilot does not hook."""
    return sqlalchemy.create_engine("sqlite://", creator=lambda: sqlite3.Connection(":memory:"))


def test_sqlalchemy_listeners_time_drivers_without_a_hook(
    recorder: Recorder, request_ctx: RequestContext
) -> None:
    engine = plain_sqlite_engine()
    options = engine.execution_options(logging_token="x")  # an OptionEngine, seen first
    with options.connect() as conn:
        assert type(conn.connection.dbapi_connection) is sqlite3.Connection
        conn.execute(text("SELECT 0"))
    assert event.contains(engine, "before_cursor_execute", sql_sqlalchemy._sa_before)
    assert [q[0] for q in request_ctx.queries] == ["SELECT 0"]
    request_ctx.queries.clear()
    seen = statements_seen_by(engine)
    with engine.connect() as conn:
        line = line_of_next_statement()
        conn.execute(text("CREATE TABLE items (id INTEGER)"))
        conn.execute(text("INSERT INTO items VALUES (:id)"), [{"id": 1}, {"id": 2}])
        with pytest.raises(sqlalchemy.exc.OperationalError):
            conn.execute(text("SELECT * FROM nowhere"))
        with sql.suppressed():
            conn.execute(text("SELECT 'hidden'"))
    engine.dispose()
    assert [(q[0], q[3], q[4], q[5]) for q in request_ctx.queries] == [
        ("CREATE TABLE items (id INTEGER)", 0, False, "sqlite"),
        ("INSERT INTO items VALUES (?)", 2, False, "sqlite"),
        ("SELECT * FROM nowhere", 0, True, "sqlite"),
    ]
    assert len(seen) == 4
    assert recorder.call_sites["CREATE TABLE items (id INTEGER)"] == f"{__file__}:{line}"


def test_uninstall_removes_the_engine_listeners() -> None:
    installed_before = bool(sql._patches)
    sql.install()
    engine = plain_sqlite_engine()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert event.contains(engine, "before_cursor_execute", sql_sqlalchemy._sa_before)
    sql.uninstall()
    assert not event.contains(engine, "before_cursor_execute", sql_sqlalchemy._sa_before)
    assert not event.contains(engine, "handle_error", sql_sqlalchemy._sa_error)
    engine.dispose()
    if installed_before:
        sql.install()


def test_sqlalchemy_pool_checkouts_on_sqlite(recorder: Recorder, tmp_path: Any) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    for _ in range(3):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    engine.dispose()
    pools = recorder.collect().pools
    assert list(pools) == [f"sqlite:///{tmp_path / 'pool.db'}"]
    assert pools[f"sqlite:///{tmp_path / 'pool.db'}"][0] == 3


# -- SQLAlchemy on PostgreSQL ------------------------------------------------------------
def sa_url(postgres: PostgresServer, driver: str = "psycopg") -> str:
    # trust authentication: the password is ignored by the server, and must
    # never appear in the pool's name
    return f"postgresql+{driver}://perfpilot:hunter2@127.0.0.1:{postgres.port}/postgres"


@pytest.mark.integration
def test_sqlalchemy_on_postgres_records_each_statement_once(
    recorder: Recorder, postgres: PostgresServer
) -> None:
    engine = sqlalchemy.create_engine(sa_url(postgres))
    with engine.connect() as conn:
        conn.execute(text("SELECT 0"))
    queries(recorder)
    seen = statements_seen_by(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE sa_items (id serial PRIMARY KEY, name text)"))
        conn.execute(text("INSERT INTO sa_items (name) VALUES (:name)"), [{"name": "a"}] * 3)
        assert conn.execute(text("SELECT count(*) FROM sa_items")).scalar() == 3
    with engine.connect() as conn, pytest.raises(sqlalchemy.exc.ProgrammingError):
        conn.execute(text("SELECT * FROM sa_nowhere"))
    with engine.connect() as conn:  # a server-side cursor
        streamed = conn.execution_options(stream_results=True).execute(
            text("SELECT generate_series(1, 5)")
        )
        assert len(streamed.all()) == 5
    assert not event.contains(engine, "before_cursor_execute", sql_sqlalchemy._sa_before)
    engine.dispose()
    found = queries(recorder)
    assert sum(v[0][2] for v in found.values()) == len(seen)
    assert found["SELECT count(*) FROM sa_items"] == [(NO_ROUTE, "postgresql", 1, 0, 1)]
    assert found["SELECT * FROM sa_nowhere"] == [(NO_ROUTE, "postgresql", 1, 1, 0)]
    assert found["SELECT generate_series(1, 5)"][0][2] == 1
    assert all(db == "postgresql" for v in found.values() for _, db, *_ in v)


@pytest.mark.integration
def test_sqlalchemy_async_engine_records_each_statement_once(
    recorder: Recorder, postgres: PostgresServer
) -> None:
    async def main() -> tuple[int, list[str], int]:
        engine = create_async_engine(sa_url(postgres))
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 0"))
        queries(recorder)
        seen = statements_seen_by(engine.sync_engine)
        async with engine.connect() as conn:
            line = line_of_next_statement()
            value = (await conn.execute(text("SELECT :x + 1"), {"x": 1})).scalar_one()
        await engine.dispose()
        return value, seen, line

    value, seen, line = asyncio.run(main())
    assert value == 2
    found = queries(recorder)
    assert sum(v[0][2] for v in found.values()) == len(seen)
    assert found["SELECT %(x)s + 1"] == [(NO_ROUTE, "postgresql", 1, 0, 1)]
    assert recorder.call_sites["SELECT %(x)s + 1"] == f"{__file__}:{line}"


@pytest.mark.integration
def test_sqlalchemy_pool_checkouts_and_wait(recorder: Recorder, postgres: PostgresServer) -> None:
    engine = sqlalchemy.create_engine(sa_url(postgres), pool_size=1, max_overflow=0)
    holding = threading.Event()
    waiter_started = threading.Event()
    waits: list[float] = []

    def holder() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            holding.set()
            waiter_started.wait(10)
            time.sleep(0.3)  # the other thread is blocked in the pool meanwhile

    def waiter() -> None:
        holding.wait(10)
        waiter_started.set()
        started = time.perf_counter()
        with engine.connect() as conn:
            waits.append(time.perf_counter() - started)
            conn.execute(text("SELECT 2"))

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    engine.dispose()
    snapshot = flush(recorder)
    (pool,) = snapshot.pools
    assert pool.pool == f"postgresql+psycopg://127.0.0.1:{postgres.port}/postgres"
    assert "hunter2" not in pool.pool and "perfpilot" not in pool.pool
    assert pool.checkouts == 2
    assert pool.size == 1
    assert pool.checked_out_max == 1
    assert pool.overflow_max == 0
    assert pool.max_wait_s >= 0.2
    assert pool.max_wait_s <= waits[0] + 0.01
    assert pool.wait_s >= pool.max_wait_s


@pytest.mark.integration
def test_sqlalchemy_pool_timeout_is_recorded_and_raised(
    recorder: Recorder, postgres: PostgresServer
) -> None:
    engine = sqlalchemy.create_engine(
        sa_url(postgres), pool_size=1, max_overflow=0, pool_timeout=0.2
    )
    with engine.connect(), pytest.raises(sqlalchemy.exc.TimeoutError):
        engine.connect()
    engine.dispose()
    (sums,) = recorder.collect().pools.values()
    assert sums[0] == 2
    assert sums[2] >= 0.2
