"""Connections the advisor works through: read-only, with a statement timeout.

``open_database(dsn)`` accepts ``postgresql://...`` (or ``postgres://``) URLs
and SQLite paths (``shop.db``, ``sqlite:///relative.db``,
``sqlite:////absolute.db``).

* **PostgreSQL**: one session with ``default_transaction_read_only = on`` and
  ``statement_timeout``; the advisor works inside one transaction that it
  rolls back. hypopg's hypothetical indexes live only in the session's memory
  and work in a read-only transaction. When the database lacks the hypopg
  extension but the server has it, the advisor's transaction is read-write so
  it can ``CREATE EXTENSION hypopg``, and is rolled back all the same.
* **SQLite**: the file is opened (never created) with ``PRAGMA query_only``;
  the what-if step lifts it only inside transactions it rolls back
  (:mod:`perfpilot.dbadvisor.whatif_sqlite`). A progress handler enforces
  the statement timeout.

Connection errors never show the DSN's password (:mod:`perfpilot.store.dsn`).
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

from perfpilot.errors import ConfigError, UsageError
from perfpilot.store.dsn import display_dsn, scrub, secrets_of

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class Database:
    """An open connection to the database being advised.

    Attributes:
        kind: ``postgresql`` or ``sqlite``.
        display: The DSN without its password (or the SQLite path).
        conn: The driver connection (psycopg or sqlite3).
        statement_timeout_s: The per-statement limit.
    """

    def __init__(
        self, kind: str, display: str, conn: Any, statement_timeout_s: float, secrets: list[str]
    ) -> None:
        self.kind = kind
        self.display = display
        self.conn = conn
        self.statement_timeout_s = statement_timeout_s
        self.secrets = secrets
        self._deadline = 0.0

    def scrub(self, text: str) -> str:
        """``text`` (a driver message, say) with the DSN's password masked."""
        return scrub(text, self.secrets)

    def arm_timeout(self) -> None:
        """SQLite: start the clock of the statement about to run."""
        self._deadline = time.monotonic() + self.statement_timeout_s

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def close(self) -> None:
        """Roll back whatever is open and close the connection."""
        try:
            self.conn.rollback()
        finally:
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def database_kind(dsn: str) -> str:
    """``postgresql`` or ``sqlite`` for a DSN or path."""
    scheme, sep, _ = dsn.partition("://")
    if sep and scheme.lower() in POSTGRES_SCHEMES:
        return "postgresql"
    return "sqlite"


def sqlite_path(dsn: str) -> Path:
    """The file a SQLite DSN names (``sqlite:///rel.db``, ``sqlite:////abs.db``, a path)."""
    if dsn.startswith("sqlite:///"):
        return Path(dsn[len("sqlite:///") :])
    if "://" in dsn:
        raise UsageError(
            f"unsupported database URL {display_dsn(dsn)!r}: "
            "use postgresql://..., sqlite:///path or a SQLite file path"
        )
    return Path(dsn).expanduser()


def open_database(dsn: str, *, statement_timeout_s: float = 30.0) -> Database:
    """Connect read-only to the database ``dsn`` names.

    Args:
        dsn: A PostgreSQL URL or a SQLite path.
        statement_timeout_s: The limit on each statement the advisor runs.

    Returns:
        An open :class:`Database` (a context manager).

    Raises:
        ConfigError: The SQLite file does not exist or is not a database.
        UsageError: The server cannot be reached, or psycopg is missing.
    """
    if database_kind(dsn) == "postgresql":
        return _open_postgres(dsn, statement_timeout_s)
    return _open_sqlite(dsn, statement_timeout_s)


def open_writable(dsn: str) -> Database:
    """A connection that may change the database, for ``--apply``.

    PostgreSQL: autocommit (``CREATE INDEX CONCURRENTLY`` cannot run in a
    transaction), no statement timeout. SQLite: autocommit.
    """
    if database_kind(dsn) == "postgresql":
        db = _open_postgres(dsn, 0.0, read_only=False)
        db.conn.autocommit = True
        return db
    path = sqlite_path(dsn)
    _check_sqlite_file(path)
    conn = sqlite3.connect(str(path), isolation_level=None)
    return Database("sqlite", str(path), conn, 0.0, [])


def _open_postgres(dsn: str, timeout_s: float, *, read_only: bool = True) -> Database:
    try:
        import psycopg
    except ImportError:
        raise UsageError("PostgreSQL needs psycopg: pip install 'perfpilot[postgres]'") from None
    secrets = secrets_of(dsn)
    url = dsn.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        conn = psycopg.connect(url, connect_timeout=10, application_name="perfpilot db")
    except psycopg.Error as exc:
        message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "", secrets)
        raise UsageError(f"cannot connect to {display_dsn(dsn)}: {message}") from None
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    conn.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
    conn.commit()
    return Database("postgresql", display_dsn(dsn), conn, timeout_s, secrets)


def _check_sqlite_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError("no such SQLite database file", path=str(path))


def _open_sqlite(dsn: str, timeout_s: float) -> Database:
    path = sqlite_path(dsn)
    _check_sqlite_file(path)
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    db = Database("sqlite", str(path), conn, timeout_s, [])
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(f"not a SQLite database: {exc}", path=str(path)) from None
    conn.execute("PRAGMA query_only = ON")
    conn.set_progress_handler(db._progress, 10_000)
    db.arm_timeout()
    return db
