"""sqlite3 hooks: timed connections and cursors, a statement's fetches included.

``sqlite3.connect`` (also as ``sqlite3.dbapi2.connect``) makes connections of
a ``sqlite3.Connection`` subclass whose ``cursor()`` returns a timed
``sqlite3.Cursor`` subclass, and whose ``execute``, ``executemany`` and
``executescript`` use such a cursor too (sqlite3's own make their cursor in C,
without calling ``cursor()``). A caller's own ``factory`` (connection or cursor
class) is subclassed the same way; a factory that is not a class derived from
sqlite3's is left untimed, with one warning. ``from sqlite3 import connect``
done before :func:`install` keeps the unpatched function. Connections opened by
perfpilot's own store and by aiosqlite (whose thread has no request context)
are not timed.

Statements that return no rows (``cursor.description is None``: DML, DDL) are
recorded when ``execute`` returns, with the DB-API ``rowcount``. A statement
that returns rows is not done then: sqlite3 steps to the first row in
``execute`` and finds the others while the app fetches, so a full scan that
finds its row early runs mostly inside ``fetchall()``. Such a statement is put
into its request at ``execute`` (:meth:`Recorder.open_query`), and its event
keeps growing while the request runs: the time spent in each
``fetchone``/``fetchmany``/``fetchall``/``next()`` on the cursor is added (not
the app's time between them), and so are the rows fetched, until a fetch finds
the end of the rows (or raises: then the statement is marked failed), the
cursor runs another statement, is closed, or is garbage-collected. A cursor
kept past its request still counts its statement there, with the fetch time
up to the request's end. Outside a request (or past a request's event bound)
the statement is recorded once it is done, as above; when that happens in the
garbage collector, at the next statement a timed cursor runs, not at once: the
collector may run while this thread holds the recorder's lock.
``executemany`` counts ``rowcount``; ``executescript`` counts no rows.

A cursor keeps its pending statement in an attribute of its timed class (a
slot on the cursors perfpilot makes). A cursor that an app's own
``Connection.cursor()`` made is re-classed in place (see :func:`_retimed`),
which needs the same memory layout, so no slot: its attribute is a property
over a side table keyed by ``id(cursor)``.

Costs on the request path: a row-returning statement adds a list at
``execute``, and two clock reads to each fetch; every timed cursor has a Python
``__del__``, and each ``next()`` on it is a Python call.

``execute`` and ``fetchone``, which nearly every statement passes through, are
also written in C (``_speedups.c``, built when perfpilot is installed
where a C compiler is): the timed classes use those when the extension is
there and ``PERFPILOT_PURE_PYTHON`` is not set (see :mod:`.speedups`). The C
methods do what the Python ones here do, with this module's objects (taken once,
at import); the Python methods stay the reference, and the C ones hand them any
call they do not handle themselves (keyword arguments, for one).
"""

from __future__ import annotations

import collections
import functools
import gc
import sys
from collections.abc import Callable
from typing import Any

from perfpilot.instrument import speedups
from perfpilot.instrument.context import (
    MAX_EVENTS_PER_REQUEST,
    active,
    current_request,
    perf,
    warn_once,
)
from perfpilot.instrument.sql_record import SQLITE, is_suppressed, record, suppression

__all__ = ["install"]

_current_request = current_request.get

_speedups_module = speedups.module
# the C extension the timed classes made from now on use (None: Python only)
_speedups: Any = speedups.active

# A timed cursor's ``_perfpilot_state``: the row-returning statement whose
# fetches are still timed, or None. It is the event from
# Recorder.open_query, ``[sql, start, seconds, rows, failed, db]``, already in
# its request; or, outside a request (or past its event bound), the same plus
# ``recorder, request context``, recorded when done.
_STATE = "_perfpilot_state"
# The states of re-classed cursors (see _retimed), which have no slot for it,
# by ``id(cursor)``; ``__del__`` removes a cursor's entry.
_side_states: dict[int, list[Any]] = {}


def _side_state_get(cursor: Any) -> list[Any] | None:
    return _side_states.get(id(cursor))


def _side_state_set(cursor: Any, state: list[Any] | None) -> None:
    if state is None:
        _side_states.pop(id(cursor), None)
    else:
        _side_states[id(cursor)] = state


