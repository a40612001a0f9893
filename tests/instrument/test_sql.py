"""SQL hooks: sqlite3, psycopg 3 and SQLAlchemy statements reach the recorder, once each."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
from psycopg import sql as pgsql
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from perfpilot.app_records import AppSnapshot
from perfpilot.instrument import sql
from perfpilot.instrument.context import RequestContext, active, current_request, perf
from perfpilot.instrument.fingerprint import fingerprint
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from tests.pg import PostgresServer


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Hooks installed, reporting to a fresh recorder; everything undone afterwards."""
    installed_before = bool(sql._patches)  # another test's instrument() may have hooked
    sql.install()
    rec = Recorder("test", sample_rate=0.0, seed=1)
    previous = active.recorder
    active.recorder = rec
    try:
        yield rec
    finally:
        active.recorder = previous
        if not installed_before:
            sql.uninstall()


def queries(rec: Recorder) -> dict[str, list[tuple[str, str, int, int, int]]]:
    """Raw SQL → [(route, db, count, errors, rows)] of the current interval (drains it)."""
    found: dict[str, list[tuple[str, str, int, int, int]]] = {}
    for (text_, route, db), agg in rec.collect().queries.items():
        found.setdefault(text_, []).append((route, db, agg.count, agg.errors, agg.rows))
    return found


def line_of_next_statement() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


@pytest.fixture
def request_ctx() -> Iterator[RequestContext]:
    ctx = RequestContext("GET", perf())
    ctx.route = "/things/{id}"
    ctx.status = 200
    token = current_request.set(ctx)
    try:
        yield ctx
    finally:
        current_request.reset(token)


# -- installing ----------------------------------------------------------------------
def test_install_is_idempotent_and_uninstall_restores() -> None:
    installed_before = bool(sql._patches)
    sql.uninstall()
    original = sqlite3.connect
    original_execute = psycopg.Cursor.execute
    original_raw_connection = sqlalchemy.engine.Engine.raw_connection
    assert not getattr(original, "__perfpilot__", False)
    try:
        assert sql.install() == ["sqlite3", "psycopg", "sqlalchemy"]
        patched = sqlite3.connect
        assert getattr(patched, "__perfpilot__", False)
        assert sqlite3.dbapi2.connect is patched
        assert getattr(psycopg.Cursor.execute, "__perfpilot__", False)
        assert getattr(psycopg.AsyncCursor.executemany, "__perfpilot__", False)
        assert getattr(sqlalchemy.engine.Engine.raw_connection, "__perfpilot__", False)
        assert sql.install() == ["sqlite3", "psycopg", "sqlalchemy"]
        assert sqlite3.connect is patched
        assert not getattr(psycopg.Cursor.execute.__wrapped__, "__perfpilot__", False)
    finally:
        sql.uninstall()
    assert sqlite3.connect is original
    assert sqlite3.dbapi2.connect is original
    assert psycopg.Cursor.execute is original_execute
    assert sqlalchemy.engine.Engine.raw_connection is original_raw_connection
    if installed_before:
        sql.install()


# -- sqlite3 -------------------------------------------------------------------------
def test_sqlite_cursor_execute(recorder: Recorder) -> None:
    with sqlite3.connect(":memory:") as conn:
        assert isinstance(conn, sqlite3.Connection)
        cur = conn.cursor()
        assert isinstance(cur, sqlite3.Cursor)
        assert cur.execute("SELECT 1, 2").fetchall() == [(1, 2)]
    conn.close()
    assert queries(recorder) == {"SELECT 1, 2": [(NO_ROUTE, "sqlite", 1, 0, 0)]}


def test_sqlite_connection_execute_counts_dml_rows(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER)")
    conn.execute("INSERT INTO t VALUES (1), (2), (3)")
    assert conn.execute("UPDATE t SET a = a + 1 WHERE a > 1").rowcount == 2
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)
    conn.close()
    found = queries(recorder)
    assert found["INSERT INTO t VALUES (1), (2), (3)"] == [(NO_ROUTE, "sqlite", 1, 0, 3)]
    assert found["UPDATE t SET a = a + 1 WHERE a > 1"] == [(NO_ROUTE, "sqlite", 1, 0, 2)]
    assert found["SELECT count(*) FROM t"] == [(NO_ROUTE, "sqlite", 1, 0, 0)]
    assert len(found) == 4


