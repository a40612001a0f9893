"""sqlglot that writes nothing to the log: one quiet parse for every caller.

sqlglot warns through the ``sqlglot`` logger when it meets syntax it does not
know ("... contains unsupported syntax. Falling back to parsing as a
'Command'"), and with no handler configured Python prints such warnings on
standard error. perfpilot parses statements it did not write (the app's, the
database's) and says itself what it could not read, so those warnings are
noise: :func:`quiet_parse` and :func:`quiet_sqlglot` drop them, in the calling
thread only, while perfpilot is parsing. Others' use of sqlglot keeps its log.

The fingerprinting in the app (:mod:`perfpilot.instrument.fingerprint`) and the
database advisor (:mod:`perfpilot.dbadvisor.hints`,
:mod:`perfpilot.dbadvisor.shape`) use it. sqlglot is imported on first use;
the filter is installed on the ``sqlglot`` logger then (importing this module
has no side effects).

Example:
    >>> [type(tree).__name__ for tree in quiet_parse("ALTER USER postgres PASSWORD ?", "postgres")]
    ['Command']
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["load_sqlglot", "quiet_parse", "quiet_sqlglot"]


class _Quiet(logging.Filter):
    """Drops sqlglot's log records in a thread inside :func:`quiet_sqlglot`."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "depth", 0)


class _State:
    """sqlglot, imported on first use (``False`` when it is not installed), and the filter."""

    module: Any = None
    quiet: _Quiet | None = None


_state = _State()
_lock = threading.Lock()


def _quiet() -> _Quiet:
    with _lock:
        if _state.quiet is None:
            _state.quiet = _Quiet()
            logging.getLogger("sqlglot").addFilter(_state.quiet)
        return _state.quiet


def load_sqlglot() -> Any:
    """The ``sqlglot`` module, or ``None`` when it is not installed.

    The quiet filter is on its logger from then on (active only inside
    :func:`quiet_sqlglot`).
    """
    if _state.module is None:
        try:
            import sqlglot
        except Exception:  # not installed (the app's fingerprints fall back to the scanner)
            _state.module = False
        else:
            _quiet()
            _state.module = sqlglot
    return _state.module or None


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """Inside: sqlglot's log records of this thread are dropped (nesting allowed)."""
    local = _quiet().local
    local.depth = getattr(local, "depth", 0) + 1
    try:
        yield
    finally:
        local.depth -= 1


def quiet_parse(sql: str, dialect: str | None) -> list[Any]:
    """``sqlglot.parse(sql, read=dialect)``, writing nothing to the log.

    Args:
        sql: One or more statements.
        dialect: A sqlglot dialect name (``postgres``, ``sqlite``), or ``None``.

    Returns:
        One tree per statement (``None`` for an empty one), as sqlglot gives them.

    Raises:
        ImportError: sqlglot is not installed.
        sqlglot.errors.SqlglotError: The text does not parse.
    """
    sqlglot = load_sqlglot()
    if sqlglot is None:
        raise ImportError("sqlglot is not installed")
    with quiet_sqlglot():
        return list(sqlglot.parse(sql, read=dialect))
