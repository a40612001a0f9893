"""Real values for a query's placeholders, sampled from its tables.

Plans depend on the values: ``status = 'pending'`` may read 1% of a table
where ``status = 'delivered'`` reads 80%, and a generic plan guesses. The
perfpilot store and ``pg_stat_statements`` keep no parameter values, so when a
query has placeholders (``?``, ``%s``, ``$1``) the advisor fills each one from
a sample of the column it is compared with (:func:`sample_column`: up to 1000
non-null values spread over the table, sorted):

* ``col = ?``, ``col IN (?)``: the sample's median, a typical row's value
  (for a skewed column, its common value);
* ``col > ?`` alone: the 99th percentile; ``col < ?`` alone: the 1st; both
  bounds (or ``BETWEEN``): the 50th and 51st, so a range reads about 1% of
  the rows, as pagination and "recent rows" queries do;
* ``col LIKE ?``: the median's first three characters and ``%``;
* ``LIMIT ?``: 20; ``OFFSET ?``: 0.

A placeholder in any other place (a function argument, the select list)
cannot be filled: the query is then skipped with that reason.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from perfpilot.dbadvisor.database import Database
from perfpilot.dbadvisor.shape import DIALECTS, parse

#: Values sampled per column.
SAMPLE_SIZE = 1000
#: What ``LIMIT ?`` becomes.
DEFAULT_LIMIT = 20

Sampler = Callable[[str, str], Sequence[Any]]

_LOWER = (exp.GT, exp.GTE)
_UPPER = (exp.LT, exp.LTE)


class Unresolved(ValueError):
    """A placeholder whose value cannot be chosen."""


def has_placeholders(sql: str, kind: str) -> bool:
    """Whether ``sql`` has placeholders (parse errors count as none)."""
    try:
        tree = parse(sql, kind)
    except ValueError:
        return False
    return any(True for _ in _placeholders(tree))


def fill_placeholders(
    sql: str,
    kind: str,
    sampler: Sampler,
    columns_of: Mapping[str, Sequence[str]],
    *,
    limit: int | None = None,
) -> str:
    """``sql`` with each placeholder replaced by a value sampled from its column.

    Args:
        sql: One statement with placeholders.
        kind: ``postgresql`` or ``sqlite``.
        sampler: ``(table, column) -> sorted values`` (:func:`sample_column`).
        columns_of: Column names per lower-cased catalog table name.
        limit: The value of a ``LIMIT ?`` (the rows the app saw per call),
            :data:`DEFAULT_LIMIT` when unknown.

    Returns:
        The statement with literals, in the dialect of ``kind``.

    Raises:
        Unresolved: A placeholder is not compared with a known column, or the
            column has no values.
    """
    try:
        tree = parse(sql, kind)
    except ValueError as exc:
        raise Unresolved(str(exc)) from None
    tables = _Tables(tree, columns_of)
    roles: dict[tuple[str, str], set[str]] = {}
    plan: list[tuple[exp.Expr, tuple[str, str] | None, str]] = []
    for node in list(_placeholders(tree)):
        key, role = _role(node, tables)
        plan.append((node, key, role))
        if key is not None:
            roles.setdefault(key, set()).add(role)
    for node, key, role in plan:
        if key is None:
            value: Any = (limit or DEFAULT_LIMIT) if role == "limit" else 0
            node.replace(exp.Literal.number(value))
            continue
        values = sampler(*key)
        if not values:
            raise Unresolved(f"no values to sample in {key[0]}.{key[1]}")
        node.replace(_literal(_pick(values, role, roles[key])))
    return tree.sql(dialect=DIALECTS.get(kind, kind))


def sample_column(db: Database, table: str, column: str) -> list[Any]:
    """Up to :data:`SAMPLE_SIZE` non-null values of ``table.column``, sorted.

    PostgreSQL reads a ``TABLESAMPLE SYSTEM`` of about twice that many rows
    (falling back to the first rows of small tables); SQLite reads every
    n-th rowid.
    """
    from perfpilot.dbadvisor.catalog import quote_identifier as q

    if db.kind == "postgresql":
        rows_estimate = db.conn.execute(
            "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", (q(table),)
        ).fetchone()[0]
        percent = min(100.0, 100.0 * 2 * SAMPLE_SIZE / max(1.0, float(rows_estimate)))
        found = db.conn.execute(
            f"SELECT {q(column)} FROM {q(table)} TABLESAMPLE SYSTEM ({percent:.6f}) "
            f"REPEATABLE (42) WHERE {q(column)} IS NOT NULL LIMIT {SAMPLE_SIZE}"
        ).fetchall()
        if len(found) < SAMPLE_SIZE // 10:
            found = db.conn.execute(
                f"SELECT {q(column)} FROM {q(table)} WHERE {q(column)} IS NOT NULL "
                f"LIMIT {SAMPLE_SIZE}"
            ).fetchall()
    else:
        db.arm_timeout()
        count = db.conn.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
        step = max(1, int(count) // SAMPLE_SIZE)
        try:
            found = db.conn.execute(
                f"SELECT {q(column)} FROM {q(table)} WHERE {q(column)} IS NOT NULL "
                f"AND rowid % {step} = 0 LIMIT {SAMPLE_SIZE}"
            ).fetchall()
        except Exception:  # a WITHOUT ROWID table
            found = db.conn.execute(
                f"SELECT {q(column)} FROM {q(table)} WHERE {q(column)} IS NOT NULL "
                f"LIMIT {SAMPLE_SIZE}"
            ).fetchall()
    return sorted((row[0] for row in found), key=_sort_key)


def _placeholders(tree: exp.Expr) -> list[exp.Expr]:
    return [n for n in tree.walk() if isinstance(n, exp.Placeholder | exp.Parameter)]


class _Tables:
    """Resolves column references to catalog tables."""

    def __init__(self, tree: exp.Expr, columns_of: Mapping[str, Sequence[str]]) -> None:
        self.columns = {t.lower(): {c.lower(): c for c in cols} for t, cols in columns_of.items()}
        self.spelled = {t.lower(): t for t in columns_of}
        self.aliases = {
            table.alias_or_name.lower(): table.name.lower()
            for table in tree.find_all(exp.Table)
            if table.name.lower() in self.columns
        }

    def column(self, node: exp.Expr) -> tuple[str, str]:
        if not isinstance(node, exp.Column):
            raise Unresolved(f"placeholder compared with {node.sql()}, not with a column")
        name = node.name.lower()
        if node.table:
            owners = (
                [self.aliases[node.table.lower()]] if node.table.lower() in self.aliases else []
            )
        else:
            owners = sorted({t for t in self.aliases.values() if name in self.columns[t]})
        if len(owners) != 1 or name not in self.columns[owners[0]]:
            raise Unresolved(f"cannot tell which table {node.sql()} belongs to")
        return self.spelled[owners[0]], self.columns[owners[0]][name]


def _role(node: exp.Expr, tables: _Tables) -> tuple[tuple[str, str] | None, str]:
    """The column a placeholder is compared with, and how."""
    parent = node.parent
    if isinstance(parent, exp.Limit):
        return None, "limit"
    if isinstance(parent, exp.Offset):
        return None, "offset"
    if isinstance(parent, exp.In):
        return tables.column(parent.this), "eq"
    if isinstance(parent, exp.Between):
        role = "lower" if parent.args.get("low") is node else "upper"
        return tables.column(parent.this), role
    if isinstance(parent, exp.Like | exp.ILike) and parent.expression is node:
        return tables.column(parent.this), "prefix"
    if isinstance(parent, exp.Binary) and isinstance(
        parent, exp.EQ | exp.NEQ | exp.NullSafeEQ | exp.GT | exp.GTE | exp.LT | exp.LTE
    ):
        placeholder_right = parent.right is node
        other = parent.left if placeholder_right else parent.right
        role = "eq"
        if isinstance(parent, _LOWER):
            role = "lower" if placeholder_right else "upper"
        elif isinstance(parent, _UPPER):
            role = "upper" if placeholder_right else "lower"
        return tables.column(other), role
    raise Unresolved(f"cannot tell which column the placeholder {node.sql()} stands for")


def _pick(values: Sequence[Any], role: str, roles: set[str]) -> Any:
    def at(q: float) -> Any:
        return values[round(q * (len(values) - 1))]

    if role == "prefix":
        return f"{str(at(0.5))[:3]}%"
    if role == "eq":
        return at(0.5)
    both = {"lower", "upper"} <= roles
    if role == "lower":
        return at(0.50) if both else at(0.99)
    return at(0.51) if both else at(0.01)


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | decimal.Decimal):
        return exp.Literal.number(value)
    if isinstance(value, datetime.date | datetime.time):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, bytes | bytearray | memoryview):
        raise Unresolved("binary values cannot be written as literals")
    return exp.Literal.string(str(value))


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, str(value))
