"""SQL hooks: time every statement run through sqlite3, psycopg 3 or SQLAlchemy.

:func:`install` patches what is installed; importing this module patches
nothing. Each statement costs, on the request path, two ``perf_counter()``
calls and :meth:`Recorder.query` (a context-variable read and a tuple append)
plus :meth:`Recorder.call_site` (a dict lookup once a statement's text has been
seen). When no recorder is active (``active.recorder is None``) a hook only
reads that attribute and calls the original. Fingerprinting is the flusher's
job. Failed statements are recorded with ``failed=True`` and the app's
exception is re-raised unchanged; perfpilot's own errors are logged once and
never reach the app.

What is hooked, and how:

* **sqlite3**: ``sqlite3.connect`` (also as ``sqlite3.dbapi2.connect``) makes
  connections of a ``sqlite3.Connection`` subclass whose ``cursor()`` returns a
  timed ``sqlite3.Cursor`` subclass, and whose ``execute``, ``executemany`` and
  ``executescript`` use such a cursor too (sqlite3's own make their cursor in
  C, without calling ``cursor()``). A caller's own ``factory`` (connection or
  cursor class) is subclassed the same way; a factory that is not a class
  derived from sqlite3's is left untimed, with one warning. Rows: the DB-API
  ``rowcount``, which sqlite3 knows for ``INSERT``/``UPDATE``/``DELETE`` only;
  rows a ``SELECT`` returns are not counted (sqlite3 learns them while the app
  fetches, after the statement is recorded). ``from sqlite3 import connect``
  done before :func:`install` keeps the unpatched function. Connections opened
  by perfpilot's own store and by aiosqlite (whose thread has no request
  context) are not timed.
* **psycopg 3**: ``Cursor.execute/executemany`` and
  ``AsyncCursor.execute/executemany`` (which ``Connection.execute`` and the
  client-side and raw cursor classes use), and the server-side cursors'
  ``execute`` (which only declares the cursor: rows are fetched, unrecorded,
  later). Rows: ``rowcount`` (rows returned by a ``SELECT``, affected by DML).
  A ``psycopg.sql`` query object is turned into text with ``as_string()`` only
  when a recorder is active. Not timed: ``copy()``, ``stream()``; in pipeline
  mode the time is that of queueing the statement, not of running it.
* **SQLAlchemy**: statements on a driver hooked above (sqlite3, psycopg) are
  recorded by that hook: SQLAlchemy stays on its fast path (no event
  listeners), and the call site is found even under an asyncio engine, whose
  listeners run in a greenlet that does not see the app's frames. An engine
  on any other driver gets ``before_cursor_execute``, ``after_cursor_execute``
  and ``handle_error`` listeners at its first checkout (``db`` is the
  dialect's name). Either way each statement is recorded exactly once. Pools:
  each ``Engine.raw_connection()`` (how every ``Connection``, hence every
  ``Session`` transaction, gets its DB-API connection) is timed and reported
  with :meth:`Recorder.pool_checkout`: ``wait_s`` is the whole time to obtain
  the connection (waiting for a free one when the pool is exhausted, opening a
  new one, ``pool_pre_ping``), and a checkout that times out is reported with
  its wait before the error propagates. ``checked_out``, ``overflow`` and
  ``size`` come from ``QueuePool`` (zero for pools without those figures). The
  pool is named by the engine URL without user, password and query.

:func:`suppressed` turns the hooks off in the current context (perfpilot's own
store traffic). :func:`uninstall` restores the originals (tests).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from perfpilot.instrument.context import active, perf, warn_once

__all__ = ["install", "suppressed", "uninstall"]

# Set while recording is suppressed in this context (perfpilot's own store).
_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "perfpilot_sql_suppressed", default=False
)
_suppressed_get = _suppressed.get
# ``(cursor, start)`` while SQLAlchemy runs a statement on a cursor no DB-API
# hook times. A context variable, not a thread-local: asyncio tasks share a
# thread, and SQLAlchemy's async engines run listeners in a greenlet that
# shares the task's context.
_sa_running: contextvars.ContextVar[tuple[Any, float] | None] = contextvars.ContextVar(
    "perfpilot_sa_running", default=None
)

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Record no SQL in this block (in this thread or task)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def _record(
    recorder: Any, sql: Any, start: float, end: float, rows: Any, failed: bool, db: str
) -> None:
    """Report one statement; never raises."""
    try:
        if not isinstance(sql, str):
            sql = f"<{type(sql).__name__}>"
        recorder.query(sql, start, end - start, rows if type(rows) is int and rows > 0 else 0,
                       failed, db)  # fmt: skip
        recorder.call_site(sql)
    except Exception as exc:
        warn_once("sql-record", "perfpilot: an SQL statement was not recorded: %r", exc)


# -- sqlite3 ---------------------------------------------------------------------
def _timed_cursor_class(base: type) -> type:
    """``base`` (``sqlite3.Cursor`` or a subclass) with its three execute methods
    timed; ``execute`` by hand, without ``*args``: it is the hot path."""
    b_execute = base.execute  # type: ignore[attr-defined]

    def execute(self: Any, sql: Any, parameters: Any = (), /) -> Any:
        recorder = active.recorder
        if recorder is None or _suppressed_get():
            return b_execute(self, sql, parameters)
        start = perf()
        try:
            result = b_execute(self, sql, parameters)
        except BaseException:
            _record(recorder, sql, start, perf(), 0, True, SQLITE)
            raise
        end = perf()
        try:  # _record(), inlined
            rows = self.rowcount
            recorder.query(sql, start, end - start, rows if rows > 0 else 0, False, SQLITE)
            recorder.call_site(sql)
        except Exception as exc:
            warn_once("sql-record", "perfpilot: an SQL statement was not recorded: %r", exc)
        return result

    def timed(method: Callable[..., Any], rows_known: bool) -> Callable[..., Any]:
        def run(self: Any, sql: Any, *args: Any) -> Any:
            recorder = active.recorder
            if recorder is None or _suppressed_get():
                return method(self, sql, *args)
            start = perf()
            try:
                result = method(self, sql, *args)
            except BaseException:
                _record(recorder, sql, start, perf(), 0, True, SQLITE)
                raise
            _record(recorder, sql, start, perf(), self.rowcount if rows_known else 0, False,
                    SQLITE)  # fmt: skip
            return result

        return functools.wraps(method)(run)

    namespace = {
        "__slots__": (),
        "__module__": __name__,
        "__doc__": base.__doc__,
        "__perfpilot__": True,
        "execute": functools.wraps(b_execute)(execute),
        "executemany": timed(base.executemany, True),  # type: ignore[attr-defined]
        "executescript": timed(base.executescript, False),  # type: ignore[attr-defined]
    }
    return type(base.__name__, (base,), namespace)


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

    def cursor(self: Any, factory: Any = None) -> Any:
        if factory is None:
            if own_cursor:
                return _retimed(b_cursor(self))
            return b_cursor(self, cursor_class)
        return b_cursor(self, _timed_cursor_for(factory))

    def execute(self: Any, sql: Any, parameters: Any = (), /) -> Any:
        cur = _retimed(b_cursor(self)) if own_cursor else b_cursor(self, cursor_class)
        return cur.execute(sql, parameters)

    def executemany(self: Any, sql: Any, seq_of_parameters: Any, /) -> Any:
        cur = _retimed(b_cursor(self)) if own_cursor else b_cursor(self, cursor_class)
        return cur.executemany(sql, seq_of_parameters)

    def executescript(self: Any, sql_script: Any, /) -> Any:
        cur = _retimed(b_cursor(self)) if own_cursor else b_cursor(self, cursor_class)
        return cur.executescript(sql_script)

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


_cursor_classes: dict[type, type] = {}
_connection_classes: dict[type, type] = {}


def _timed_cursor_for(factory: Any) -> Any:
    """The timed version of a cursor factory (itself when it cannot be timed)."""
    import sqlite3

    if getattr(factory, "__perfpilot__", False):
        return factory
    timed = _cursor_classes.get(factory) if isinstance(factory, type) else None
    if timed is not None:
        return timed
    if isinstance(factory, type) and issubclass(factory, sqlite3.Cursor):
        try:
            timed = _cursor_classes[factory] = _timed_cursor_class(factory)
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
        timed = _timed_cursor_for(cls)
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


def _install_sqlite3() -> list[tuple[Any, str, Any]]:
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
    patches = []
    for module in (sqlite3, sqlite3.dbapi2):
        if getattr(module, "connect", None) is original:
            patches.append((module, "connect", original))
            setattr(module, "connect", connect)  # noqa: B010 (mypy: dbapi2 stubs)
    return patches


# -- psycopg 3 -------------------------------------------------------------------
def _query_text(cursor: Any, query: Any) -> Any:
    if type(query) is str:
        return query
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if as_string is not None:
        try:
            return as_string(cursor.connection)
        except Exception:
            return as_string()
    return str(query)


def _record_pg(
    recorder: Any, cursor: Any, query: Any, start: float, end: float, failed: bool
) -> None:
    try:
        sql = _query_text(cursor, query)
        rows = 0 if failed else cursor.rowcount
    except Exception as exc:
        warn_once("psycopg-text", "perfpilot: psycopg query text unavailable: %r", exc)
        sql, rows = "<query>", 0
    _record(recorder, sql, start, end, rows, failed, POSTGRESQL)


def _psycopg_sync(method: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = active.recorder
        if recorder is None or _suppressed_get():
            return method(self, query, *args, **kwargs)
        start = perf()
        try:
            result = method(self, query, *args, **kwargs)
        except BaseException:
            _record_pg(recorder, self, query, start, perf(), True)
            raise
        _record_pg(recorder, self, query, start, perf(), False)
        return result

    wrapper = functools.wraps(method)(run)
    wrapper.__perfpilot__ = True  # type: ignore[attr-defined]
    return wrapper


def _psycopg_async(method: Callable[..., Any]) -> Callable[..., Any]:
    async def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = active.recorder
        if recorder is None or _suppressed_get():
            return await method(self, query, *args, **kwargs)
        start = perf()
        try:
            result = await method(self, query, *args, **kwargs)
        except BaseException:
            _record_pg(recorder, self, query, start, perf(), True)
            raise
        _record_pg(recorder, self, query, start, perf(), False)
        return result

    wrapper = functools.wraps(method)(run)
    wrapper.__perfpilot__ = True  # type: ignore[attr-defined]
    return wrapper


def _install_psycopg() -> list[tuple[Any, str, Any]]:
    import psycopg

    patches: list[tuple[Any, str, Any]] = []
    for cls, wrap, names in (
        (psycopg.Cursor, _psycopg_sync, ("execute", "executemany")),
        (psycopg.AsyncCursor, _psycopg_async, ("execute", "executemany")),
        (psycopg.ServerCursor, _psycopg_sync, ("execute",)),
        (psycopg.AsyncServerCursor, _psycopg_async, ("execute",)),
    ):
        for name in names:
            original = cls.__dict__.get(name)
            if original is None or getattr(original, "__perfpilot__", False):
                continue
            patches.append((cls, name, original))
            setattr(cls, name, wrap(original))
    return patches


# -- SQLAlchemy ------------------------------------------------------------------
_ADAPTER = object()
_verdicts: dict[type, Any] = {}


def _verdict(cls: type) -> Any:
    if getattr(cls, "__perfpilot__", False):  # the sqlite3 cursor classes
        return True
    if getattr(getattr(cls, "execute", None), "__perfpilot__", False):  # psycopg's
        return True
    if hasattr(cls, "_cursor"):  # SQLAlchemy's asyncio adapters: ask the driver's cursor
        return _ADAPTER
    return False


def _timed_below(cursor: Any) -> bool:
    """Whether a DB-API hook of this module times statements on ``cursor``
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
    if active.recorder is None or _suppressed_get():
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
        _record(recorder, statement, running[1], end, rows, False, conn.dialect.name)
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
        _record(recorder, statement, running[1], end, 0, True, context.dialect.name)
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
    """Whether statements on this DB-API connection are timed by a hook above."""
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
# whose driver no hook above times: with them SQLAlchemy takes its slower
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


