"""What a normalized statement looks like: the facts detectors read off SQL text.

Statements come from the recorder already fingerprinted (literals replaced by
``?``). These helpers parse them with sqlglot and answer narrow questions: is
it a ``SELECT``, does it have a ``LIMIT``, does it select ``*``, is it a lookup
by equality on columns of one table, and what is its one-query ``IN (...)``
form. A statement sqlglot cannot parse answers "don't know" (``None`` or
``False``), never raises.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import sqlglot
from sqlglot import exp

from perfpilot.instrument.sqlglot_quiet import quiet_sqlglot

_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "postgres": "postgres"}


@dataclasses.dataclass(frozen=True)
class Shape:
    """The parsed facts of one statement.

    Attributes:
        select: It is a ``SELECT`` (or a set operation of them).
        limited: It has a ``LIMIT``, ``FETCH FIRST`` or ``TOP``.
        star: It selects ``*`` or ``table.*``.
        aggregate_only: Every selected expression is an aggregate without
            ``GROUP BY`` (at most one row per call).
        tables: Tables read, in order of appearance.
        lookup_columns: For a single-table statement whose ``WHERE`` is a
            conjunction of ``column = ?`` predicates: those columns; else ().
    """

    select: bool
    limited: bool
    star: bool
    aggregate_only: bool
    tables: tuple[str, ...]
    lookup_columns: tuple[str, ...]


UNKNOWN = Shape(False, False, False, False, (), ())


@functools.lru_cache(maxsize=4096)
def shape(sql: str, db: str = "") -> Shape:
    """The :class:`Shape` of a normalized statement (cached; ``UNKNOWN`` when unparsable)."""
    tree = _parse(sql, db)
    if tree is None:
        return UNKNOWN
    is_select = isinstance(tree, exp.Select | exp.Union)
    if not is_select:
        return dataclasses.replace(UNKNOWN, tables=_tables(tree))
    limited = any(tree.args.get(key) is not None for key in ("limit", "fetch")) or bool(
        tree.find(exp.Limit, exp.Fetch)
    )
    if isinstance(tree, exp.Select) and tree.args.get("top") is not None:  # pragma: no cover
        limited = True
    star = False
    aggregate_only = False
    lookup: tuple[str, ...] = ()
    if isinstance(tree, exp.Select):
        projections = tree.expressions
        star = any(
            isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
            for p in projections
        )
        aggregate_only = (
            bool(projections)
            and tree.args.get("group") is None
            and all(isinstance(p.unalias(), exp.AggFunc) for p in projections)
        )
        lookup = _lookup_columns(tree)
    return Shape(True, limited, star, aggregate_only, _tables(tree), lookup)


def in_list_form(sql: str, db: str = "") -> str | None:
    """The one-query form of a per-parent lookup: ``col = ?`` becomes ``col IN (?, ...)``
    and ``col`` is added to the selected columns so rows can be grouped by parent.

    Returns ``None`` unless the statement is a single-table ``SELECT`` whose
    ``WHERE`` is exactly one ``column = ?``.

    Example:
        >>> in_list_form("SELECT qty FROM items WHERE order_id = ?")
        'SELECT order_id, qty FROM items WHERE order_id IN (?, ?, ?)'
    """
    tree = _parse(sql, db)
    facts = shape(sql, db)
    if tree is None or not isinstance(tree, exp.Select) or len(facts.lookup_columns) != 1:
        return None
    column = facts.lookup_columns[0]
    tree = tree.copy()
    where = tree.args["where"]
    predicate = where.this
    placeholders = [exp.Placeholder() for _ in range(3)]
    predicate.replace(exp.In(this=predicate.this.copy(), expressions=placeholders))
    names = {p.alias_or_name for p in tree.expressions}
    if column not in names and not facts.star:
        tree.set("expressions", [exp.column(column), *tree.expressions])
    return tree.sql()  # fingerprints use ? placeholders whatever the database


def _parse(sql: str, db: str) -> Any:
    try:
        with quiet_sqlglot():  # sqlglot logs what it cannot parse fully: not ours to print
            tree = sqlglot.parse_one(sql, read=_DIALECTS.get(db) or None)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    return tree


def _tables(tree: Any) -> tuple[str, ...]:
    seen: list[str] = []
    for table in tree.find_all(exp.Table):
        if table.name and table.name not in seen:
            seen.append(table.name)
    return tuple(seen)


def _lookup_columns(tree: exp.Select) -> tuple[str, ...]:
    if tree.args.get("joins") or len(_tables(tree)) != 1:
        return ()
    where = tree.args.get("where")
    if where is None:
        return ()
    columns: list[str] = []
    stack: list[Any] = [where.this]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Paren):
            stack.append(node.this)
        elif isinstance(node, exp.And):
            stack += [node.right, node.left]
        elif (
            isinstance(node, exp.EQ)
            and isinstance(node.this, exp.Column)
            and isinstance(node.expression, exp.Placeholder)
        ):
            columns.append(node.this.name)
        else:
            return ()
    return tuple(columns)