def test_sqlite_connection_execute_returns_a_timed_cursor(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.execute("SELECT 1")
    assert getattr(type(cur), "__perfpilot__", False)
    assert cur.execute("SELECT 2").fetchone() == (2,)
    conn.close()
    assert sorted(queries(recorder)) == ["SELECT 1", "SELECT 2"]


def test_sqlite_executemany_and_executescript(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript("CREATE TABLE t (a INTEGER); CREATE TABLE u (b INTEGER);")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    cur = conn.cursor()
    cur.executemany("INSERT INTO u VALUES (?)", [(1,), (2,)])
    cur.executescript("DELETE FROM t; DELETE FROM u;")
    conn.close()
    assert queries(recorder) == {
        "CREATE TABLE t (a INTEGER); CREATE TABLE u (b INTEGER);": [(NO_ROUTE, "sqlite", 1, 0, 0)],
        "INSERT INTO t VALUES (?)": [(NO_ROUTE, "sqlite", 1, 0, 5)],
        "INSERT INTO u VALUES (?)": [(NO_ROUTE, "sqlite", 1, 0, 2)],
        "DELETE FROM t; DELETE FROM u;": [(NO_ROUTE, "sqlite", 1, 0, 0)],
    }


def test_sqlite_failing_statement_is_reraised_and_counted(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        conn.execute("SELECT * FROM missing")
    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        conn.cursor().execute("SELECT * FROM missing")
    with pytest.raises(sqlite3.OperationalError):
        conn.executemany("INSERT INTO missing VALUES (?)", [(1,)])
    conn.close()
    found = queries(recorder)
    assert found["SELECT * FROM missing"] == [(NO_ROUTE, "sqlite", 2, 2, 0)]
    assert found["INSERT INTO missing VALUES (?)"] == [(NO_ROUTE, "sqlite", 1, 1, 0)]


def test_sqlite_bad_argument_types_still_raise_the_apps_error(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(TypeError):
        conn.execute(42)  # type: ignore[arg-type]
    conn.close()
    assert queries(recorder) == {"<int>": [(NO_ROUTE, "sqlite", 1, 1, 0)]}


def test_sqlite_inside_a_request_goes_to_its_route(
    recorder: Recorder, request_ctx: RequestContext
) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("SELECT 1")
    conn.cursor().execute("SELECT 2")
    conn.close()
    assert [q[0] for q in request_ctx.queries] == ["SELECT 1", "SELECT 2"]
    assert request_ctx.db_count == 2
    assert request_ctx.db_time > 0
    recorder.finish(request_ctx, 0.01)
    assert {k: v[0][0] for k, v in queries(recorder).items()} == {
        "SELECT 1": "/things/{id}",
        "SELECT 2": "/things/{id}",
    }


def test_sqlite_nothing_recorded_without_a_recorder(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    active.recorder = None
    conn.execute("SELECT 1")
    conn.cursor().execute("SELECT 2")
    active.recorder = recorder
    conn.close()
    assert queries(recorder) == {}


def test_sqlite_suppressed_block_is_not_recorded(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    with sql.suppressed():
        conn.execute("SELECT 1")
        conn.cursor().execute("SELECT 2")
        conn.executemany("CREATE TABLE t (a)", [])
    conn.execute("SELECT 3")
    conn.close()
    assert list(queries(recorder)) == ["SELECT 3"]


@pytest.mark.parametrize("module", ["perfpilot.store.sqlite", "aiosqlite.core"])
def test_sqlite_connections_of_the_store_and_of_aiosqlite_are_not_timed(
    recorder: Recorder, module: str
) -> None:
    scope: dict[str, Any] = {"__name__": module, "sqlite3": sqlite3}
    exec("conn = sqlite3.connect(':memory:')", scope)
    conn = scope["conn"]
    assert type(conn) is sqlite3.Connection
    conn.execute("SELECT 1")
    conn.close()
    assert queries(recorder) == {}


def test_sqlite_caller_factories_are_timed_too(recorder: Recorder) -> None:
    class MyCursor(sqlite3.Cursor):
        def first(self) -> Any:
            return self.fetchone()

    class MyConnection(sqlite3.Connection):
        marker = "mine"

        def cursor(self, factory: Any = MyCursor) -> Any:  # type: ignore[override]
            return super().cursor(factory)

    conn = sqlite3.connect(":memory:", factory=MyConnection)
    assert isinstance(conn, MyConnection)
    assert conn.marker == "mine"
    cur = conn.cursor()
    assert isinstance(cur, MyCursor)
    assert cur.execute("SELECT 1").first() == (1,)
    conn.execute("SELECT 2")
    conn.close()
    plain = sqlite3.connect(":memory:", 5.0, 0, None, True, MyConnection)  # positional factory
    assert isinstance(plain, MyConnection)
    plain.cursor(MyCursor).execute("SELECT 3")
    plain.close()
    assert sorted(queries(recorder)) == ["SELECT 1", "SELECT 2", "SELECT 3"]


def test_sqlite_unusable_factory_is_left_untimed_with_one_warning(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def factory(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return sqlite3.Connection(*args, **kwargs)

    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        for _ in range(2):
            conn = sqlite3.connect(":memory:", factory=factory)  # type: ignore[arg-type]
            conn.execute("SELECT 1")
            conn.close()
    assert queries(recorder) == {}
    assert len([r for r in caplog.records if "not a sqlite3.Connection subclass" in r.message]) == 1


def test_sqlite_call_site_points_at_the_app_line(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    line = line_of_next_statement()
    conn.execute("SELECT 'call site'")
    conn.close()
    assert recorder.call_sites["SELECT 'call site'"] == f"{__file__}:{line}"


def test_perfpilot_errors_never_reach_the_app(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("perfpilot bug")

    monkeypatch.setattr(recorder, "query", broken)
    monkeypatch.setattr(recorder, "pool_checkout", broken)
    conn = sqlite3.connect(":memory:")
    assert conn.execute("SELECT 1").fetchall() == [(1,)]
    assert conn.cursor().execute("SELECT 2").fetchall() == [(2,)]
    conn.executemany("CREATE TABLE t (a)", [])
    conn.executescript("SELECT 3;")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        conn.execute("SELECT * FROM missing")
    conn.close()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as sa_conn:
        assert sa_conn.execute(text("SELECT 4")).scalar() == 4
    engine.dispose()


# -- recorded rows reach the snapshot ---------------------------------------------------
def flush(rec: Recorder) -> AppSnapshot:
    written: list[AppSnapshot] = []
    Flusher(rec, written.append, fingerprint).flush()
    assert len(written) == 1
    return written[0]


def test_snapshot_has_fingerprints_with_literals_redacted(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    line = line_of_next_statement()
    conn.execute("SELECT * FROM users WHERE name = 'sk-SECRET123' AND id = 4111111111111111")
    conn.execute("select * from users where name = 'bob'   and id = 7")
    conn.close()
    snapshot = flush(recorder)
    rows = [q for q in snapshot.queries if "users WHERE" in q.sql]
    assert len(rows) == 1
    row = rows[0]
    assert row.sql == "SELECT * FROM users WHERE name = ? AND id = ?"
    assert row.count == 2
    assert row.route == NO_ROUTE
    assert row.db == "sqlite"
    assert row.fingerprint == fingerprint("select * from users where name = 'x' and id = 1")[0]
    assert row.call_site == f"{__file__}:{line}"
    assert "SECRET" not in repr(snapshot)
    assert "4111111111111111" not in repr(snapshot)


def test_repeated_statement_in_a_request_is_traced_as_n_plus_one(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"u{i}") for i in range(10)])
    ctx = RequestContext("GET", perf())
    ctx.route = "/users"
    ctx.status = 200
    token = current_request.set(ctx)
    try:
        for i in range(10):
            conn.execute("SELECT name FROM users WHERE id = ?", (i,)).fetchone()
    finally:
        current_request.reset(token)
    recorder.finish(ctx, perf() - ctx.started)
    conn.close()
    snapshot = flush(recorder)
    assert len(snapshot.traces) == 1
    trace = snapshot.traces[0]
    assert "repeated_query" in trace.reasons
    assert trace.route == "/users"
    db_spans = [s for s in trace.spans if s.kind == "db"]
    assert len(db_spans) == 10
    assert {s.name for s in db_spans} == {"SELECT name FROM users WHERE id = ?"}
    assert all(s.detail["call_site"].startswith(__file__) for s in db_spans)
    (row,) = [q for q in snapshot.queries if q.route == "/users"]
    assert row.count == 10


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
    assert not event.contains(engine, "before_cursor_execute", sql._sa_before)
    engine.dispose()
    found = queries(recorder)
    assert sum(v[0][2] for v in found.values()) == len(seen)
    assert found["INSERT INTO items (name) VALUES (?)"] == [(NO_ROUTE, "sqlite", 1, 0, 2)]
    assert found["SELECT name FROM items WHERE id = ?"] == [(NO_ROUTE, "sqlite", 1, 0, 0)]
    assert found["SELECT * FROM nowhere"] == [(NO_ROUTE, "sqlite", 1, 1, 0)]
    assert all(v[0][1] == "sqlite" for v in found.values())


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
    assert event.contains(engine, "before_cursor_execute", sql._sa_before)
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
    assert event.contains(engine, "before_cursor_execute", sql._sa_before)
    sql.uninstall()
    assert not event.contains(engine, "before_cursor_execute", sql._sa_before)
    assert not event.contains(engine, "handle_error", sql._sa_error)
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
    assert not event.contains(engine, "before_cursor_execute", sql._sa_before)
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
