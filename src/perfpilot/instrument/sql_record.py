"""What every SQL hook shares: reporting a statement, and turning recording off.

A hook reports a statement with :func:`record`, which hands it to
:meth:`Recorder.query` (a context-variable read and a tuple append) and
:meth:`Recorder.call_site` (a dict lookup once a statement's text has been
seen), and never raises: perfpilot's own errors are logged once and never
reach the app. Fingerprinting is the flusher's job.

:func:`suppressed` turns the hooks off in the current context (perfpilot's own
store traffic); a hook checks :func:`is_suppressed` before timing anything,
once ``suppression.blocks`` says that such a block is open somewhere in the
process (mostly none is: an attribute read costs less than a context-variable
read on every statement).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from typing import Any

from perfpilot.instrument.context import warn_once

__all__ = ["POSTGRESQL", "SQLITE", "is_suppressed", "record", "suppressed", "suppression"]

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# Set while recording is suppressed in this context (perfpilot's own store).
_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "perfpilot_sql_suppressed", default=False
)
is_suppressed = _suppressed.get
"""Whether recording is suppressed in the current context (the hooks' hot path)."""


class _Suppression:
    """How many :func:`suppressed` blocks are open, in all threads and tasks."""

    blocks = 0

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.blocks += n

    def after_fork(self) -> None:
        """In a forked child: only the forking thread's blocks are still open."""
        self._lock = threading.Lock()
        self.blocks = 1 if _suppressed.get() else 0


suppression = _Suppression()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=suppression.after_fork)


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Record no SQL in this block (in this thread or task)."""
    suppression.add(1)
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)
        suppression.add(-1)


def record(
    recorder: Any, sql: Any, start: float, end: float, rows: Any, failed: bool, db: str
) -> None:
    """Report one statement that ran from ``start`` to ``end`` (``perf_counter()``).

    ``sql`` that is not text is reported as ``<type name>``; ``rows`` that is
    not a positive int as 0. Never raises.
    """
    try:
        if not isinstance(sql, str):
            sql = f"<{type(sql).__name__}>"
        recorder.query(sql, start, end - start, rows if type(rows) is int and rows > 0 else 0,
                       failed, db)  # fmt: skip
        if sql not in recorder.call_sites:  # a method call only the first time
            recorder.call_site(sql)
    except Exception as exc:
        warn_once("sql-record", "perfpilot: an SQL statement was not recorded: %r", exc)
