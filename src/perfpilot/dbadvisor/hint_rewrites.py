"""The rewrites query hints suggest: expression indexes, ``UNION`` for
``OR`` across columns, ``EXISTS`` for ``IN (SELECT ...)``.

Each returns the rewritten SQL, or ``""``/``None`` when a safe rewrite cannot
be derived from the text alone (an unresolved table, an ambiguous
correlation): a hint without code beats wrong code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from sqlglot import exp

from perfpilot.dbadvisor.hint_scope import Scope, bare_name

__all__ = [
    "as_exists",
    "column_key",
    "expression_index",
    "predicate_sides",
    "qualify_outer",
    "union_rewrite",
]

_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Like,
    exp.ILike,
)

#: PostgreSQL's identifier length limit.
MAX_NAME = 63


def _own_nodes(node: exp.Expr) -> Iterator[exp.Expr]:
    """``node`` and its descendants, not entering subqueries (their own WHERE
    is visited on its own)."""
    yield node
    for child in node.iter_expressions():
        if isinstance(child, exp.Subquery | exp.Select | exp.Exists):
            continue
        yield from _own_nodes(child)


def predicate_sides(where: exp.Expr) -> Iterator[tuple[exp.Expr, exp.Expr]]:
    """Each (side, other side) of the comparisons in a ``WHERE``: both ways
    for ``=``, ``<``, ``LIKE``...; the tested expression against the list for
    ``IN (...)`` and ``BETWEEN``."""
    for node in _own_nodes(where):
        if isinstance(node, _COMPARISONS):
            left, right = node.args.get("this"), node.args.get("expression")
            if isinstance(left, exp.Expr) and isinstance(right, exp.Expr):
                yield left, right
                yield right, left
        elif isinstance(node, exp.In) and node.args.get("expressions"):
            yield node.this, exp.Tuple(expressions=list(node.expressions))
        elif isinstance(node, exp.Between):
            low, high = node.args.get("low"), node.args.get("high")
            if isinstance(low, exp.Expr) and isinstance(high, exp.Expr):
                yield node.this, exp.Tuple(expressions=[low, high])


def column_key(
    column: exp.Column, scope: Scope | None, types: Mapping[str, Mapping[str, str]]
) -> str:
    """``table.column`` when the table is known, else the column as written."""
    table = scope.table_of(column, types) if scope is not None else None
    if table is not None:
        return f"{bare_name(table)}.{column.name.lower()}"
    return column.sql().lower()


def expression_index(side: exp.Expr, table: str | None, dialect: str) -> tuple[str, str]:
    """``(CREATE INDEX statement or "", the expression as indexed)`` for a
    function applied to columns of ``table``."""
    expression = side.copy()
    for column in expression.find_all(exp.Column):
        for part in ("table", "db", "catalog"):
            column.set(part, None)
    text = expression.sql(dialect=dialect, normalize_functions="lower")
    if table is None:
        return "", text
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    name = f"{bare_name(table)}_{slug}_idx"[:MAX_NAME].rstrip("_")
    concurrently = " CONCURRENTLY" if dialect == "postgres" else ""
    return f"CREATE INDEX{concurrently} {name} ON {table} (({text}));", text


def union_rewrite(tree: exp.Expr, node: exp.Or, terms: Sequence[exp.Expr], dialect: str) -> str:
    """The statement as a ``UNION`` of one query per ``OR`` term, when the ``OR``
    is in the top-level ``SELECT``'s ``WHERE`` and nothing (ORDER BY, LIMIT)
    would have to move outside the union; else ``""``."""
    scope = Scope.of(node)
    if not isinstance(tree, exp.Select) or scope is None or scope.node is not tree:
        return ""
    if any(tree.args.get(key) for key in ("order", "limit", "offset", "group", "distinct")):
        return ""
    parts = []
    for term in terms:
        copy = tree.copy()
        for candidate in copy.walk():
            if candidate == node:
                candidate.replace(term.unnest().copy())
                break
        else:  # pragma: no cover - the copy holds an equal node
            return ""
        parts.append(copy)
    return exp.union(*parts, distinct=True).sql(dialect=dialect) + ";"


def qualify_outer(
    expression: exp.Expr, scope: Scope | None, types: Mapping[str, Mapping[str, str]]
) -> exp.Column | None:
    """The outer column of ``x IN (SELECT ...)``, qualified by its table's alias
    so it cannot be captured by the subquery's tables, or ``None``."""
    if not isinstance(expression, exp.Column) or scope is None:
        return None
    if expression.table:
        return expression.copy()
    table = scope.table_of(expression, types)
    aliases = [alias for alias, name in scope.tables.items() if name == table]
    if table is None or len(aliases) != 1:
        return None
    return exp.column(expression.name, table=aliases[0])


def as_exists(subquery: exp.Expr, outer: exp.Column | None, *, negated: bool) -> exp.Expr | None:
    """``[NOT] EXISTS (SELECT 1 FROM ... WHERE ... AND inner = outer)`` for a
    simple one-column subquery, or ``None``."""
    inner = subquery.this if isinstance(subquery, exp.Subquery) else subquery
    if outer is None or not isinstance(inner, exp.Select) or len(inner.expressions) != 1:
        return None
    if any(inner.args.get(key) for key in ("group", "having", "limit", "offset", "distinct")):
        return None
    scope = Scope(inner)
    if not scope.tables or scope.derived or outer.table.lower() in scope.tables:
        return None  # no table, or the outer alias is reused inside: ambiguous
    selected = inner.expressions[0]
    selected = selected.this if isinstance(selected, exp.Alias) else selected
    if selected.is_star or selected.find(exp.AggFunc | exp.Window) is not None:
        return None
    selected = selected.copy()
    for column in selected.find_all(exp.Column):
        if not column.table:
            aliases = sorted(scope.tables)
            if len(aliases) != 1:
                return None
            column.set("table", exp.to_identifier(aliases[0]))
    rewritten = inner.copy()
    rewritten.set("expressions", [exp.Literal.number(1)])
    rewritten = rewritten.where(exp.EQ(this=selected, expression=outer.copy()), copy=False)
    exists: exp.Expr = exp.Exists(this=rewritten)
    return exp.Not(this=exists) if negated else exists
