"""sqlite3 hooks: statements, with the rows and time of their fetches, reach the recorder once."""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest

from perfpilot.instrument import sql, sql_record, sql_sqlite
from perfpilot.instrument.context import (
    RequestContext,
    active,
    current_request,
    db_seconds,
    perf,
)
from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from tests.instrument import test_sql
from tests.instrument.test_sql import line_of_next_statement, queries

recorder = test_sql.recorder
request_ctx = test_sql.request_ctx

# the C methods when the extension is built, and the Python ones they mirror
IMPLEMENTATIONS = ["python"] if sql_sqlite._speedups_module is None else ["c", "python"]


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with each implementation of execute and fetchone:
    the timed classes are made anew for it."""
    chosen = sql_sqlite._speedups_module if request.param == "c" else None
    monkeypatch.setattr(sql_sqlite, "_speedups", chosen)
    monkeypatch.setattr(sql_sqlite, "_cursor_classes", {})
    monkeypatch.setattr(sql_sqlite, "_same_layout_classes", {})
    monkeypatch.setattr(sql_sqlite, "_connection_classes", {})
    monkeypatch.setattr("perfpilot.instrument.context._warned", set())  # warnings once per run
    return str(request.param)


def test_sqlite_timed_methods_are_the_chosen_implementation(implementation: str) -> None:
    sql.install()
    conn = sqlite3.connect(":memory:")
    cls = type(conn.cursor())
    kinds = {type(cls.__dict__[name]).__name__ for name in ("execute", "fetchone")}
    assert kinds == ({"TimedMethod"} if implementation == "c" else {"function"})
    conn.close()


def test_sqlite_recording_errors_never_reach_the_app(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The recording steps after a statement ran (open_query, call sites) fail:
    the app gets its rows all the same, and one warning is logged."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("perfpilot bug")

    class BrokenSites(dict[str, Any]):
        def __contains__(self, key: object) -> bool:
            raise RuntimeError("perfpilot bug")

    monkeypatch.setattr(recorder, "open_query", broken)
    monkeypatch.setattr(recorder, "call_sites", BrokenSites())
    conn = sqlite3.connect(":memory:")
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        cur = conn.cursor()
        assert cur.execute("SELECT 1").fetchone() == (1,)  # outside a request: open_query
        token = current_request.set(RequestContext("GET", perf()))
        try:  # in a request: the event joins it, then the call-site check fails
            assert cur.execute("SELECT 2").fetchall() == [(2,)]
            assert cur.execute("SELECT 3").fetchone() == (3,)
        finally:
            current_request.reset(token)
        assert cur.execute("CREATE TABLE t (a)").fetchall() == []
    conn.close()
    warnings = [r for r in caplog.records if "SQL statement was not recorded" in r.getMessage()]
    assert len(warnings) == 1
    assert "perfpilot bug" in warnings[0].getMessage()


def test_sqlite_cursor_execute(recorder: Recorder) -> None:
    with sqlite3.connect(":memory:") as conn:
        assert isinstance(conn, sqlite3.Connection)
        cur = conn.cursor()
        assert isinstance(cur, sqlite3.Cursor)
        assert cur.execute("SELECT 1, 2").fetchall() == [(1, 2)]
    conn.close()
    assert queries(recorder) == {"SELECT 1, 2": [(NO_ROUTE, "sqlite", 1, 0, 1)]}


def test_sqlite_connection_execute_counts_rows(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER)")
    conn.execute("INSERT INTO t VALUES (1), (2), (3)")
    assert conn.execute("UPDATE t SET a = a + 1 WHERE a > 1").rowcount == 2
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (3,)
    conn.close()
    found = queries(recorder)
    assert found["INSERT INTO t VALUES (1), (2), (3)"] == [(NO_ROUTE, "sqlite", 1, 0, 3)]
    assert found["UPDATE t SET a = a + 1 WHERE a > 1"] == [(NO_ROUTE, "sqlite", 1, 0, 2)]
    assert found["SELECT count(*) FROM t"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]
    assert len(found) == 4


def test_sqlite_connection_execute_returns_a_timed_cursor(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.execute("SELECT 1")
    assert getattr(type(cur), "__perfpilot__", False)
    assert cur.execute("SELECT 2").fetchone() == (2,)  # SELECT 1 recorded here
    cur.close()  # SELECT 2 here
    conn.close()
    assert queries(recorder) == {
        "SELECT 1": [(NO_ROUTE, "sqlite", 1, 0, 0)],
        "SELECT 2": [(NO_ROUTE, "sqlite", 1, 0, 1)],
    }


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
    assert db_seconds(request_ctx) > 0
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


def test_sqlite_a_suppressed_block_in_another_thread_suppresses_only_there(
    recorder: Recorder,
) -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    inside, leave = threading.Event(), threading.Event()

    def store_write() -> None:
        with sql.suppressed():
            conn.execute("SELECT 'suppressed'")
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=store_write)
    thread.start()
    assert inside.wait(10)
    assert sql_record.suppression.blocks == 1
    conn.execute("SELECT 'recorded'")
    leave.set()
    thread.join(10)
    assert sql_record.suppression.blocks == 0
    conn.close()
    assert list(queries(recorder)) == ["SELECT 'recorded'"]


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
    assert cur.execute("SELECT 1").first() == (1,)  # the timed fetchone, below
    cur.close()
    conn.execute("SELECT 2")
    conn.close()
    plain = sqlite3.connect(":memory:", 5.0, 0, None, True, MyConnection)  # positional factory
    assert isinstance(plain, MyConnection)
    plain.cursor(MyCursor).execute("SELECT 3")
    plain.close()
    found = queries(recorder)
    assert sorted(found) == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert found["SELECT 1"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]


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


# -- statements that return rows: the time and rows of their fetches --------------------
LOOKUP = "SELECT id, email FROM customers WHERE email = ?"


def customers(n: int) -> sqlite3.Connection:
    """A connection to ``n`` customers whose e-mail has no index (as in the demo app)."""
    conn = sqlite3.connect(":memory:")
    with sql.suppressed():
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?)", ((i, f"c{i}@example.com") for i in range(n))
        )
    return conn


def take(rec: Recorder, ctx: RequestContext | None, text: str) -> tuple[int, int, int]:
    """(count, rows, errors) of ``text`` recorded since the last take: in ``ctx``, or
    outside requests (this drains the recorder's interval)."""
    if ctx is None:
        agg = rec.collect().queries.get((text, NO_ROUTE, "sqlite"))
        return (agg.count, agg.rows, agg.errors) if agg is not None else (0, 0, 0)
    found = [q for q in ctx.queries if q[0] == text]
    if found:
        ctx.queries = [q for q in ctx.queries if q[0] != text]
    return len(found), sum(q[3] for q in found), sum(q[4] for q in found)


def test_sqlite_select_duration_covers_the_scan_done_while_fetching(
    recorder: Recorder, request_ctx: RequestContext
) -> None:
    conn = customers(50_000)
    cur = conn.cursor()
    walls, in_execute = [], []
    for _ in range(3):
        started = perf()
        cur.execute(LOOKUP, ("c10@example.com",))
        executed = perf()
        assert cur.fetchall() == [(10, "c10@example.com")]
        walls.append(perf() - started)
        in_execute.append((executed - started) / walls[-1])
    conn.close()
    # sqlite3 found the row early: execute returned at once, the scan of the
    # other 49 989 rows ran inside fetchall()
    assert min(in_execute) < 0.5
    recorded = [q for q in request_ctx.queries if q[0] == LOOKUP]
    assert [q[3] for q in recorded] == [1, 1, 1]  # rows
    for query, wall in zip(recorded, walls, strict=True):
        assert query[2] >= 0.8 * wall
    assert db_seconds(request_ctx) >= 0.8 * sum(walls)


def fetch_all_by_fetchall(cur: sqlite3.Cursor) -> None:
    cur.fetchall()


def fetch_all_by_fetchmany(cur: sqlite3.Cursor) -> None:
    while cur.fetchmany(3):
        pass


def fetch_all_by_fetchmany_default(cur: sqlite3.Cursor) -> None:
    while cur.fetchmany():  # arraysize: 1
        pass


def fetch_all_by_fetchone(cur: sqlite3.Cursor) -> None:
    while cur.fetchone() is not None:
        pass


def fetch_all_by_iteration(cur: sqlite3.Cursor) -> None:
    for _ in cur:
        pass


@pytest.mark.parametrize(
    "fetch",
    [
        fetch_all_by_fetchall,
        fetch_all_by_fetchmany,
        fetch_all_by_fetchmany_default,
        lambda cur: cur.fetchmany(0),  # 0 or less: all rows
        fetch_all_by_fetchone,
        fetch_all_by_iteration,
        list,
    ],
    ids=["fetchall", "fetchmany", "fetchmany-default", "fetchmany-0", "fetchone", "iter", "list"],
)
@pytest.mark.parametrize("in_request", [False, True])
def test_sqlite_select_is_recorded_with_its_rows_once_all_are_fetched(
    recorder: Recorder, fetch: Callable[[sqlite3.Cursor], Any], in_request: bool
) -> None:
    conn = customers(7)
    ctx = RequestContext("GET", perf()) if in_request else None
    token = current_request.set(ctx)
    try:
        cur = conn.execute("SELECT id FROM customers")
        if ctx is None:  # outside a request, a statement is recorded once done
            assert take(recorder, ctx, "SELECT id FROM customers") == (0, 0, 0)
        fetch(cur)
        assert take(recorder, ctx, "SELECT id FROM customers") == (1, 7, 0)
        assert cur.fetchall() == []
        assert cur.fetchone() is None
        cur.close()
        del cur
        conn.execute("SELECT 1").fetchall()
        assert take(recorder, ctx, "SELECT id FROM customers") == (0, 0, 0)
    finally:
        current_request.reset(token)
    conn.close()


def end_by_close(cur: sqlite3.Cursor) -> None:
    cur.close()


def end_by_reexecute(cur: sqlite3.Cursor) -> None:
    cur.execute("SELECT 1")


def end_by_executemany(cur: sqlite3.Cursor) -> None:
    cur.executemany("INSERT INTO customers VALUES (?, ?)", [(100, "new@example.com")])


def end_by_executescript(cur: sqlite3.Cursor) -> None:
    cur.executescript("SELECT 1;")


@pytest.mark.parametrize(
    "end", [end_by_reexecute, end_by_executemany, end_by_executescript, end_by_close]
)
@pytest.mark.parametrize("in_request", [False, True])
def test_sqlite_partly_fetched_select_is_recorded_once_when_the_cursor_moves_on(
    recorder: Recorder, end: Callable[[sqlite3.Cursor], Any], in_request: bool
) -> None:
    conn = customers(7)
    ctx = RequestContext("GET", perf()) if in_request else None
    token = current_request.set(ctx)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM customers")
        assert cur.fetchone() == (0,)
        assert cur.fetchmany(2) == [(1,), (2,)]
        if ctx is None:  # outside a request, a statement is recorded once done
            assert take(recorder, ctx, "SELECT id FROM customers") == (0, 0, 0)
        end(cur)
        assert take(recorder, ctx, "SELECT id FROM customers") == (1, 3, 0)
        cur.close()
        del cur
        conn.execute("SELECT 1").fetchall()
        assert take(recorder, ctx, "SELECT id FROM customers") == (0, 0, 0)
    finally:
        current_request.reset(token)
    conn.close()


@pytest.mark.parametrize("in_request", [False, True])
def test_sqlite_partly_fetched_select_is_recorded_once_when_the_cursor_is_dropped(
    recorder: Recorder, in_request: bool
) -> None:
    conn = customers(7)
    ctx = RequestContext("GET", perf()) if in_request else None
    token = current_request.set(ctx)
    try:
        assert conn.execute("SELECT id FROM customers").fetchone() == (0,)
        assert take(recorder, ctx, "SELECT id FROM customers") == (1, 1, 0)
        cur = conn.execute("SELECT id FROM customers")
        assert next(cur) == (0,)
        del cur
        assert take(recorder, ctx, "SELECT id FROM customers") == (1, 1, 0)
        conn.execute("SELECT id FROM customers")  # not fetched at all
        assert take(recorder, ctx, "SELECT id FROM customers") == (1, 0, 0)
    finally:
        current_request.reset(token)
    conn.close()


@pytest.mark.parametrize("in_request", [False, True])
def test_sqlite_select_of_a_collected_cursor_is_recorded_once(
    recorder: Recorder, in_request: bool
) -> None:
    conn = customers(7)
    ctx = RequestContext("GET", perf()) if in_request else None
    token = current_request.set(ctx)
    try:
        cycle: list[Any] = [conn.execute("SELECT id FROM customers")]
        assert cycle[0].fetchone() == (0,)
        cycle.append(cycle)
        del cycle
        gc.collect()
        if not in_request:
            # the collector may run while this thread holds the recorder's
            # lock: outside a request the statement waits for the next one
            assert take(recorder, ctx, "SELECT id FROM customers") == (0, 0, 0)
            conn.execute("SELECT 1").fetchall()
        assert take(recorder, ctx, "SELECT id FROM customers") == (1, 1, 0)
        conn.execute("SELECT 2").fetchall()
        assert take(recorder, ctx, "SELECT id FROM customers") == (0, 0, 0)
    finally:
        current_request.reset(token)
    conn.close()


def test_sqlite_select_goes_to_the_request_that_executed_it(recorder: Recorder) -> None:
    conn = customers(7)
    first, second = RequestContext("GET", perf()), RequestContext("GET", perf())
    first.route, second.route = "/first", "/second"
    token = current_request.set(first)
    try:
        fetched_outside = conn.execute("SELECT id FROM customers")
        fetched_in_second = conn.execute("SELECT id FROM customers WHERE id > 3")
    finally:
        current_request.reset(token)
    outside = conn.execute("SELECT id FROM customers WHERE id < 2")
    assert len(fetched_outside.fetchall()) == 7
    token = current_request.set(second)
    try:
        assert len(fetched_in_second.fetchall()) == 3
        assert len(outside.fetchall()) == 2
    finally:
        current_request.reset(token)
    conn.close()
    assert [(q[0], q[3]) for q in first.queries] == [
        ("SELECT id FROM customers", 7),
        ("SELECT id FROM customers WHERE id > 3", 3),
    ]
    assert first.db_count == 2
    assert not second.queries  # nothing recorded in it
    assert second.db_count == 0
    assert queries(recorder) == {
        "SELECT id FROM customers WHERE id < 2": [(NO_ROUTE, "sqlite", 1, 0, 2)]
    }


def boom_at_3(value: int) -> int:
    if value == 3:
        raise ValueError("boom")
    return value


def fetch_into(received: list[Any], cur: sqlite3.Cursor, style: str) -> None:
    """Fetch all rows of ``cur`` in ``style`` into ``received``, as the app gets them."""
    if style == "fetchall":
        received.extend(cur.fetchall())
    elif style == "fetchmany":
        while rows := cur.fetchmany(3):
            received.extend(rows)
    elif style == "fetchone":
        while (row := cur.fetchone()) is not None:
            received.append(row)
    else:
        for row in cur:
            received.append(row)


@pytest.mark.parametrize("style", ["fetchall", "fetchmany", "fetchone", "iter"])
def test_sqlite_select_failing_while_fetching_is_recorded_once_as_failed(
    recorder: Recorder, style: str
) -> None:
    conn = customers(7)
    conn.create_function("boom_at_3", 1, boom_at_3)
    cur = conn.execute("SELECT boom_at_3(id) FROM customers ORDER BY id")
    received: list[Any] = []
    with pytest.raises(sqlite3.OperationalError, match="user-defined function raised"):
        fetch_into(received, cur, style)
    cur.close()
    conn.close()
    assert len(received) < 3
    # the rows the app got before the error are counted
    assert queries(recorder)["SELECT boom_at_3(id) FROM customers ORDER BY id"] == [
        (NO_ROUTE, "sqlite", 1, 1, len(received))
    ]


def test_sqlite_select_counts_nothing_unless_recording_at_its_execute(
    recorder: Recorder,
) -> None:
    conn = customers(7)
    cur = conn.cursor()
    active.recorder = None
    cur.execute("SELECT id FROM customers")
    active.recorder = recorder
    assert len(cur.fetchall()) == 7
    with sql.suppressed():
        cur.execute("SELECT id FROM customers WHERE id > 3")
    assert len(cur.fetchall()) == 3
    # a statement executed while recording is recorded by the recorder of its
    # execute, even once recording stops
    cur.execute("SELECT id FROM customers WHERE id < 2")
    assert cur.fetchone() == (0,)
    active.recorder = None
    cur.execute("SELECT id FROM customers WHERE id < 5")  # ends the one before
    assert len(cur.fetchall()) == 5
    active.recorder = recorder
    conn.close()
    assert queries(recorder) == {
        "SELECT id FROM customers WHERE id < 2": [(NO_ROUTE, "sqlite", 1, 0, 1)]
    }


def test_sqlite_cursors_with_selects_pending_at_once_are_recorded_apart(
    recorder: Recorder, request_ctx: RequestContext
) -> None:
    conn = customers(7)
    a = conn.execute("SELECT id FROM customers WHERE id < 4")
    b = conn.execute("SELECT id FROM customers WHERE id >= 4")
    assert a.fetchone() == (0,)
    assert b.fetchone() == (4,)
    assert len(b.fetchall()) == 2
    assert len(a.fetchall()) == 3
    conn.close()
    assert sorted((q[0], q[3]) for q in request_ctx.queries) == [
        ("SELECT id FROM customers WHERE id < 4", 4),
        ("SELECT id FROM customers WHERE id >= 4", 3),
    ]


def test_sqlite_row_factories_and_cursor_subclasses_keep_working(recorder: Recorder) -> None:
    class Lookups(sqlite3.Cursor):
        def ids(self) -> list[int]:
            return [row["id"] for row in self]

    conn = customers(5)
    conn.row_factory = sqlite3.Row
    cur = conn.cursor(Lookups)
    assert isinstance(cur, Lookups)
    assert cur.execute("SELECT id FROM customers").ids() == [0, 1, 2, 3, 4]
    assert cur.execute("SELECT id FROM customers").fetchmany(size=2)[1]["id"] == 1
    cur.close()
    conn.close()
    assert queries(recorder) == {"SELECT id FROM customers": [(NO_ROUTE, "sqlite", 2, 0, 7)]}


def test_sqlite_cursor_subclass_fetchall_returning_no_list(recorder: Recorder) -> None:
    class Tuples(sqlite3.Cursor):
        def fetchall(self) -> Any:
            return tuple(super().fetchall())

    conn = customers(3)
    assert conn.cursor(Tuples).execute("SELECT id FROM customers").fetchall() == ((0,), (1,), (2,))
    conn.close()
    # recorded once; rows counted only from lists
    assert queries(recorder)["SELECT id FROM customers"][0][2] == 1


def test_sqlite_selects_of_many_threads_are_each_recorded_once(recorder: Recorder) -> None:
    def work(n: int) -> None:
        ctx = RequestContext("GET", perf())
        ctx.route = f"/t{n}"
        current_request.set(ctx)  # each thread has its own context
        conn = customers(5)
        for _ in range(100):
            assert conn.execute("SELECT id FROM customers").fetchone() == (0,)  # dropped
            assert len(conn.execute("SELECT id FROM customers").fetchall()) == 5
        conn.close()
        recorder.finish(ctx, perf() - ctx.started)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    found = queries(recorder)["SELECT id FROM customers"]
    assert sorted(found) == [(f"/t{n}", "sqlite", 200, 0, 600) for n in range(4)]


def test_sqlite_select_of_a_cursor_kept_past_its_request_counts_in_that_request(
    recorder: Recorder,
) -> None:
    conn = customers(7)
    ctx = RequestContext("GET", perf())
    token = current_request.set(ctx)
    try:
        cur = conn.execute("SELECT id FROM customers")
        assert cur.fetchmany(2) == [(0,), (1,)]
        ctx.route = "/kept"
        recorder.finish(ctx, 0.01)  # the request ends, the cursor lives on
    finally:
        current_request.reset(token)
    assert cur.fetchall() == [(2,), (3,), (4,), (5,), (6,)]  # in no request now
    conn.close()
    agg = recorder.collect().queries[("SELECT id FROM customers", "/kept", "sqlite")]
    assert (agg.count, agg.rows, agg.errors) == (1, 2, 0)


class ParamsNoneCursor(sqlite3.Cursor):
    """Like Django's SQLiteCursorWrapper: SQL given without parameters is run
    as written; with parameters, ``%s`` placeholders become ``?``."""

    def execute(self, sql: str, params: Any = None) -> Any:  # type: ignore[override]
        if params is None:
            return super().execute(sql)
        return super().execute(sql.replace("%s", "?"), params)


def test_sqlite_execute_without_parameters_passes_none_to_the_base(recorder: Recorder) -> None:
    """The timed execute hands its base the arguments it was given: no
    parameters is not the same as empty ones to a subclass like Django's."""
    conn = sqlite3.connect(":memory:")
    cur = conn.cursor(factory=ParamsNoneCursor)
    assert cur.execute("SELECT 'a%s'").fetchone() == ("a%s",)
    assert cur.execute("SELECT %s", (5,)).fetchone() == (5,)

    class OwnCursorConnection(sqlite3.Connection):
        def cursor(self, factory: Any = ParamsNoneCursor) -> Any:  # type: ignore[override]
            return super().cursor(factory)

    own = sqlite3.connect(":memory:", factory=OwnCursorConnection)
    assert own.execute("SELECT 'b%s'").fetchone() == ("b%s",)  # Connection.execute too
    conn.close()
    own.close()
    found = queries(recorder)
    assert found["SELECT 'a%s'"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]
    assert found["SELECT 'b%s'"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]


class HookedCursor(sqlite3.Cursor):
    """A cursor class with an attribute hook of its own, which every access
    (perfpilot's pending statement too) goes through."""

    seen = 0

    def __getattribute__(self, name: str) -> Any:
        if name == "_perfpilot_state":
            HookedCursor.seen += 1
        return super().__getattribute__(name)


def test_sqlite_cursor_class_with_an_attribute_hook_is_timed(recorder: Recorder) -> None:
    conn = sqlite3.connect(":memory:")
    HookedCursor.seen = 0
    cur = conn.cursor(factory=HookedCursor)
    assert cur.execute("SELECT 1").fetchone() == (1,)
    assert cur.execute("SELECT 2").fetchall() == [(2,)]
    conn.close()
    assert HookedCursor.seen > 0
    found = queries(recorder)
    assert found["SELECT 1"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]
    assert found["SELECT 2"] == [(NO_ROUTE, "sqlite", 1, 0, 1)]
