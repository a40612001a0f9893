"""The C extension: built where a compiler is, behaves as a method, leaks nothing.

What the C ``execute`` and ``fetchone`` record is tested with the Python ones,
by every test of ``test_sql_sqlite`` (run once with each).
"""

from __future__ import annotations

import gc
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.instrument import sql_sqlite
from perfpilot.instrument.context import RequestContext, current_request, perf
from perfpilot.instrument.recorder import Recorder
from tests.instrument import test_sql

speedups = sql_sqlite._speedups_module
needs_speedups = pytest.mark.skipif(speedups is None, reason="C extension not built")


def test_extension_is_built_where_a_c_compiler_is() -> None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): perfpilot runs its Python methods")
    assert speedups is not None, "the install has a C compiler but did not build _speedups"


def test_extension_is_built_from_the_current_source() -> None:
    """An editable install builds the extension into the source tree: a test
    run after editing the C file without reinstalling would test the old one."""
    if speedups is None:
        pytest.skip("C extension not built")
    built = Path(speedups.__file__)
    source = built.with_name("_speedups.c")
    if not source.exists():
        pytest.skip("installed from a wheel: no source beside the extension")
    assert built.stat().st_mtime >= source.stat().st_mtime, (
        "src/perfpilot/instrument/_speedups.c is newer than the built extension: "
        "run `pip install -e .` again"
    )


recorder = test_sql.recorder  # hooks installed, reporting to a fresh recorder


@pytest.fixture
def timed_conn(recorder: Recorder) -> Iterator[tuple[sqlite3.Connection, Recorder]]:
    conn = sqlite3.connect(":memory:")
    try:
        yield conn, recorder
    finally:
        conn.close()


@needs_speedups
def test_c_methods_look_like_the_methods_they_wrap(
    timed_conn: tuple[sqlite3.Connection, Recorder],
) -> None:
    conn, _rec = timed_conn
    cur = conn.cursor()
    cls = type(cur)
    assert type(cls.__dict__["execute"]).__name__ == "TimedMethod"
    assert cur.execute.__name__ == "execute"
    assert cur.fetchone.__name__ == "fetchone"
    assert cls.execute.__wrapped__ is sqlite3.Cursor.execute
    assert cls.execute.__doc__ == sqlite3.Cursor.execute.__doc__
    assert weakref.WeakMethod(cur.execute)() == cur.execute
    bound = cur.execute  # a bound method, callable later
    assert bound("SELECT 7").fetchone() == (7,)
    assert cls.execute(cur, "SELECT 8").fetchone() == (8,)  # called on the class


@needs_speedups
def test_c_methods_raise_what_sqlite3_raises_for_calls_they_do_not_take(
    timed_conn: tuple[sqlite3.Connection, Recorder],
) -> None:
    conn, _rec = timed_conn
    cur = conn.cursor()
    plain = sqlite3.Cursor(conn)
    for call in (
        lambda c: c.execute(),
        lambda c: c.execute("SELECT 1", (), ()),
        lambda c: c.execute(sql="SELECT 1"),
        lambda c: c.fetchone(1),
        lambda c: c.fetchone(size=1),
    ):
        with pytest.raises(TypeError):
            call(plain)
        with pytest.raises(TypeError):
            call(cur)
    assert cur.execute("SELECT 1").fetchone() == (1,)


