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

What is hooked, and how (one module each):

* **sqlite3** (:mod:`~perfpilot.instrument.sql_sqlite`): ``sqlite3.connect``
  makes connections whose cursors are timed, including the time a
  row-returning statement spends in the app's fetches (sqlite3 finds the rows
  while the app fetches them); rows are those fetched, or ``rowcount`` for DML.
* **psycopg 3** (:mod:`~perfpilot.instrument.sql_psycopg`): the cursors'
  ``execute`` and ``executemany``, sync and async; rows are ``rowcount``.
* **SQLAlchemy** (:mod:`~perfpilot.instrument.sql_sqlalchemy`): statements on
  a driver hooked above are left to that hook (each is recorded exactly once);
  engines on other drivers get event listeners. Pool checkouts are timed and
  reported with the pool's figures.

:func:`suppressed` turns the hooks off in the current context (perfpilot's own
store traffic). :func:`uninstall` restores the originals (tests).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Collection

from perfpilot.instrument import sql_psycopg, sql_sqlalchemy, sql_sqlite
from perfpilot.instrument.context import warn_once
from perfpilot.instrument.sql_record import suppressed

__all__ = ["install", "suppressed", "uninstall"]

_INSTALLERS: tuple[tuple[str, Callable[[], list[Callable[[], None]]]], ...] = (
    ("sqlite3", sql_sqlite.install),
    ("psycopg", sql_psycopg.install),
    ("sqlalchemy", sql_sqlalchemy.install),
)
# re-entrant: an installer imports its library, and under ``perfpilot run`` that
# import runs a hook which calls install() again on the same thread
_lock = threading.RLock()
# library name → the functions that undo its hooks
_patches: dict[str, list[Callable[[], None]]] = {}


def install(only: Collection[str] | None = None) -> list[str]:
    """Hook sqlite3, psycopg 3 and SQLAlchemy, those that are installed.

    Args:
        only: Hook only these libraries (``"sqlite3"``, ``"psycopg"``,
            ``"sqlalchemy"``); ``None`` hooks all three. ``perfpilot run``
            hooks each one as it is imported.

    Idempotent. Returns the names of the libraries hooked (by this call or an
    earlier one). A library that cannot be hooked is skipped with one warning.
    """
    with _lock:
        sql_sqlalchemy.forget_cursor_classes()
        for name, installer in _INSTALLERS:
            if name in _patches or (only is not None and name not in only):
                continue
            try:
                if importlib.util.find_spec(name) is None:
                    continue
                undo = installer()
                # a nested install() (see _lock) may have hooked it meanwhile
                _patches.setdefault(name, []).extend(undo)
            except Exception as exc:
                warn_once(f"sql-install-{name}", "perfpilot: %s not hooked: %r", name, exc)
        return [name for name, _ in _INSTALLERS if name in _patches]


def uninstall() -> None:
    """Restore every patched function (tests). Connections already made by a
    timed sqlite3 factory stay timed."""
    with _lock:
        sql_sqlalchemy.forget_cursor_classes()
        for name in reversed(list(_patches)):
            for undo in reversed(_patches.pop(name)):
                try:
                    undo()
                except Exception as exc:
                    warn_once(f"sql-uninstall-{name}", "perfpilot: %s not unhooked: %r", name, exc)
