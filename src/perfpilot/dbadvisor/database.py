"""Connections to the database being advised or checked: read-only, with a timeout.

Every connection of ``dbadvisor`` is opened here, by the advisor
(:func:`open_database`, :func:`open_writable` for ``--apply``) and the health
checks alike (:func:`connect_postgres`, :func:`connect_sqlite`). A DSN is a
``postgresql://...`` (or ``postgres://``, ``postgresql+driver://``) URL, libpq
keywords (``host=db dbname=shop user=app``), or a SQLite path (``shop.db``,
``sqlite:///relative.db``, ``sqlite:////absolute.db``).

* **PostgreSQL**: the advisor's session has ``default_transaction_read_only =
  on`` and ``statement_timeout``; it works inside one transaction that it
  rolls back. hypopg's hypothetical indexes live only in the session's memory
  and work in a read-only transaction. When the database lacks the hypopg
  extension but the server has it, the advisor's transaction is read-write so
  it can ``CREATE EXTENSION hypopg``, and is rolled back all the same.
* **SQLite**: the file is opened (never created) in autocommit mode,
  ``mode=ro`` for the health checks; the advisor's connection is ``mode=rw``
  with ``PRAGMA query_only``, which the what-if step lifts only inside
  transactions it rolls back (:mod:`perfpilot.dbadvisor.whatif_sqlite`). A
  progress handler (:class:`StatementClock`) enforces the statement timeout.

Connection errors never show the DSN's password, and no message shows a
``password=`` (:mod:`perfpilot.store.dsn`).
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfpilot.errors import ConfigError, ConnectError, UsageError
from perfpilot.store.dsn import (
    display_dsn,
    is_postgres_dsn,
    libpq_url,
    redact_credentials,
    scrub,
    secrets_of,
)

if TYPE_CHECKING:
    import psycopg


#: Why psycopg is needed, when it is missing.
MISSING_PSYCOPG = "PostgreSQL needs psycopg: pip install 'perfpilot[postgres]'"

#: Seconds to wait for a PostgreSQL server to accept the connection.
CONNECT_TIMEOUT_S = 10

#: SQLite virtual machine instructions between two looks at the clock.
PROGRESS_STEPS = 10_000


class StatementClock:
    """A SQLite progress handler that interrupts a statement past its deadline.

    Args:
        limit_s: How long one statement may run, from :meth:`arm`.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._deadline = 0.0

    def arm(self) -> None:
        """Start the clock of the statement (or check) about to run."""
        self._deadline = time.monotonic() + self.limit_s

    def __call__(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0


class Database:
    """An open connection to the database being advised.

    Attributes:
        kind: ``postgresql`` or ``sqlite``.
        display: The DSN without its password (or the SQLite path).
        conn: The driver connection (psycopg or sqlite3).
        statement_timeout_s: The per-statement limit.
        secrets: The DSN's passwords, scrubbed from messages.
    """

    def __init__(
        self, kind: str, display: str, conn: Any, statement_timeout_s: float, secrets: list[str]
    ) -> None:
        self.kind = kind
        self.display = display
        self.conn = conn
        self.statement_timeout_s = statement_timeout_s
        self.secrets = secrets
        self.clock = StatementClock(statement_timeout_s)

    def scrub(self, text: str) -> str:
        """``text`` (a driver message, say) with the DSN's password masked."""
        return scrub(text, self.secrets)

    def arm_timeout(self) -> None:
        """SQLite: start the clock of the statement about to run."""
        self.clock.arm()

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
    """``postgresql`` (a URL or libpq keywords) or ``sqlite`` for a DSN or path."""
    return "postgresql" if is_postgres_dsn(dsn) else "sqlite"


def sqlite_path(dsn: str) -> Path:
    """The file a SQLite DSN names (``sqlite:///rel.db``, ``sqlite:////abs.db``, a path).

    Raises:
        UsageError: A URL of another scheme.
    """
    text = dsn.strip()
    if text.lower().startswith("sqlite://"):
        rest = text[len("sqlite://") :]
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy writes them
        return Path(rest[1:] if rest.startswith("/") else rest)
    if "://" in text:
        raise UsageError(
            f"unsupported database URL {display_dsn(text)!r}: "
            "use postgresql://..., sqlite:///path or a SQLite file path"
        )
    return Path(text).expanduser()


def display_name(dsn: str) -> str:
    """The database as output may show it: the URL without its password, or the path."""
    if database_kind(dsn) == "postgresql":
        return display_dsn(dsn)
    return redact_credentials(str(sqlite_path(dsn)))


def connect_postgres(
    dsn: str, *, application_name: str, autocommit: bool = False
) -> psycopg.Connection[Any]:
    """A psycopg connection to ``dsn``.

    Raises:
        UsageError: psycopg is missing.
        ConnectError: The server cannot be reached; the message shows the URL
            without its password.
    """
    try:
        import psycopg
    except ImportError:
        raise UsageError(MISSING_PSYCOPG) from None
    url = libpq_url(dsn)
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.Error as exc:
        reason = scrub(" ".join(str(exc).split()) or type(exc).__name__, secrets_of(url))
        raise ConnectError(f"cannot connect to {display_dsn(url)}: {reason}") from None


def connect_sqlite(dsn: str, *, read_only: bool = True) -> sqlite3.Connection:
    """An autocommit connection to an existing SQLite file (never created).

    Args:
        dsn: A path or ``sqlite:///`` URL.
        read_only: ``mode=ro`` when true, else ``mode=rw``.

    Raises:
        ConfigError: The file does not exist or is not a SQLite database.
        UsageError: A URL of another scheme.
    """
    path = sqlite_path(dsn)
    shown = redact_credentials(str(path))
    if not path.is_file():
        raise ConfigError("no such SQLite database file", path=shown)
    mode = "ro" if read_only else "rw"
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the database: {exc}", path=shown) from None
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(f"not a SQLite database: {exc}", path=shown) from None
    return conn


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
    conn = connect_sqlite(dsn, read_only=False)
    db = Database("sqlite", display_name(dsn), conn, statement_timeout_s, [])
    conn.execute("PRAGMA query_only = ON")
    conn.set_progress_handler(db.clock, PROGRESS_STEPS)
    db.arm_timeout()
    return db


def open_writable(dsn: str) -> Database:
    """A connection that may change the database, for ``--apply``.

    PostgreSQL: autocommit (``CREATE INDEX CONCURRENTLY`` cannot run in a
    transaction), no statement timeout. SQLite: autocommit.
    """
    if database_kind(dsn) == "postgresql":
        db = _open_postgres(dsn, 0.0, read_only=False)
        db.conn.autocommit = True
        return db
    return Database("sqlite", display_name(dsn), connect_sqlite(dsn, read_only=False), 0.0, [])


def _open_postgres(dsn: str, timeout_s: float, *, read_only: bool = True) -> Database:
    conn = connect_postgres(dsn, application_name="perfpilot db")
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    conn.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
    conn.commit()
    return Database("postgresql", display_dsn(dsn), conn, timeout_s, secrets_of(dsn))
