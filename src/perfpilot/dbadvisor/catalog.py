"""What the advisor needs to know about the schema: tables, columns, indexes, writes.

:func:`read_catalog` reads it once per run, from ``pg_catalog`` and
``pg_stat_user_tables`` on PostgreSQL, from ``sqlite_master`` and the
``PRAGMA`` lists on SQLite (where an ``INTEGER PRIMARY KEY`` is the rowid and
counts as an index on that column). Write rates are known only on PostgreSQL:
inserted, updated and deleted rows since the statistics were last reset (or
since the server started), per second.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from perfpilot.dbadvisor.database import Database

_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclasses.dataclass(frozen=True)
class ExistingIndex:
    """An index the database already has.

    Attributes:
        name: Index name (``<rowid>`` for SQLite's rowid).
        table: Its table.
        columns: Key columns, in order (expressions left out).
        unique: Whether it is unique (primary keys included).
        usable: A plain, valid btree on columns: no predicate, no expression.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    usable: bool = True


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """One table.

    Attributes:
        name: Table name (without schema).
        columns: Column names, in table order.
        rows: Row count or the planner's estimate.
        indexes: Its indexes.
        writes_per_s: Rows inserted, updated or deleted per second, when known.
        types: Declared column types, in the order of ``columns`` (``""`` when
            a SQLite column declares none); empty when not read.
    """

    name: str
    columns: tuple[str, ...]
    rows: int = 0
    indexes: tuple[ExistingIndex, ...] = ()
    writes_per_s: float | None = None
    types: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The tables of one database, by lower-cased name."""

    tables: Mapping[str, TableInfo]

    def table(self, name: str) -> TableInfo | None:
        """The table called ``name`` (any case), if there is one."""
        return self.tables.get(name.lower())

    def columns_of(self) -> dict[str, tuple[str, ...]]:
        """Column names per table, for resolving unqualified columns."""
        return {name: info.columns for name, info in self.tables.items()}

    def column_types(self) -> dict[str, dict[str, str]]:
        """Declared column types by table then column, as
        :func:`perfpilot.dbadvisor.hints.query_hints` takes them (``schema=``).

        Columns without a declared type are left out.
        """
        return {
            name: {c: t for c, t in zip(info.columns, info.types, strict=False) if t}
            for name, info in self.tables.items()
        }

    def serving_index(self, table: str, columns: tuple[str, ...]) -> ExistingIndex | None:
        """An existing usable index whose key starts with ``columns``, if any."""
        info = self.table(table)
        if info is None:
            return None
        wanted = tuple(c.lower() for c in columns)
        for index in info.indexes:
            keys = tuple(c.lower() for c in index.columns)
            if index.usable and keys[: len(wanted)] == wanted:
                return index
        return None


def read_catalog(db: Database) -> Catalog:
    """The tables, columns and indexes of ``db``.

    Raises:
        UsageError: The catalog cannot be read (permissions).
    """
    if db.kind == "postgresql":
        return _postgres_catalog(db.conn)
    return _sqlite_catalog(db)


_PG_TABLES = """
SELECT c.oid, c.relname, greatest(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND pg_table_is_visible(c.oid)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""
_PG_COLUMNS = """
SELECT attrelid, attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped
ORDER BY attrelid, attnum
"""
_PG_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisunique,
       i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND am.amname = 'btree',
       ARRAY(SELECT a.attname
             FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.ord)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = ANY(%s)
ORDER BY ic.relname
"""
_PG_WRITES = """
SELECT relid, n_tup_ins + n_tup_upd + n_tup_del,
       extract(epoch FROM now() - coalesce(
           (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
           pg_postmaster_start_time()))
FROM pg_stat_user_tables
"""


def _postgres_catalog(conn: Any) -> Catalog:
    tables = conn.execute(_PG_TABLES).fetchall()
    oids = [row[0] for row in tables]
    columns: dict[int, list[str]] = {}
    types: dict[int, list[str]] = {}
    for oid, name, type_name in conn.execute(_PG_COLUMNS, (oids,)).fetchall():
        columns.setdefault(oid, []).append(name)
        types.setdefault(oid, []).append(str(type_name or ""))
    indexes: dict[int, list[ExistingIndex]] = {}
    names = {row[0]: row[1] for row in tables}
    for oid, name, unique, usable, keys in conn.execute(_PG_INDEXES, (oids,)).fetchall():
        indexes.setdefault(oid, []).append(
            ExistingIndex(name, names[oid], tuple(keys), bool(unique), bool(usable))
        )
    writes: dict[int, float] = {}
    for oid, count, seconds in conn.execute(_PG_WRITES).fetchall():
        writes[oid] = float(count) / max(1.0, float(seconds))
    return Catalog(
        {
            name.lower(): TableInfo(
                name,
                tuple(columns.get(oid, ())),
                int(rows),
                tuple(indexes.get(oid, ())),
                writes.get(oid),
                tuple(types.get(oid, ())),
            )
            for oid, name, rows in tables
        }
    )


def _sqlite_catalog(db: Database) -> Catalog:
    conn = db.conn
    db.arm_timeout()
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    tables: dict[str, TableInfo] = {}
    for name in names:
        quoted = _quote(name)
        info = conn.execute(f"PRAGMA table_info({quoted})").fetchall()
        columns = tuple(row[1] for row in info)
        pks = [row for row in info if row[5]]
        found: list[ExistingIndex] = []
        if len(pks) == 1 and str(pks[0][2]).upper() == "INTEGER":
            found.append(ExistingIndex("<rowid>", name, (pks[0][1],), unique=True))
        for _seq, index, unique, _origin, partial in conn.execute(f"PRAGMA index_list({quoted})"):
            keys = conn.execute(f"PRAGMA index_info({_quote(index)})").fetchall()
            plain = all(key[2] is not None for key in keys)
            found.append(
                ExistingIndex(
                    index,
                    name,
                    tuple(key[2] for key in keys if key[2] is not None),
                    bool(unique),
                    usable=plain and not partial,
                )
            )
        db.arm_timeout()
        rows = int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
        types = tuple(str(row[2] or "") for row in info)
        tables[name.lower()] = TableInfo(name, columns, rows, tuple(found), None, types)
    return Catalog(tables)


#: Words reserved in PostgreSQL or SQLite (or standard SQL) that tables and
#: columns are often named after: such names must be quoted to be names.
RESERVED_WORDS = frozenset(
    {
        "all",
        "alter",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "cross",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "delete",
        "desc",
        "distinct",
        "do",
        "drop",
        "else",
        "end",
        "except",
        "exists",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "index",
        "initially",
        "inner",
        "insert",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "key",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "over",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "row",
        "select",
        "session_user",
        "set",
        "similar",
        "some",
        "symmetric",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "update",
        "user",
        "using",
        "values",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    }
)


def quote_identifier(name: str) -> str:
    """``name`` as written in SQL: bare when plain lower case and not a reserved
    word (:data:`RESERVED_WORDS`), else double-quoted.

    The one identifier quoting of ``dbadvisor``'s generated SQL (index DDL,
    health-check fixes).

    Example:
        >>> quote_identifier("orders"), quote_identifier("order"), quote_identifier("Users")
        ('orders', '"order"', '"Users"')
    """
    if _PLAIN_IDENTIFIER.fullmatch(name) and name not in RESERVED_WORDS:
        return name
    return _quote(name)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