_SIDE_STATE = property(_side_state_get, _side_state_set)
_SECONDS = 2
_ROWS = 3
_FAILED = 4
_IN_REQUEST = 6  # length of an event that is already its request's
# Statements of cursors the garbage collector freed while a collection ran:
# recorded at the next ``execute`` of a timed cursor, not in ``__del__``,
# which then may run while this thread holds the recorder's lock.
_collected: collections.deque[list[Any]] = collections.deque()


class _Collector:
    running = False  # a garbage collection is under way (see _gc_phase)


_collector = _Collector()
# fetchmany's size when the caller gives none (the cursor's arraysize)
_ARRAYSIZE: Any = object()
# execute's parameters when the caller gives none
_NO_PARAMETERS: Any = object()


def _finish(state: list[Any]) -> None:
    """Record a statement that was not already its request's (see _STATE)."""
    sql, start, seconds, rows, failed, db, recorder, ctx = state
    try:
        if _current_request() is ctx:
            recorder.query(sql, start, seconds, rows, failed, db)
            return
        token = current_request.set(ctx)
        try:
            recorder.query(sql, start, seconds, rows, failed, db)
        finally:
            current_request.reset(token)
    except Exception as exc:
        warn_once("sql-record", "perfpilot: an SQL statement was not recorded: %r", exc)