def _install_sqlalchemy() -> list[tuple[Any, str, Any]]:
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
    return [(Engine, "raw_connection", original), (_SA_EVENTS, "", None)]


_SA_EVENTS = object()  # marks the SQLAlchemy listeners in the patch list


def _remove_sqlalchemy_listeners() -> None:
    from sqlalchemy import event

    with _engines_lock:
        for engine, listening in list(_engines.items()):
            if listening:
                for name, fn in _SA_LISTENERS:
                    if event.contains(engine, name, fn):
                        event.remove(engine, name, fn)
        _engines.clear()


# -- install / uninstall -----------------------------------------------------------
_INSTALLERS: tuple[tuple[str, Callable[[], list[tuple[Any, str, Any]]]], ...] = (
    ("sqlite3", _install_sqlite3),
    ("psycopg", _install_psycopg),
    ("sqlalchemy", _install_sqlalchemy),
)
_lock = threading.Lock()
_patches: dict[str, list[tuple[Any, str, Any]]] = {}


def install() -> list[str]:
    """Hook sqlite3, psycopg 3 and SQLAlchemy, those that are installed.

    Idempotent. Returns the names of the libraries hooked (by this call or an
    earlier one). A library that cannot be hooked is skipped with one warning.
    """
    with _lock:
        _verdicts.clear()
        for name, installer in _INSTALLERS:
            if name in _patches:
                continue
            try:
                if importlib.util.find_spec(name) is None:
                    continue
                _patches[name] = installer()
            except Exception as exc:
                warn_once(f"sql-install-{name}", "perfpilot: %s not hooked: %r", name, exc)
        return [name for name, _ in _INSTALLERS if name in _patches]


def uninstall() -> None:
    """Restore every patched function (tests). Connections already made by a
    timed sqlite3 factory stay timed."""
    with _lock:
        _verdicts.clear()
        for name in reversed(list(_patches)):
            for owner, attr, original in reversed(_patches.pop(name)):
                try:
                    if owner is _SA_EVENTS:
                        _remove_sqlalchemy_listeners()
                    else:
                        setattr(owner, attr, original)
                except Exception as exc:
                    warn_once(f"sql-uninstall-{name}", "perfpilot: %s not unhooked: %r", name, exc)