@needs_speedups
def test_use_slot_refuses_a_class_without_the_slot() -> None:
    assert speedups is not None
    method = speedups.TimedMethod(speedups.EXECUTE, sqlite3.Cursor.execute, lambda *a: None)

    class NoSlot:
        pass

    class Property:
        _perfpilot_state = property(lambda self: None)

    class Big:
        __slots__ = ("_perfpilot_state", "a", "b", "c")

    class Borrowed:  # another class's slot: its offset is not this class's
        _perfpilot_state = Big.__dict__["_perfpilot_state"]

    class Hooked:
        __slots__ = ("_perfpilot_state",)

        def __getattribute__(self, name: str) -> Any:
            return object.__getattribute__(self, name)

    for cls in (NoSlot, Property, Borrowed):
        with pytest.raises(TypeError, match="_perfpilot_state"):
            method.use_slot(cls)
    with pytest.raises(TypeError, match="attribute access"):
        method.use_slot(Hooked)
    with pytest.raises(TypeError):
        method.use_slot(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        speedups.TimedMethod(7, sqlite3.Cursor.execute, print)


@needs_speedups
def test_c_methods_keep_reference_counts_and_memory_flat(
    timed_conn: tuple[sqlite3.Connection, Recorder],
) -> None:
    """Thousands of statements in and out of requests, through every path of
    the C methods, leave no reference and no memory behind."""
    conn, rec = timed_conn
    conn.execute("CREATE TABLE t (a)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3)])
    text_select = "SELECT a FROM t WHERE a >= ?"
    text_insert = "INSERT INTO t VALUES (?)"
    params = (0,)

    def run(n: int) -> None:
        cur = conn.cursor()
        for i in range(n):
            ctx = RequestContext("GET", perf()) if i % 2 else None
            token = current_request.set(ctx)
            try:
                cur.execute(text_select, params)
                cur.fetchone()
                cur.fetchone()
                if i % 3 == 0:
                    assert cur.fetchone() is not None
                    assert cur.fetchone() is None  # the end of the rows
                if i % 5 == 0:
                    cur.execute(text_insert, params)
                    conn.execute("DELETE FROM t WHERE rowid > 3")
                if i % 7 == 0:
                    with pytest.raises(sqlite3.OperationalError):
                        cur.execute("SELECT * FROM missing")
            finally:
                current_request.reset(token)
            if ctx is not None:
                rec.finish(ctx, 0.001)
        cur.close()
        rec.collect()
        gc.collect()

    run(200)  # warm: caches, call sites, free lists
    counts = [sys.getrefcount(o) for o in (text_select, text_insert, params, rec)]
    tracemalloc.start()
    try:
        run(200)
        before = tracemalloc.get_traced_memory()[0]
        run(4000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(o) for o in (text_select, text_insert, params, rec)] == counts
    # a leaked float per statement would be 4000 * 3 * 24 bytes
    assert after - before < 40_000


def test_pure_python_environment_variable_turns_the_c_methods_off() -> None:
    code = (
        "import sqlite3\n"
        "from perfpilot.instrument import sql\n"
        "sql.install()\n"
        "cls = type(sqlite3.connect(':memory:').cursor())\n"
        "print(type(cls.__dict__['execute']).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PERFPILOT_PURE_PYTHON": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "function"


# -- add_queries: the C aggregation matches Recorder._add_queries ----------------------

_event = st.tuples(
    st.sampled_from(["SELECT 1", "SELECT 2", "UPDATE t SET a = 1", "DELETE FROM t"]),
    st.floats(0, 10, allow_nan=False),
    st.floats(0, 1, allow_nan=False, allow_subnormal=False),
    st.integers(-2, 5),
    st.booleans(),
    st.sampled_from(["sqlite", "postgresql", None]),  # None: no db name (parity only)
)


def _aggregates(rec: Recorder) -> tuple[object, ...]:
    interval = rec._interval
    tables = {
        key: {sql: (agg.durations, agg.rows, agg.errors) for sql, agg in table.items()}
        for key, table in interval.statements.items()
    }
    return tables, interval.statement_keys, interval.drops


@needs_speedups
@settings(max_examples=300, deadline=None)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["/a", "/b/{id}"]),
            st.lists(_event, max_size=12),
            st.booleans(),
        ),
        max_size=6,
    ),
    max_keys=st.integers(1, 6),
)
def test_add_queries_in_c_matches_python(
    requests: list[tuple[str, list[tuple[str, float, float, int, bool, str]], bool]],
    max_keys: int,
) -> None:
    assert speedups is not None
    python, c = Recorder("t", max_keys=max_keys), Recorder("t", max_keys=max_keys)
    for route, events, as_lists in requests:
        batch: list[Any] = [list(e) for e in events] if as_lists else list(events)
        total_python = python._add_queries(python._interval, batch, route)
        total_c = speedups.add_queries(c, c._interval, batch, route)
        assert total_c == total_python  # the same additions in the same order
    assert _aggregates(c) == _aggregates(python)


@needs_speedups
def test_add_queries_in_c_refuses_malformed_events() -> None:
    assert speedups is not None
    rec = Recorder("t")
    with pytest.raises(ValueError, match="6 items"):
        speedups.add_queries(rec, rec._interval, [("SELECT 1", 0.0, 0.1)], "/a")
    with pytest.raises(TypeError):
        speedups.add_queries(rec, rec._interval, [("SELECT 1", 0.0, "x", 0, False, "db")], "/a")
    with pytest.raises(TypeError):
        speedups.add_queries(rec, rec._interval, 7, "/a")
    with pytest.raises(TypeError):
        speedups.add_queries(rec, rec._interval, [])  # type: ignore[call-arg]
    speedups.add_queries(rec, rec._interval, [("SELECT 1", 0.0, 0.5, 2, True, "db")], "/a")
    agg = rec._interval.statements[("/a", "db")]["SELECT 1"]
    assert (agg.durations, agg.rows, agg.errors) == ([0.5], 2, 1)
