"""SQLite health checks: unindexed foreign keys, duplicate and redundant
indexes, and tables without ``ANALYZE`` statistics.

A file is opened read-only (``mode=ro``, by
:func:`perfpilot.dbadvisor.database.connect_sqlite`); a connection given is
switched to ``PRAGMA query_only`` for the duration and restored. Each check is
interrupted after ``statement_timeout_s`` (a progress handler), and a check
that fails becomes one ``health_check_failed`` finding. The schema is read
through the ``pragma_*`` table-valued functions, so names are bound as
parameters, never spliced into SQL.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.catalog import quote_identifier
from perfpilot.dbadvisor.database import PROGRESS_STEPS, StatementClock, connect_sqlite
from perfpilot.dbadvisor.health import HealthOptions, failed_check, health_finding
from perfpilot.errors import UsageError

__all__ = ["SqliteIndex", "check_sqlite", "read_schema"]


@dataclasses.dataclass(frozen=True)
class SqliteIndex:
    """One index of a SQLite table.

    Attributes:
        name: Index name (``sqlite_autoindex_...`` for constraint indexes).
        table: Table name.
        keys: Key columns as (column id, collation, descending); column id
            -2 is an expression, -1 the rowid.
        columns: Key column names (``None`` for an expression).
        unique: Whether it enforces uniqueness.
        origin: ``c`` (CREATE INDEX), ``u`` (UNIQUE) or ``pk`` (PRIMARY KEY).
        partial: Whether it has a ``WHERE`` clause.
    """

    name: str
    table: str
    keys: tuple[tuple[int, str, int], ...]
    columns: tuple[str | None, ...]
    unique: bool
    origin: str
    partial: bool

    @property
    def droppable(self) -> bool:
        """A ``DROP INDEX`` can remove it (it was made by ``CREATE INDEX``)."""
        return self.origin == "c"


@dataclasses.dataclass(frozen=True)
class _Table:
    name: str
    rowid_column: str | None  # the INTEGER PRIMARY KEY column, when there is one
    indexes: tuple[SqliteIndex, ...]
    foreign_keys: tuple[tuple[str, tuple[str, ...]], ...]  # (parent, child columns)


def read_schema(conn: sqlite3.Connection) -> list[_Table]:
    """Every user table with its indexes, rowid alias and foreign keys."""
    names = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    tables = []
    for name in names:
        info = conn.execute("SELECT name, type, pk FROM pragma_table_info(?)", (name,)).fetchall()
        pk = [row for row in info if row[2]]
        without_rowid = bool(
            conn.execute(
                "SELECT 1 FROM pragma_index_list(?) WHERE origin = 'pk'", (name,)
            ).fetchone()
        )
        rowid_column = None
        if len(pk) == 1 and str(pk[0][1]).upper() == "INTEGER" and not without_rowid:
            rowid_column = str(pk[0][0])
        indexes = []
        for _, index_name, unique, origin, partial in conn.execute(
            'SELECT seq, name, "unique", origin, partial FROM pragma_index_list(?)', (name,)
        ).fetchall():
            key_rows = conn.execute(
                'SELECT cid, name, coll, "desc" FROM pragma_index_xinfo(?) '
                "WHERE key ORDER BY seqno",
                (index_name,),
            ).fetchall()
            indexes.append(
                SqliteIndex(
                    name=str(index_name),
                    table=name,
                    keys=tuple((int(cid), str(coll), int(desc)) for cid, _, coll, desc in key_rows),
                    columns=tuple(None if col is None else str(col) for _, col, _, _ in key_rows),
                    unique=bool(unique),
                    origin=str(origin),
                    partial=bool(partial),
                )
            )
        groups: dict[int, tuple[str, list[str]]] = {}
        for fk_id, _, parent, child_column in conn.execute(
            'SELECT id, seq, "table", "from" FROM pragma_foreign_key_list(?) ORDER BY id, seq',
            (name,),
        ).fetchall():
            groups.setdefault(int(fk_id), (str(parent), []))[1].append(str(child_column))
        tables.append(
            _Table(
                name=name,
                rowid_column=rowid_column,
                indexes=tuple(sorted(indexes, key=lambda i: i.name)),
                foreign_keys=tuple((parent, tuple(cols)) for parent, cols in groups.values()),
            )
        )
    return tables


def _covers(other: SqliteIndex, index: SqliteIndex) -> bool:
    if other.name == index.name or other.partial or index.partial:
        return False
    if any(cid == -2 for cid, _, _ in index.keys + other.keys):
        return False  # expressions: their text is not compared here
    n = len(index.keys)
    if other.keys[:n] != index.keys:
        return False
    if index.unique and not (other.unique and len(other.keys) == n):
        return False
    if other.keys == index.keys and other.unique == index.unique:
        return not other.droppable or other.name < index.name
    return True


def _redundant(table: _Table) -> list[Finding]:
    findings = []
    covered_by = {
        index.name: [other for other in table.indexes if _covers(other, index)]
        for index in table.indexes
        if index.droppable
    }
    for index in table.indexes:
        if not index.droppable:
            continue
        candidates = sorted(
            covered_by[index.name],
            key=lambda o: (
                bool(covered_by.get(o.name)),
                o.keys != index.keys,
                -len(o.keys),
                o.name,
            ),
        )
        if candidates:
            covering = candidates[0]
            exact = covering.keys == index.keys
            what, by = ("duplicates" if exact else "is a prefix of"), covering.name
        elif table.rowid_column is not None and index.columns == (table.rowid_column,):
            exact, what, by = True, "duplicates", f"the INTEGER PRIMARY KEY {table.rowid_column}"
        else:
            continue
        findings.append(
            health_finding(
                "duplicate_index" if exact else "redundant_index",
                "medium" if exact else "low",
                f"Index {index.name} {what} {by}",
                f"{table.name}.{index.name}",
                {
                    "index": index.name,
                    "table": table.name,
                    "columns": list(index.columns),
                    "covered_by": by,
                },
                f"Drop {index.name}: {by} serves the same queries, so it only costs "
                "writes and space.",
                f"DROP INDEX {quote_identifier(index.name)};",
                confidence=0.9 if exact else 0.8,
            )
        )
    return findings


def duplicate_indexes(conn: sqlite3.Connection, options: HealthOptions) -> list[Finding]:
    """Indexes another index (or the rowid) of the same table makes unnecessary."""
    return [finding for table in read_schema(conn) for finding in _redundant(table)]


def unindexed_foreign_keys(conn: sqlite3.Connection, options: HealthOptions) -> list[Finding]:
    """Foreign keys whose columns lead no index of the child table (nor are its
    rowid): with ``PRAGMA foreign_keys`` on, each parent delete scans the child."""
    findings = []
    for table in read_schema(conn):
        for parent, columns in table.foreign_keys:
            wanted = set(columns)
            if columns == (table.rowid_column,) or any(
                not index.partial and set(index.columns[: len(wanted)]) == wanted
                for index in table.indexes
            ):
                continue
            quoted = ", ".join(quote_identifier(c) for c in columns)
            index_name = quote_identifier(f"{table.name}_{'_'.join(columns)}_idx")
            findings.append(
                health_finding(
                    "unindexed_foreign_key",
                    "medium",
                    f"Foreign key {table.name}({', '.join(columns)}) → {parent} has no index",
                    f"{table.name}({', '.join(columns)})",
                    {"table": table.name, "columns": list(columns), "references": parent},
                    f"Index {table.name}({', '.join(columns)}): joins on the key and deletes "
                    f"from {parent} (with foreign keys enforced) scan the whole table without it.",
                    f"CREATE INDEX {index_name} ON {quote_identifier(table.name)} ({quoted});",
                    confidence=0.7,
                )
            )
    return findings


def missing_statistics(conn: sqlite3.Connection, options: HealthOptions) -> list[Finding]:
    """Non-empty tables with indexes but no row in ``sqlite_stat1``: without
    ``ANALYZE`` statistics the planner guesses which index is selective."""
    has_stat1 = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    analyzed = (
        {str(r[0]) for r in conn.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
        if has_stat1
        else set()
    )
    missing = []
    for table in read_schema(conn):
        if not table.indexes or table.name in analyzed:
            continue
        if conn.execute(f"SELECT 1 FROM {quote_identifier(table.name)} LIMIT 1").fetchone():
            missing.append(table.name)
    if not missing:
        return []
    code = (
        "ANALYZE;"
        if not has_stat1 or len(missing) > 5
        else "\n".join(f"ANALYZE {quote_identifier(name)};" for name in missing)
    )
    return [
        health_finding(
            "missing_statistics",
            "low",
            f"{len(missing)} table(s) have no ANALYZE statistics: {', '.join(missing[:5])}"
            + ("…" if len(missing) > 5 else ""),
            "sqlite_stat1",
            {"tables": missing, "sqlite_stat1_exists": bool(has_stat1)},
            "Run ANALYZE (or PRAGMA optimize before closing long-lived connections) so the "
            "planner knows how selective each index is.",
            code,
            confidence=0.6,
        )
    ]


_Check = Callable[[sqlite3.Connection, HealthOptions], list[Finding]]

CHECKS: list[tuple[str, _Check]] = [
    ("duplicate_indexes", duplicate_indexes),
    ("unindexed_foreign_keys", unindexed_foreign_keys),
    ("missing_statistics", missing_statistics),
]


def check_sqlite(target: str | sqlite3.Connection, options: HealthOptions) -> list[Finding]:
    """Run every SQLite check on a path, a ``sqlite:///`` URL or a connection.

    Raises:
        ConfigError: The file does not exist or is not a SQLite database.
        UsageError: The connection given is inside a transaction, or the
            target is a URL of another scheme.
    """
    if isinstance(target, sqlite3.Connection):
        if target.in_transaction:
            raise UsageError("health checks need a connection that is not inside a transaction")
        return _run(target, options)
    conn = connect_sqlite(target, read_only=True)
    try:
        return _run(conn, options)
    finally:
        conn.close()


def _run(conn: sqlite3.Connection, options: HealthOptions) -> list[Finding]:
    clock = StatementClock(options.statement_timeout_s)
    query_only = int(conn.execute("PRAGMA query_only").fetchone()[0])
    conn.execute("PRAGMA query_only = ON")
    conn.set_progress_handler(clock, PROGRESS_STEPS)
    findings: list[Finding] = []
    try:
        for name, check in CHECKS:
            clock.arm()
            try:
                findings.extend(check(conn, options))
            except sqlite3.Error as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                findings.append(failed_check(name, reason))
    finally:
        conn.set_progress_handler(None, 0)
        conn.execute(f"PRAGMA query_only = {query_only}")
    return findings
