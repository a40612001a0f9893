"""Where runs and in-app monitoring data are kept: one interface, backends by location.

Example:
    >>> from perfpilot.store import open_store
    >>> with open_store("sqlite://") as store:  # in memory; a path makes a file
    ...     store.list_runs(limit=10)
    []
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from perfpilot.errors import StoreError
from perfpilot.store.base import RunSummary, Store
from perfpilot.store.dsn import is_postgres_dsn, redact_credentials

__all__ = ["RunSummary", "Store", "open_store"]

_SQLITE_PREFIX = "sqlite://"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def open_store(location: str, *, create: bool = True) -> Store:
    """Open the store at ``location``, bringing its schema up to date.

    Args:
        location: A file path (``.perfpilot/perfpilot.db``, ``~`` expanded),
            a SQLite URL (``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
            or ``sqlite://`` for a throw-away in-memory store), ``:memory:``,
            or a PostgreSQL URL (``postgresql://user:password@host:5432/db``;
            also ``postgres://`` and ``postgresql+psycopg://``) or libpq
            keywords (``host=db dbname=perf user=app``), which need
            ``pip install 'perfpilot[postgres]'``.
        create: Whether to create a missing SQLite file (and its directories);
            when ``False`` a missing store raises :class:`StoreError`. A
            PostgreSQL database must exist; its tables are always created.

    Returns:
        An open store; use it as a context manager or call ``close()``.

    Raises:
        StoreError: The location is empty, names an unsupported backend, or
            is not a usable store (for PostgreSQL: cannot be reached, or
            psycopg is missing). Messages never contain a password.
    """
    from perfpilot.store.sqlite import MEMORY, SQLiteStore

    text = location.strip()
    if not text:
        raise StoreError("the store location is empty")
    scheme, sep, _rest = text.partition("://")
    is_url = bool(sep) and _SCHEME.fullmatch(scheme) is not None
    if is_postgres_dsn(text):
        from perfpilot.store.postgres import PostgresStore

        return PostgresStore(text)
    if text.startswith(_SQLITE_PREFIX):
        path = text[len(_SQLITE_PREFIX) :]
        if path in ("", "/"):
            return SQLiteStore(MEMORY)
        if not path.startswith("/"):
            raise StoreError(
                f"malformed SQLite URL {redact_credentials(text)!r}: "
                "expected sqlite:///relative/path "
                "or sqlite:////absolute/path"
            )
        # sqlite:///x is relative, sqlite:////x absolute (as in SQLAlchemy).
        path = path[1:]
        if path == MEMORY:
            return SQLiteStore(MEMORY)
        return SQLiteStore(_expand(path), create=create)
    if is_url:
        raise StoreError(f"unknown store URL scheme {scheme!r} (expected a path or sqlite:///)")
    if text == MEMORY:
        return SQLiteStore(MEMORY)
    return SQLiteStore(_expand(text), create=create)


def _expand(path: str) -> Path:
    return Path(os.path.expanduser(path))
