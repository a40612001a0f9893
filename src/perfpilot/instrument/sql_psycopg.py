"""psycopg 3 hooks: the cursors' ``execute`` and ``executemany``, sync and async.

Hooked: ``Cursor.execute/executemany`` and ``AsyncCursor.execute/executemany``
(which ``Connection.execute`` and the client-side and raw cursor classes use),
and the server-side cursors' ``execute`` (which only declares the cursor: rows
are fetched, unrecorded, later). A client-side cursor has all its rows once
``execute`` returns, so the statement's time is all there. Rows: ``rowcount``
(rows returned by a ``SELECT``, affected by DML). A ``psycopg.sql`` query
object is turned into text with ``as_string()`` only when a recorder is active.
Not timed: ``copy()``, ``stream()``; in pipeline mode the time is that of
queueing the statement, not of running it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from perfpilot.instrument.context import active, perf, warn_once
from perfpilot.instrument.sql_record import POSTGRESQL, is_suppressed, record, suppression

__all__ = ["install"]


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
    record(recorder, sql, start, end, rows, failed, POSTGRESQL)


def _psycopg_sync(method: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = active.recorder
        if recorder is None or (suppression.blocks and is_suppressed()):
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
        if recorder is None or (suppression.blocks and is_suppressed()):
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


def install() -> list[Callable[[], None]]:
    """Patch psycopg's cursor classes; returns the functions that undo it."""
    import psycopg

    undo: list[Callable[[], None]] = []
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
            undo.append(functools.partial(setattr, cls, name, original))
            setattr(cls, name, wrap(original))
    return undo
