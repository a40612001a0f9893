"""SQLAlchemy hooks: statements on unhooked drivers, and pool checkouts.

Statements on a driver hooked by :mod:`~perfpilot.instrument.sql_sqlite` or
:mod:`~perfpilot.instrument.sql_psycopg` are recorded by that hook: SQLAlchemy
stays on its fast path (no event listeners), and the call site is found even
under an asyncio engine, whose listeners run in a greenlet that does not see
the app's frames. An engine on any other driver gets ``before_cursor_execute``,
``after_cursor_execute`` and ``handle_error`` listeners at its first checkout
(``db`` is the dialect's name). Either way each statement is recorded exactly
once. Pools: each ``Engine.raw_connection()`` (how every ``Connection``, hence
every ``Session`` transaction, gets its DB-API connection) is timed and
reported with :meth:`Recorder.pool_checkout`: ``wait_s`` is the whole time to
obtain the connection (waiting for a free one when the pool is exhausted,
opening a new one, ``pool_pre_ping``), and a checkout that times out is
reported with its wait before the error propagates. ``checked_out``,
``overflow`` and ``size`` come from ``QueuePool`` (zero for pools without those
figures). The pool is named by the engine URL without user, password and
query.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from perfpilot.instrument.context import active, perf, warn_once
from perfpilot.instrument.sql_record import is_suppressed, record, suppression

__all__ = ["forget_cursor_classes", "install"]

# ``(cursor, start)`` while SQLAlchemy runs a statement on a cursor no DB-API
# hook times. A context variable, not a thread-local: asyncio tasks share a
# thread, and SQLAlchemy's async engines run listeners in a greenlet that
# shares the task's context.
_sa_running: contextvars.ContextVar[tuple[Any, float] | None] = contextvars.ContextVar(
    "perfpilot_sa_running", default=None
)

_ADAPTER = object()
_verdicts: dict[type, Any] = {}


def forget_cursor_classes() -> None:
    """Forget which cursor classes are timed below SQLAlchemy (hooks changed)."""
    _verdicts.clear()


def _verdict(cls: type) -> Any:
    if getattr(cls, "__perfpilot__", False):  # the sqlite3 cursor classes
        return True
    if getattr(getattr(cls, "execute", None), "__perfpilot__", False):  # psycopg's
        return True
    if hasattr(cls, "_cursor"):  # SQLAlchemy's asyncio adapters: ask the driver's cursor
        return _ADAPTER
    return False


def _timed_below(cursor: Any) -> bool:
    """Whether a DB-API hook of perfpilot times statements on ``cursor``
    (then SQLAlchemy's listeners leave the statement to it)."""
    for _ in range(3):
        cls = type(cursor)
        verdict = _verdicts.get(cls)
        if verdict is None:
            verdict = _verdicts[cls] = _verdict(cls)
        if verdict is not _ADAPTER:
            return bool(verdict)
        cursor = getattr(cursor, "_cursor", None)
    return False


def _sa_before(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    if active.recorder is None or (suppression.blocks and is_suppressed()):
        return
    try:
        if not _timed_below(cursor):
            _sa_running.set((cursor, perf()))
    except Exception as exc:
        warn_once("sqlalchemy-before", "perfpilot: SQLAlchemy statement not timed: %r", exc)


def _sa_after(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    running = _sa_running.get()
    if running is None or running[0] is not cursor:
        return
    end = perf()
    try:
        _sa_running.set(None)
        recorder = active.recorder
        if recorder is None:
            return
        try:
            rows = cursor.rowcount
        except Exception:
            rows = 0
        record(recorder, statement, running[1], end, rows, False, conn.dialect.name)
    except Exception as exc:
        warn_once("sqlalchemy-after", "perfpilot: SQLAlchemy statement not recorded: %r", exc)


def _sa_error(context: Any) -> None:
    running = _sa_running.get()
    if running is None:
        return
    end = perf()
    try:
        _sa_running.set(None)
        recorder = active.recorder
        statement = getattr(context, "statement", None)
        # SQLAlchemy 2.1 leaves ExceptionContext.cursor unset: compare when it is there
        cursor = getattr(context, "cursor", running[0])
        if recorder is None or statement is None or cursor is not running[0]:
            return
        record(recorder, statement, running[1], end, 0, True, context.dialect.name)
    except Exception as exc:
        warn_once(
            "sqlalchemy-error", "perfpilot: failed SQLAlchemy statement not recorded: %r", exc
        )


MAX_POOL_NAMES = 1000
_pool_names: dict[Any, str] = {}


def _pool_name(engine: Any) -> str:
    url = engine.url
    name = _pool_names.get(url)
    if name is None:
        try:
            # URL.set() takes None as "unchanged": build a URL without them
            name = (
                type(url)
                .create(url.drivername, host=url.host, port=url.port, database=url.database)
                .render_as_string(hide_password=True)
            )
        except Exception:
            name = str(getattr(url, "drivername", "engine"))
        if len(_pool_names) >= MAX_POOL_NAMES:
            _pool_names.clear()
        _pool_names[url] = name
    return name


def _figure(pool: Any, name: str) -> int:
    figure = getattr(pool, name, None)
    if callable(figure):
        value = figure()
        if isinstance(value, int):
            return value
    return 0


def _record_pool(recorder: Any, engine: Any, wait_s: float) -> None:
    try:
        pool = engine.pool
        recorder.pool_checkout(
            _pool_name(engine),
            wait_s,
            _figure(pool, "checkedout"),
            max(0, _figure(pool, "overflow")),
            _figure(pool, "size"),
        )
    except Exception as exc:
        warn_once("sqlalchemy-pool", "perfpilot: pool checkout not recorded: %r", exc)


def _driver_hooked(dbapi_connection: Any) -> bool:
    """Whether a DB-API hook of perfpilot times statements on this connection."""
    conn = dbapi_connection
    for _ in range(3):
        if conn is None:
            return False
        if getattr(type(conn), "__perfpilot__", False):  # a timed sqlite3 connection
            return True
        factory = getattr(conn, "cursor_factory", None)  # psycopg
        if factory is not None:
            return bool(getattr(getattr(factory, "execute", None), "__perfpilot__", False))
        conn = getattr(conn, "_connection", None)  # SQLAlchemy's asyncio adapters
    return False


_SA_LISTENERS = (
    ("before_cursor_execute", _sa_before),
    ("after_cursor_execute", _sa_after),
    ("handle_error", _sa_error),
)
# Engines seen, and whether they got listeners. Listeners go only to engines
# whose driver no DB-API hook times: with them SQLAlchemy takes its slower
# event-dispatching path on every statement.
_engines: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def _watch(engine: Any, pooled: Any) -> None:
    """On an engine's first checkout, listen to it if its driver is not hooked."""
    for _ in range(8):  # an OptionEngine shares its parent's pool and listeners
        proxied = getattr(engine, "_proxied", None)
        if proxied is None:
            break
        engine = proxied
    if engine in _engines:
        return
    from sqlalchemy import event

    with _engines_lock:
        if engine in _engines:
            return
        listen = not _driver_hooked(getattr(pooled, "dbapi_connection", None))
        if listen:
            for name, fn in _SA_LISTENERS:
                event.listen(engine, name, fn)
        _engines[engine] = listen


def install() -> list[Callable[[], None]]:
    """Patch ``Engine.raw_connection``; returns the functions that undo it (and
    remove the listeners it adds to engines)."""
    from sqlalchemy.engine import Engine

    original = Engine.__dict__.get("raw_connection")
    if original is None or getattr(original, "__perfpilot__", False):
        return []

    @functools.wraps(original)
    def raw_connection(self: Any) -> Any:
        recorder = active.recorder
        if recorder is None:
            connection = original(self)
        else:
            start = perf()
            try:
                connection = original(self)
            except BaseException:
                _record_pool(recorder, self, perf() - start)
                raise
            _record_pool(recorder, self, perf() - start)
        try:
            _watch(self, connection)
        except Exception as exc:
            warn_once("sqlalchemy-watch", "perfpilot: SQLAlchemy engine not timed: %r", exc)
        return connection

    raw_connection.__perfpilot__ = True  # type: ignore[attr-defined]
    Engine.raw_connection = raw_connection  # type: ignore[method-assign]
    return [functools.partial(setattr, Engine, "raw_connection", original), _remove_listeners]


def _remove_listeners() -> None:
    from sqlalchemy import event

    with _engines_lock:
        for engine, listening in list(_engines.items()):
            if listening:
                for name, fn in _SA_LISTENERS:
                    if event.contains(engine, name, fn):
                        event.remove(engine, name, fn)
        _engines.clear()
