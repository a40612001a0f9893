"""SQL hooks, through their entry point: installing, and statements reaching the snapshot.

The fixtures and helpers here are shared by the tests of each hook module
(``test_sql_sqlite``, ``test_sql_psycopg``, ``test_sql_sqlalchemy``).
"""

from __future__ import annotations

import gc
import inspect
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import text

from perfpilot.app_records import AppSnapshot
from perfpilot.instrument import sql, sql_sqlite
from perfpilot.instrument.context import RequestContext, active, current_request, perf
from perfpilot.instrument.fingerprint import fingerprint
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import NO_ROUTE, Recorder


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


def flush(rec: Recorder) -> AppSnapshot:
    """The snapshot the flusher makes of what ``rec`` holds."""
    written: list[AppSnapshot] = []
    Flusher(rec, written.append, fingerprint).flush()
    assert len(written) == 1
    return written[0]


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
        assert gc.callbacks.count(sql_sqlite._gc_phase) == 1
        assert sql.install() == ["sqlite3", "psycopg", "sqlalchemy"]
        assert gc.callbacks.count(sql_sqlite._gc_phase) == 1
        assert sqlite3.connect is patched
        assert not getattr(psycopg.Cursor.execute.__wrapped__, "__perfpilot__", False)
    finally:
        sql.uninstall()
    assert sqlite3.connect is original
    assert sqlite3.dbapi2.connect is original
    assert psycopg.Cursor.execute is original_execute
    assert sqlalchemy.engine.Engine.raw_connection is original_raw_connection
    assert sql_sqlite._gc_phase not in gc.callbacks
    if installed_before:
        sql.install()


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
    conn.execute("CREATE TABLE t (a)")
    conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    conn.executescript("SELECT 3;")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        conn.execute("SELECT * FROM missing")
    # statements recorded after their execute: at the end of the rows, at a
    # re-execute, at close, when dropped (also by the collector: no exception
    # may leave __del__), in a request and outside one
    for ctx in (None, RequestContext("GET", perf())):
        token = current_request.set(ctx)
        try:
            assert conn.execute("SELECT a FROM t").fetchone() == (1,)  # dropped at once
            cur = conn.execute("SELECT a FROM t")
            assert list(cur) == [(1,), (2,), (3,)]
            assert cur.execute("SELECT a FROM t").fetchmany(2) == [(1,), (2,)]
            assert cur.execute("SELECT 4").fetchone() == (4,)
            cur.close()
            cycle: list[Any] = [conn.execute("SELECT a FROM t")]
            cycle.append(cycle)
            del cycle
            gc.collect()
            assert conn.execute("SELECT 5").fetchall() == [(5,)]
        finally:
            current_request.reset(token)
    conn.close()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as sa_conn:
        assert sa_conn.execute(text("SELECT 4")).scalar() == 4
    engine.dispose()


# -- recorded rows reach the snapshot ---------------------------------------------------
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
