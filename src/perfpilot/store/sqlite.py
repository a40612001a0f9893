"""The SQLite store: one file, WAL mode, safe to share between processes.

The connection runs in autocommit mode and every write is an explicit
``BEGIN IMMEDIATE`` transaction, so a run or an app snapshot is saved whole or
not at all, and writers from several processes (gunicorn or uvicorn workers
flushing at once) queue on the busy timeout instead of failing on a lock
upgrade; a write that still finds the database busy is retried a few times.
Opening a store brings its schema up to date (:mod:`perfpilot.store.schema`)
and refuses one written by a newer perfpilot.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from perfpilot.app_records import AppSnapshot
from perfpilot.clock import Clock, SystemClock
from perfpilot.errors import StoreError
from perfpilot.records import LoadResult
from perfpilot.store import app_rows, rows
from perfpilot.store.app_reads import SQLAppReads
from perfpilot.store.base import RunSummary
from perfpilot.store.dsn import redact_credentials
from perfpilot.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, statements

#: How long a writer waits for another process's transaction, in seconds.
BUSY_TIMEOUT_S = 30.0

#: How often a write that found the database busy past the timeout is retried.
BUSY_RETRIES = 4

#: The first pause before such a retry, in seconds; it doubles each time.
BUSY_BACKOFF_S = 0.05

MEMORY = ":memory:"

# Primary result codes (the low byte of extended codes such as SQLITE_BUSY_SNAPSHOT).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

T = TypeVar("T")


class _Busy(StoreError):
    """The database stayed locked by another connection; the write may be retried."""


class SQLiteStore(SQLAppReads):
    """A store in one SQLite file.

    Args:
        path: The database file, or ``":memory:"`` for a throw-away store.
            Missing parent directories are created.
        create: Whether to create the file when it does not exist; when
            ``False`` a missing file raises :class:`StoreError`.
        clock: Gives each saved run its ``created_at`` (defaults to the
            system clock).
        busy_timeout_s: How long to wait for a lock held by another process.
        sleep: Pauses between retries of a write that found the database busy.

    Raises:
        StoreError: The file cannot be created or opened, is not a perfpilot
            store, or has a schema newer than this perfpilot knows.

    Example:
        >>> with SQLiteStore(":memory:") as store:
        ...     store.list_runs()
        []
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        clock: Clock | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = str(path)
        # The path as messages show it: a password= in it is masked.
        self._shown = redact_credentials(self.path)
        self._clock: Clock = SystemClock() if clock is None else clock
        self._sleep = sleep
        self._conn: sqlite3.Connection | None = None
        if self.path != MEMORY:
            _prepare_path(Path(self.path), create=create, shown=self._shown)
        try:
            conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self._shown}: {exc}") from None
        try:
            _check_store(conn, self._shown)
            _use_wal(conn, busy_timeout_s, sleep)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn, self._shown)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open store {self._shown}: {_reason(exc)}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def save_run(self, result: LoadResult, *, kind: str = "load") -> int:
        """Save one run in a single transaction.

        Either the whole run is saved or, on any failure, nothing is.

        Args:
            result: The run to save.
            kind: What produced the run (``load`` for ``perfpilot load``).

        Returns:
            The new run's id.

        Raises:
            StoreError: The store cannot be written, or ``kind`` is empty.
        """
        if not kind:
            raise StoreError("a run needs a kind, e.g. 'load'")
        run_row = rows.run_row(result, kind=kind, created_at=self._clock.time())

        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(_insert("runs", rows.RUN_COLUMNS), run_row)
            run_id = cursor.lastrowid
            if run_id is None:  # pragma: no cover - SQLite always sets it after an INSERT
                raise StoreError("cannot save the run: no id was assigned")
            conn.executemany(
                _insert("run_names", ("run_id", *rows.NAME_COLUMNS)),
                ((run_id, *row) for row in rows.name_rows(result)),
            )
            conn.executemany(
                _insert("run_series", ("run_id", *rows.SERIES_COLUMNS)),
                ((run_id, *row) for row in rows.series_rows(result)),
            )
            conn.executemany(
                _insert("run_thresholds", ("run_id", *rows.THRESHOLD_COLUMNS)),
                ((run_id, *row) for row in rows.threshold_rows(result)),
            )
            return run_id

        return self._write("save the run", write)

    def list_runs(self, limit: int = 50) -> list[RunSummary]:
        """Summaries of the stored runs, newest first.

        Args:
            limit: The most summaries to return (at least 0).

        Returns:
            Up to ``limit`` summaries, by start time, newest first (ties: the
            later saved first).

        Raises:
            StoreError: The store cannot be read, or ``limit`` is negative.
        """
        if limit < 0:
            raise StoreError(f"limit must be 0 or more, got {limit}")
        columns = ", ".join(rows.SUMMARY_COLUMNS)
        sql = f"SELECT {columns} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._reading("list runs") as conn:
            found = conn.execute(sql, (limit,)).fetchall()
        return [rows.summary_from_row(row) for row in found]

    def get_run(self, run_id: int) -> LoadResult:
        """Read one run back, exactly as it was saved.

        Args:
            run_id: The id :meth:`save_run` returned.

        Returns:
            The run; ``get_run(save_run(r)).to_dict() == r.to_dict()``.

        Raises:
            StoreError: There is no run with this id, or it cannot be read.
        """
        # One read transaction, so a concurrent writer cannot show half a run.
        with self._reading(f"read run {run_id}") as conn:
            return rows.read_run(conn, run_id, "?")

    def save_app_snapshot(self, snapshot: AppSnapshot) -> None:
        """Append one process's flush interval in a single transaction.

        Either every row of the snapshot is saved or, on any failure, none is.
        Writers in other processes wait for each other (busy timeout, then a
        few retries with backoff).

        Args:
            snapshot: What one process observed during one interval.

        Raises:
            StoreError: The store cannot be written.
        """

        # Rows are built (histograms serialized, spans encoded) before taking
        # the write lock, so other processes wait only for the inserts.
        prepared = [(table, list(values)) for table, values in app_rows.snapshot_rows(snapshot)]

        def write(conn: sqlite3.Connection) -> None:
            for table, values in prepared:
                conn.executemany(_insert(table.name, table.insert_columns), values)

        self._write("save the app snapshot", write)

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self._shown!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self._shown} is closed")
        return self._conn

    def _write(self, doing: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in a write transaction, retrying it while the database is busy."""
        attempt = 0
        while True:
            try:
                with self._transaction(doing) as conn:
                    return body(conn)
            except _Busy:
                if attempt >= BUSY_RETRIES:
                    raise
                self._sleep(BUSY_BACKOFF_S * 2**attempt)
                attempt += 1

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise self._error(doing, exc) from None
            raise

    def _error(self, doing: str, exc: sqlite3.Error) -> StoreError:
        kind = _Busy if _is_busy(exc) else StoreError
        return kind(f"cannot {doing} in {self._shown}: {_reason(exc)}")

    def _select(self, doing: str, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        with self._reading(doing) as conn:
            found: list[Sequence[Any]] = conn.execute(sql, tuple(params)).fetchall()
        return found

    @contextmanager
    def _reading(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A read transaction (one consistent snapshot in WAL mode)."""
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {doing} from {self._shown}: {_reason(exc)}") from None


def _prepare_path(path: Path, *, create: bool, shown: str) -> None:
    """Check ``path`` (``shown`` in messages) is usable as a database file and create its
    directory."""
    if path.is_dir():
        raise StoreError(f"store path {shown} is a directory, not a database file")
    if path.exists():
        return
    if not create:
        raise StoreError(f"no store at {shown}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = redact_credentials(str(path.parent))
        raise StoreError(f"cannot create the store directory {where}: {reason}") from None


def _check_store(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a file that is not SQLite, or a SQLite database of another program.

    The three reads share one read transaction: another process creating the
    store meanwhile (its tables, version and id commit together) is seen
    either not at all or whole, not as tables without a perfpilot id.
    """
    try:
        conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = _has_tables(conn)
        finally:
            _rollback(conn)
    except sqlite3.DatabaseError as exc:
        if _is_busy(exc):
            raise
        raise StoreError(f"{path} is not a perfpilot store ({_reason(exc)})") from None
    if app_id == APPLICATION_ID:
        return
    if app_id != 0 or version != 0 or tables:
        raise StoreError(f"{path} is a SQLite database but not a perfpilot store")


def _use_wal(conn: sqlite3.Connection, timeout_s: float, sleep: Callable[[float], None]) -> None:
    """Switch the store to write-ahead logging (a no-op once it is).

    The switch needs the database to itself, and SQLite reports it busy at
    once, without its busy timeout, while another process opens the store
    too (workers starting together): retried until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 0.1)


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Apply the migrations the store lacks, each in its own transaction."""
    version = _user_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema version {version}, newer than this perfpilot "
            f"supports ({SCHEMA_VERSION}); upgrade perfpilot"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while this one waited for the lock.
            version = _user_version(conn)
            if version < SCHEMA_VERSION:
                for statement in statements(MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself after some errors (disk full, I/O); a second
    # ROLLBACK would then fail and hide the original error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _reason(exc: sqlite3.Error) -> str:
    return str(exc) or type(exc).__name__
