"""The PostgreSQL store: one database shared by many hosts (psycopg 3).

It keeps the same tables as the SQLite store (:mod:`perfpilot.store.pg_schema`),
writes the same rows (:mod:`perfpilot.store.rows`,
:mod:`perfpilot.store.app_rows`) and answers every read the same way
(:class:`~perfpilot.store.app_reads.SQLAppReads`). Each save is one
transaction. Opening a store migrates its schema under an advisory lock, so
many hosts starting at once migrate it exactly once.

psycopg is an optional dependency (``pip install 'perfpilot[postgres]'``),
imported only when a PostgreSQL store is opened. The connection URL's password
never appears in a message, a ``repr`` or a stored row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from perfpilot.app_records import AppSnapshot
from perfpilot.clock import Clock, SystemClock
from perfpilot.errors import StoreError
from perfpilot.records import LoadResult
from perfpilot.store import app_rows, rows
from perfpilot.store.app_reads import SQLAppReads
from perfpilot.store.base import RunSummary
from perfpilot.store.dsn import display_dsn, libpq_url, redact_dsn, scrub, secrets_of
from perfpilot.store.pg_schema import (
    CREATE_VERSION_TABLE,
    MIGRATION_LOCK,
    PG_MIGRATIONS,
    VERSION_TABLE,
)
from perfpilot.store.schema import SCHEMA_VERSION, statements

if TYPE_CHECKING:
    import psycopg

#: Seconds to wait for the server to accept the connection.
CONNECT_TIMEOUT_S = 10.0

MISSING_PSYCOPG = "PostgreSQL store needs psycopg: pip install 'perfpilot[postgres]'"


class PostgresStore(SQLAppReads):
    """A store in a PostgreSQL database.

    Args:
        dsn: A ``postgresql://`` (or ``postgres://``) URL, e.g.
            ``postgresql://perfpilot:secret@db.internal:5432/perf``.
        clock: Gives each saved run its ``created_at`` (defaults to the
            system clock).
        connect_timeout_s: How long to wait for the server.

    Raises:
        StoreError: psycopg is not installed, the server cannot be reached or
            refuses the login, the database holds tables perfpilot did not
            make, or its schema is newer than this perfpilot knows. The
            message never contains the password.

    Example:
        >>> store = PostgresStore("postgresql://app:pw@127.0.0.1:1/perf")  # doctest: +SKIP
        Traceback (most recent call last):
        perfpilot.errors.StoreError: cannot connect to postgresql://app@127.0.0.1:1/perf: ...
    """

    placeholder = "%s"

    def __init__(
        self,
        dsn: str,
        *,
        clock: Clock | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        dsn = libpq_url(dsn)
        #: The URL with its password masked; safe to show.
        self.location = redact_dsn(dsn)
        self._shown = display_dsn(dsn)
        self._secrets = secrets_of(dsn)
        self._clock: Clock = SystemClock() if clock is None else clock
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        try:
            import psycopg
        except ImportError:
            raise StoreError(MISSING_PSYCOPG) from None
        try:
            conn = psycopg.connect(
                dsn,
                autocommit=True,
                connect_timeout=max(1, round(connect_timeout_s)),
                application_name="perfpilot",
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self._shown}: {self._reason(exc)}") from None
        try:
            self._migrate(conn)
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"cannot open store {self._shown}: {self._reason(exc)}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- load runs --------------------------------------------------------------------

    def save_run(self, result: LoadResult, *, kind: str = "load") -> int:
        """Save one run in a single transaction; see :meth:`Store.save_run`.

        Raises:
            StoreError: The store cannot be written, or ``kind`` is empty.
        """
        if not kind:
            raise StoreError("a run needs a kind, e.g. 'load'")
        run_row = rows.run_row(result, kind=kind, created_at=self._clock.time())
        with self._transaction("save the run") as conn, conn.cursor() as cursor:
            cursor.execute(_insert("runs", rows.RUN_COLUMNS) + " RETURNING id", run_row)
            found = cursor.fetchone()
            if found is None:  # pragma: no cover - INSERT ... RETURNING always returns
                raise StoreError("cannot save the run: no id was assigned")
            run_id = int(found[0])
            cursor.executemany(
                _insert("run_names", ("run_id", *rows.NAME_COLUMNS)),
                [(run_id, *row) for row in rows.name_rows(result)],
            )
            cursor.executemany(
                _insert("run_series", ("run_id", *rows.SERIES_COLUMNS)),
                [(run_id, *row) for row in rows.series_rows(result)],
            )
            cursor.executemany(
                _insert("run_thresholds", ("run_id", *rows.THRESHOLD_COLUMNS)),
                [(run_id, *row) for row in rows.threshold_rows(result)],
            )
        return run_id

    def list_runs(self, limit: int = 50) -> list[RunSummary]:
        """Summaries of the stored runs, newest first; see :meth:`Store.list_runs`.

        Raises:
            StoreError: The store cannot be read, or ``limit`` is negative.
        """
        if limit < 0:
            raise StoreError(f"limit must be 0 or more, got {limit}")
        columns = ", ".join(rows.SUMMARY_COLUMNS)
        sql = f"SELECT {columns} FROM runs ORDER BY started_at DESC, id DESC LIMIT %s"
        return [rows.summary_from_row(row) for row in self._select("list runs", sql, (limit,))]

    def get_run(self, run_id: int) -> LoadResult:
        """Read one run back, exactly as it was saved; see :meth:`Store.get_run`.

        Raises:
            StoreError: There is no run with this id, or it cannot be read.
        """
        with self._transaction(f"read run {run_id}") as conn:
            return rows.read_run(conn, run_id, "%s")

    # -- in-app monitoring ------------------------------------------------------------

    def save_app_snapshot(self, snapshot: AppSnapshot) -> None:
        """Append one process's flush interval in a single transaction.

        Either every row of the snapshot is saved or, on any failure, none is.

        Args:
            snapshot: What one process observed during one interval.

        Raises:
            StoreError: The store cannot be written.
        """
        with self._transaction("save the app snapshot") as conn, conn.cursor() as cursor:
            for table, values in app_rows.snapshot_rows(snapshot):
                cursor.executemany(_insert(table.name, table.insert_columns), list(values))

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # -- plumbing ---------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            raise StoreError(f"store {self._shown} is closed")
        return self._conn

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One transaction: committed on success, rolled back on any error."""
        import psycopg

        conn = self._connection()
        try:
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"cannot {doing} in {self._shown}: {self._reason(exc)}") from None

    def _select(self, doing: str, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        with self._transaction(doing) as conn:
            found: list[Sequence[Any]] = list(conn.execute(sql, tuple(params)).fetchall())
        return found

    def _migrate(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """Bring the schema up to date, holding the migration lock (one host at a time)."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,))
            found = exists.fetchone()
            if not (found and found[0]):
                conn.execute(CREATE_VERSION_TABLE)
            row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self._shown} has schema version {version}, newer than this "
                    f"perfpilot supports ({SCHEMA_VERSION}); upgrade perfpilot"
                )
            if version == SCHEMA_VERSION:
                return
            for script in PG_MIGRATIONS[version:SCHEMA_VERSION]:
                for statement in statements(script):
                    conn.execute(statement)
            conn.execute(
                f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s) "
                "ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version",
                (SCHEMA_VERSION,),
            )

    def _reason(self, exc: Exception) -> str:
        """The driver's message on one line, without any secret of the URL."""
        return scrub(" ".join(str(exc).split()) or type(exc).__name__, self._secrets)


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