def _gc_phase(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` entry: notes whether a collection is running.

    Only the collecting thread runs Python code that matters here: other
    threads that run meanwhile merely defer a dropped cursor's statement.
    """
    _collector.running = phase == "start"


def _done(cursor: Any) -> None:
    """The statement ``cursor`` has pending, if any, is done: stop timing it."""
    try:
        state = cursor._perfpilot_state
    except AttributeError:  # the cursor never ran a statement
        return
    if state is not None:
        cursor._perfpilot_state = None
        if len(state) > _IN_REQUEST:
            _finish(state)


def _finish_collected() -> None:
    while _collected:
        try:
            state = _collected.popleft()
        except IndexError:  # another thread took the last one
            return
        _finish(state)


def _fetch_failed(cursor: Any, state: list[Any], start: float) -> None:
    state[_SECONDS] += perf() - start
    state[_FAILED] = True
    _done(cursor)


def _timed_cursor_class(base: type, *, same_layout: bool = False) -> type:
    """``base`` (``sqlite3.Cursor`` or a subclass) with its execute, fetch,
    ``close`` and ``__del__`` methods timed; ``execute`` and the fetches by
    hand, without ``*args``: they are the hot path.

    The class keeps each cursor's pending statement in a slot; with
    ``same_layout`` (for :func:`_retimed`) in a side table instead, so that its
    instances have ``base``'s memory layout.
    """
    b_execute = base.execute  # type: ignore[attr-defined]
    b_fetchone = base.fetchone  # type: ignore[attr-defined]
    b_fetchmany = base.fetchmany  # type: ignore[attr-defined]
    b_fetchall = base.fetchall  # type: ignore[attr-defined]
    b_next = base.__next__  # type: ignore[attr-defined]
    b_close = base.close  # type: ignore[attr-defined]
    b_del = getattr(base, "__del__", None)

    def execute(self: Any, sql: Any, parameters: Any = _NO_PARAMETERS, /) -> Any:
        # the base gets the arguments it was given: a subclass's execute may
        # take no parameters differently from empty ones (Django's does)
        args = (sql,) if parameters is _NO_PARAMETERS else (sql, parameters)
        try:  # _done(), inlined
            state = self._perfpilot_state
        except AttributeError:  # the cursor's first statement
            state = None
        if state is not None:
            self._perfpilot_state = None
            if len(state) > _IN_REQUEST:
                _finish(state)
        recorder = active.recorder
        if recorder is None or (suppression.blocks and is_suppressed()):
            return b_execute(self, *args)
        if _collected:
            _finish_collected()
        start = perf()
        try:
            result = b_execute(self, *args)
        except BaseException:
            record(recorder, sql, start, perf(), 0, True, SQLITE)
            raise
        end = perf()
        try:  # record(), inlined
            if self.description is None:  # no rows to fetch: done
                rows = self.rowcount
                recorder.query(sql, start, end - start, rows if rows > 0 else 0, False, SQLITE)
            else:
                ctx = _current_request()
                # Recorder.open_query, inlined for a request's statements
                # (db_count is len(ctx.queries) under the bound)
                if ctx is not None and 0 < (n := ctx.db_count) < MAX_EVENTS_PER_REQUEST:
                    ctx.db_count = n + 1
                    ctx.queries.append(state := [sql, start, end - start, 0, False, SQLITE])
                elif ctx is not None and n == 0:  # the request's first event
                    ctx.db_count = 1
                    ctx.queries = [state := [sql, start, end - start, 0, False, SQLITE]]
                else:
                    state = recorder.open_query(sql, start, end - start, SQLITE)
                self._perfpilot_state = state
            if sql not in recorder.call_sites:  # a method call only the first time
                recorder.call_site(sql)
        except Exception as exc:
            warn_once("sql-record", "perfpilot: an SQL statement was not recorded: %r", exc)
        return result

    def timed(method: Callable[..., Any], rows_known: bool) -> Callable[..., Any]:
        def run(self: Any, sql: Any, *args: Any) -> Any:
            _done(self)
            recorder = active.recorder
            if recorder is None or (suppression.blocks and is_suppressed()):
                return method(self, sql, *args)
            start = perf()
            try:
                result = method(self, sql, *args)
            except BaseException:
                record(recorder, sql, start, perf(), 0, True, SQLITE)
                raise
            record(recorder, sql, start, perf(), self.rowcount if rows_known else 0, False,
                   SQLITE)  # fmt: skip
            return result

        return functools.wraps(method)(run)

    def fetchall(self: Any) -> Any:
        try:
            state = self._perfpilot_state
        except AttributeError:
            state = None
        if state is None:
            return b_fetchall(self)
        self._perfpilot_state = None
        start = perf()
        try:
            rows = b_fetchall(self)
        except BaseException:
            state[_SECONDS] += perf() - start
            state[_FAILED] = True
            if len(state) > _IN_REQUEST:
                _finish(state)
            raise
        state[_SECONDS] += perf() - start
        if type(rows) is list:  # not so from an app's own fetchall, maybe
            state[_ROWS] += len(rows)
        if len(state) > _IN_REQUEST:
            _finish(state)
        return rows

    def fetchone(self: Any) -> Any:
        try:
            state = self._perfpilot_state
        except AttributeError:
            state = None
        if state is None:
            return b_fetchone(self)
        start = perf()
        try:
            row = b_fetchone(self)
        except BaseException:
            _fetch_failed(self, state, start)
            raise
        state[_SECONDS] += perf() - start
        if row is not None:
            state[_ROWS] += 1
        else:
            _done(self)
        return row

    def fetchmany(self: Any, size: Any = _ARRAYSIZE) -> Any:
        try:
            state = self._perfpilot_state
        except AttributeError:
            state = None
        if state is None:
            return b_fetchmany(self) if size is _ARRAYSIZE else b_fetchmany(self, size)
        if size is _ARRAYSIZE:
            size = self.arraysize
        start = perf()
        try:
            rows = b_fetchmany(self, size)
        except BaseException:
            _fetch_failed(self, state, start)
            raise
        state[_SECONDS] += perf() - start
        n = len(rows) if type(rows) is list else 0
        state[_ROWS] += n
        try:
            done = n < size or size <= 0  # sqlite3 fetches all rows when size <= 0
        except Exception:  # a size sqlite3 takes (it has __index__) but does not compare
            done = False
        if done:
            _done(self)
        return rows

    def __next__(self: Any) -> Any:
        try:
            state = self._perfpilot_state
        except AttributeError:
            state = None
        if state is None:
            return b_next(self)
        start = perf()
        try:
            row = b_next(self)
        except StopIteration:
            state[_SECONDS] += perf() - start
            _done(self)
            raise
        except BaseException:
            _fetch_failed(self, state, start)
            raise
        state[_SECONDS] += perf() - start
        state[_ROWS] += 1
        return row

    def close(self: Any) -> Any:
        _done(self)
        return b_close(self)

    def __del__(self: Any) -> None:
        try:
            state = self._perfpilot_state
            if state is not None:
                self._perfpilot_state = None  # a side table's entry goes
        except Exception:  # never ran a statement; or at exit, globals may be gone
            state = None
        if state is not None and len(state) > _IN_REQUEST:
            # Recording outside a request takes the recorder's lock, and the
            # collector may run this while this thread holds that lock.
            try:
                if _collector.running:
                    _collected.append(state)
                else:
                    _finish(state)
            except Exception as exc:
                warn_once("sql-record", "perfpilot: an SQL statement was not recorded: %r", exc)
        if b_del is not None:
            b_del(self)

    if _speedups is not None:  # the same two methods in C
        fast_execute = _speedups.TimedMethod(_speedups.EXECUTE, b_execute, execute)
        fast_fetchone = _speedups.TimedMethod(_speedups.FETCHONE, b_fetchone, fetchone)
    else:
        fast_execute, fast_fetchone = execute, fetchone
    namespace: dict[str, Any] = {
        "__slots__": () if same_layout else (_STATE,),
        "__module__": __name__,
        "__doc__": base.__doc__,
        "__perfpilot__": True,
        "execute": functools.wraps(b_execute)(fast_execute),
        "executemany": timed(base.executemany, True),  # type: ignore[attr-defined]
        "executescript": timed(base.executescript, False),  # type: ignore[attr-defined]
        "fetchall": functools.wraps(b_fetchall)(fetchall),
        "fetchone": functools.wraps(b_fetchone)(fast_fetchone),
        "fetchmany": functools.wraps(b_fetchmany)(fetchmany),
        "__next__": functools.wraps(b_next)(__next__),
        "close": functools.wraps(b_close)(close),
        "__del__": __del__,
    }
    if same_layout:
        namespace[_STATE] = _SIDE_STATE
    cls = type(base.__name__, (base,), namespace)
    if _speedups is not None and not same_layout:
        # the C methods read and write the pending statement in the slot itself
        try:
            fast_execute.use_slot(cls)
            fast_fetchone.use_slot(cls)
        except TypeError:  # the base hooks attribute access: go through it
            pass
    return cls


def _timed_connection_class(base: type, cursor_class: type) -> type:
    """``base`` (``sqlite3.Connection`` or a subclass) whose cursors are timed.

    ``execute``, ``executemany`` and ``executescript`` are redone as sqlite3
    does them (a new cursor, then its method), with a timed cursor: so they
    are timed, and the cursor they return is timed too. That is skipped for a
    method ``base`` overrides (the override's cursors are timed anyway).
    """
    import sqlite3

    plain = sqlite3.Connection
    b_cursor = base.cursor  # type: ignore[attr-defined]
    own_cursor = b_cursor is not plain.cursor

    def new_cursor(self: Any) -> Any:
        if own_cursor:
            return _retimed(b_cursor(self))
        cur = b_cursor(self, cursor_class)
        # Set, so that reading it never raises: an exception costs more than
        # the rest of a statement's timing.
        cur._perfpilot_state = None
        return cur

    def cursor(self: Any, factory: Any = None) -> Any:
        if factory is None:
            return new_cursor(self)
        return b_cursor(self, _timed_cursor_for(factory))

    def execute(self: Any, sql: Any, parameters: Any = _NO_PARAMETERS, /) -> Any:
        if parameters is _NO_PARAMETERS:
            return new_cursor(self).execute(sql)
        return new_cursor(self).execute(sql, parameters)

    def executemany(self: Any, sql: Any, seq_of_parameters: Any, /) -> Any:
        return new_cursor(self).executemany(sql, seq_of_parameters)

    def executescript(self: Any, sql_script: Any, /) -> Any:
        return new_cursor(self).executescript(sql_script)

    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": base.__doc__,
        "__perfpilot__": True,
        "cursor": functools.wraps(b_cursor)(cursor),
    }
    for name, method in (
        ("execute", execute),
        ("executemany", executemany),
        ("executescript", executescript),
    ):
        if getattr(base, name) is getattr(plain, name):
            namespace[name] = functools.wraps(getattr(plain, name))(method)
    return type(base.__name__, (base,), namespace)


_cursor_classes: dict[type, type] = {}  # timed classes, slot for the state
_same_layout_classes: dict[type, type] = {}  # for _retimed, side table for it
_connection_classes: dict[type, type] = {}


def _timed_cursor_for(factory: Any, *, same_layout: bool = False) -> Any:
    """The timed version of a cursor factory (itself when it cannot be timed);
    with ``same_layout``, one whose instances have the factory's memory layout."""
    import sqlite3

    if getattr(factory, "__perfpilot__", False):
        return factory
    classes = _same_layout_classes if same_layout else _cursor_classes
    timed = classes.get(factory) if isinstance(factory, type) else None
    if timed is not None:
        return timed
    if isinstance(factory, type) and issubclass(factory, sqlite3.Cursor):
        try:
            timed = classes[factory] = _timed_cursor_class(factory, same_layout=same_layout)
            return timed
        except Exception as exc:
            warn_once("sqlite3-cursor", "perfpilot: cannot time cursors of %r: %r", factory, exc)
            return factory
    warn_once(
        f"sqlite3-cursor-{getattr(factory, '__qualname__', type(factory).__name__)}",
        "perfpilot: sqlite3 cursor factory %r is not a sqlite3.Cursor subclass: "
        "its statements are not timed",
        factory,
    )
    return factory


def _timed_connection_for(factory: Any) -> Any:
    """The timed version of a connection factory (itself when it cannot be timed)."""
    import sqlite3

    if getattr(factory, "__perfpilot__", False):
        return factory
    timed = _connection_classes.get(factory) if isinstance(factory, type) else None
    if timed is not None:
        return timed
    if isinstance(factory, type) and issubclass(factory, sqlite3.Connection):
        try:
            timed = _connection_classes[factory] = _timed_connection_class(
                factory, _timed_cursor_for(sqlite3.Cursor)
            )
            return timed
        except Exception as exc:
            warn_once(
                "sqlite3-factory", "perfpilot: cannot time connections of %r: %r", factory, exc
            )
            return factory
    warn_once(
        f"sqlite3-factory-{getattr(factory, '__qualname__', type(factory).__name__)}",
        "perfpilot: sqlite3 connection factory %r is not a sqlite3.Connection subclass: "
        "its statements are not timed",
        factory,
    )
    return factory


def _retimed(cur: Any) -> Any:
    """A cursor made by an app's own ``Connection.cursor()``, switched to the
    timed subclass of its class (same memory layout) when possible."""
    cls = type(cur)
    if getattr(cls, "__perfpilot__", False):
        return cur
    try:
        timed = _timed_cursor_for(cls, same_layout=True)
        if timed is not cls:
            cur.__class__ = timed
    except Exception as exc:
        warn_once("sqlite3-retime", "perfpilot: cursors of %r not timed: %r", cls, exc)
    return cur


# Connections these modules open are not timed: perfpilot's own store, and
# aiosqlite, which runs sqlite3 in a thread of its own, away from the request's
# context (SQLAlchemy's listeners time it on the request's side).
_UNTIMED_CALLERS = ("perfpilot.store", "aiosqlite")
# connect(database, timeout, detect_types, isolation_level, check_same_thread, factory, ...)
_FACTORY_POSITION = 4


def install() -> list[Callable[[], None]]:
    """Patch ``sqlite3.connect``; returns the functions that undo it."""
    import sqlite3
    import sqlite3.dbapi2

    original = sqlite3.connect
    if getattr(original, "__perfpilot__", False):
        return []

    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not str(caller).startswith(_UNTIMED_CALLERS):
                if len(args) > _FACTORY_POSITION:
                    args = (
                        *args[:_FACTORY_POSITION],
                        _timed_connection_for(args[_FACTORY_POSITION]),
                        *args[_FACTORY_POSITION + 1 :],
                    )
                else:
                    kwargs["factory"] = _timed_connection_for(
                        kwargs.get("factory", sqlite3.Connection)
                    )
        except Exception as exc:
            warn_once("sqlite3-connect", "perfpilot: sqlite3 connection not timed: %r", exc)
        return original(database, *args, **kwargs)

    functools.update_wrapper(connect, original)
    connect.__perfpilot__ = True  # type: ignore[attr-defined]
    undo: list[Callable[[], None]] = []
    if _gc_phase not in gc.callbacks:
        gc.callbacks.append(_gc_phase)
        undo.append(_forget_gc_phase)
    for module in (sqlite3, sqlite3.dbapi2):
        if getattr(module, "connect", None) is original:
            undo.append(functools.partial(setattr, module, "connect", original))
            setattr(module, "connect", connect)  # noqa: B010 (mypy: dbapi2 stubs)
    return undo


def _forget_gc_phase() -> None:
    if _gc_phase in gc.callbacks:
        gc.callbacks.remove(_gc_phase)
    _collector.running = False


if _speedups_module is not None:
    _speedups_module.configure(globals())
