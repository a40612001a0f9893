"""What a query asks of each table, read from its sqlglot tree.

:func:`analyze_query` finds, per table the query reads, the columns it
compares with a value (equality, ``IN``, ``IS NULL``), the columns it bounds
(``<``, ``>``, ``BETWEEN``, ``LIKE 'prefix%'``), the join keys, and the
``ORDER BY`` and ``GROUP BY`` columns, plus what no btree serves: ``LIKE`` or
``ILIKE`` patterns that start with a wildcard, aggregates over whole tables,
deep ``OFFSET`` pagination. Only top-level ``AND`` terms count: a term under
``OR`` or ``NOT`` yields nothing. Unqualified columns are resolved against the
catalog's column lists; a column no table (or more than one) has is ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from perfpilot.instrument.sqlglot_quiet import quiet_parse

DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite"}


@dataclasses.dataclass(frozen=True)
class TableUse:
    """How a query uses one table (one alias of it).

    Attributes:
        table: Table name, as the catalog spells it.
        alias: The alias (or the name) the query uses.
        equality: Columns compared with a value, in query order.
        ranges: Columns bounded by a range or a prefix pattern.
        joins: Columns equated with another table's column.
        order_by: The ``ORDER BY`` columns, when all belong to this table
            and share one direction.
        group_by: The ``GROUP BY`` columns, when all belong to this table.
        referenced: Every column of the table the query mentions.
        star: Whether the query selects ``*`` (or ``alias.*``).
    """

    table: str
    alias: str
    equality: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    joins: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    referenced: tuple[str, ...] = ()
    star: bool = False

    @property
    def filtered(self) -> bool:
        """Whether any predicate narrows the rows read from this table."""
        return bool(self.equality or self.ranges or self.joins)


@dataclasses.dataclass(frozen=True)
class QueryShape:
    """What a query asks of its tables.

    Attributes:
        is_select: Whether the statement is a query (``SELECT``, ``WITH``,
            set operations); the advisor costs only queries.
        uses: One entry per table alias the catalog knows.
        limit: The ``LIMIT`` when it is a number, -1 for a placeholder.
        offset: The ``OFFSET`` when it is a number.
        aggregate: Whether the outer query aggregates (aggregate functions or
            ``GROUP BY``).
        leading_wildcard: ``table.column`` of each ``LIKE '%...'`` filter.
        error: Why the statement could not be read, if it could not.
    """

    is_select: bool = False
    uses: tuple[TableUse, ...] = ()
    limit: int | None = None
    offset: int | None = None
    aggregate: bool = False
    leading_wildcard: tuple[str, ...] = ()
    error: str | None = None


def parse(sql: str, kind: str) -> exp.Expr:
    """The sqlglot tree of one statement in the dialect of ``kind``.

    Raises:
        ValueError: The text does not parse, or holds no or several statements.
    """
    try:
        trees: list[exp.Expr] = [
            t for t in quiet_parse(sql, DIALECTS.get(kind, kind)) if t is not None
        ]
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    if len(trees) != 1:
        raise ValueError(f"expected one statement, found {len(trees)}")
    return trees[0]


def analyze_query(sql: str, kind: str, columns_of: Mapping[str, Sequence[str]]) -> QueryShape:
    """The shape of ``sql`` against tables whose columns ``columns_of`` lists.

    Args:
        sql: One statement, with values or placeholders.
        kind: ``postgresql`` or ``sqlite``.
        columns_of: Column names per lower-cased table name.

    Returns:
        The shape; ``error`` is set when the statement does not parse.
    """
    try:
        tree = parse(sql, kind)
    except ValueError as exc:
        return QueryShape(error=str(exc))
    if isinstance(tree, exp.Command):
        return QueryShape(error="not understood by the SQL parser")
    if not isinstance(tree, exp.Query):
        return QueryShape()
    return _Reader(tree, columns_of).shape()


class _Reader:
    """One pass over a query's tree."""

    def __init__(self, tree: exp.Query, columns_of: Mapping[str, Sequence[str]]) -> None:
        self.tree = tree
        self.columns = {
            name.lower(): [c.lower() for c in cols] for name, cols in columns_of.items()
        }
        self.spelled = {name.lower(): name for name in columns_of}
        self.aliases: dict[str, str] = {}  # alias -> table (lower case)
        for table in tree.find_all(exp.Table):
            name = table.name.lower()
            if name in self.columns:
                self.aliases[table.alias_or_name.lower()] = name
        self.found: dict[str, dict[str, list[str]]] = {
            alias: {"equality": [], "ranges": [], "joins": []} for alias in self.aliases
        }
        self.wildcards: list[str] = []

    def resolve(self, node: exp.Expr | None) -> tuple[str, str] | None:
        """``(alias, column)`` of a column reference, when exactly one table has it."""
        if not isinstance(node, exp.Column) or not node.name:
            return None
        column = node.name.lower()
        if node.table:
            alias = node.table.lower()
            table = self.aliases.get(alias)
            return (alias, column) if table and column in self.columns[table] else None
        owners = [a for a, t in self.aliases.items() if column in self.columns[t]]
        return (owners[0], column) if len(owners) == 1 else None

    def shape(self) -> QueryShape:
        for where in self.tree.find_all(exp.Where):
            for term in _conjuncts(where.this):
                self.term(term)
        for join in self.tree.find_all(exp.Join):
            on = join.args.get("on")
            if on is not None:
                for term in _conjuncts(on):
                    self.term(term)
        select = self.tree if isinstance(self.tree, exp.Select) else None
        order = self.single_table(select.args.get("order") if select else None, ordered=True)
        group = self.single_table(select.args.get("group") if select else None, ordered=False)
        referenced: dict[str, list[str]] = {alias: [] for alias in self.aliases}
        for column in self.tree.find_all(exp.Column):
            hit = self.resolve(column)
            if hit and hit[1] not in referenced[hit[0]]:
                referenced[hit[0]].append(hit[1])
        stars = self.stars(select)
        uses = []
        for alias, table in self.aliases.items():
            found = self.found[alias]
            uses.append(
                TableUse(
                    table=self.spelled[table],
                    alias=alias,
                    equality=tuple(found["equality"]),
                    ranges=tuple(c for c in found["ranges"] if c not in found["equality"]),
                    joins=tuple(c for c in found["joins"] if c not in found["equality"]),
                    order_by=order[1] if order and order[0] == alias else (),
                    group_by=group[1] if group and group[0] == alias else (),
                    referenced=tuple(referenced[alias]),
                    star=alias in stars,
                )
            )
        aggregate = bool(
            select
            and (select.args.get("group") or any(e.find(exp.AggFunc) for e in select.expressions))
        )
        return QueryShape(
            is_select=True,
            uses=tuple(uses),
            limit=_number(select.args.get("limit") if select else None, placeholder=-1),
            offset=_number(select.args.get("offset") if select else None, placeholder=None),
            aggregate=aggregate,
            leading_wildcard=tuple(dict.fromkeys(self.wildcards)),
        )

    def add(self, kind: str, hit: tuple[str, str] | None) -> None:
        if hit is not None and hit[1] not in self.found[hit[0]][kind]:
            self.found[hit[0]][kind].append(hit[1])

    def term(self, term: exp.Expr) -> None:
        """Record what one ``AND`` term of a ``WHERE`` or ``ON`` asks."""
        if isinstance(term, exp.EQ | exp.NullSafeEQ):
            left, right = self.resolve(term.left), self.resolve(term.right)
            if left and right:
                if left[0] != right[0]:
                    self.add("joins", left)
                    self.add("joins", right)
            elif left and _is_value(term.right):
                self.add("equality", left)
            elif right and _is_value(term.left):
                self.add("equality", right)
        elif isinstance(term, exp.In) or (
            isinstance(term, exp.Is) and isinstance(term.expression, exp.Null)
        ):
            self.add("equality", self.resolve(term.this))
        elif isinstance(term, exp.GT | exp.GTE | exp.LT | exp.LTE):
            left, right = self.resolve(term.left), self.resolve(term.right)
            if left and not right and _is_value(term.right):
                self.add("ranges", left)
            elif right and not left and _is_value(term.left):
                self.add("ranges", right)
        elif isinstance(term, exp.Between):
            self.add("ranges", self.resolve(term.this))
        elif isinstance(term, exp.Like | exp.ILike):
            hit = self.resolve(term.this)
            pattern = term.expression
            if isinstance(pattern, exp.Literal) and pattern.is_string:
                text = pattern.this
                if text[:1] in ("%", "_"):
                    if hit is not None:
                        self.wildcards.append(f"{self.aliases[hit[0]]}.{hit[1]}")
                elif isinstance(term, exp.Like) and text:
                    self.add("ranges", hit)
            elif isinstance(pattern, exp.Placeholder | exp.Parameter):
                self.add("ranges", hit)

    def single_table(
        self, clause: exp.Expr | None, *, ordered: bool
    ) -> tuple[str, tuple[str, ...]] | None:
        """``(alias, columns)`` when every term of an ORDER/GROUP BY is a column of one table."""
        if clause is None:
            return None
        terms = clause.expressions
        if not terms:
            return None
        directions = set()
        hits = []
        for term in terms:
            node = term.this if isinstance(term, exp.Ordered) else term
            if ordered and isinstance(term, exp.Ordered):
                directions.add(bool(term.args.get("desc")))
            hit = self.resolve(node)
            if hit is None:
                return None
            hits.append(hit)
        if len({alias for alias, _ in hits}) != 1 or len(directions) > 1:
            return None
        return hits[0][0], tuple(dict.fromkeys(column for _, column in hits))

    def stars(self, select: exp.Select | None) -> set[str]:
        if select is None:
            return set(self.aliases)
        found: set[str] = set()
        for item in select.expressions:
            if isinstance(item, exp.Star):
                found.update(self.aliases)
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                found.add(item.table.lower())
        return found


def _conjuncts(node: exp.Expr) -> Iterator[exp.Expr]:
    """The terms of a chain of ``AND`` (parentheses looked through)."""
    if isinstance(node, exp.And):
        yield from _conjuncts(node.left)
        yield from _conjuncts(node.right)
    elif isinstance(node, exp.Paren):
        yield from _conjuncts(node.this)
    else:
        yield node


def _is_value(node: exp.Expr) -> bool:
    """Whether ``node`` is known before the table is read: no column of the query in it."""
    if isinstance(node, exp.Subquery | exp.Select):
        return True
    return node.find(exp.Column) is None


def _number(clause: Any, *, placeholder: int | None) -> int | None:
    if clause is None:
        return None
    value = clause.args.get("expression") if isinstance(clause, exp.Limit) else clause.this
    if isinstance(clause, exp.Offset):
        value = clause.args.get("expression")
    if isinstance(value, exp.Literal) and not value.is_string:
        try:
            return int(value.this)
        except ValueError:
            return None
    if isinstance(value, exp.Placeholder | exp.Parameter):
        return placeholder
    return None
