"""Which table a column of a parsed statement belongs to, for query hints.

A :class:`Scope` is one ``SELECT``, ``UPDATE`` or ``DELETE`` of a sqlglot
tree: the tables it reads by alias. A column qualified by an alias resolves
to that table; an unqualified one to the only table read, or, with a schema,
to the only table that has such a column. Anything else stays unresolved,
and hints that need the table then give no code rather than a guess.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

__all__ = ["Scope", "bare_name"]

_SCOPES = (exp.Select, exp.Update, exp.Delete)


def bare_name(table: str) -> str:
    """``public."Users"`` → ``users``: the last part, unquoted, lower-cased."""
    return table.rsplit(".", 1)[-1].strip('"`[]').lower()


class Scope:
    """The tables one statement level reads.

    Args:
        node: A ``SELECT``, ``UPDATE`` or ``DELETE`` node.

    Attributes:
        tables: Table as written (without alias, e.g. ``public.users``) by
            lower-cased alias or name.
        derived: Whether it also reads a subquery, a function or ``VALUES``
            (so an unqualified column may come from those).
    """

    def __init__(self, node: exp.Expr) -> None:
        self.node = node
        self.tables: dict[str, str] = {}
        self.derived = False
        sources: list[exp.Expr] = []
        for key in ("from_", "from", "using"):
            found = node.args.get(key)
            if isinstance(found, exp.From):
                sources.append(found.this)
            elif isinstance(found, list):
                sources.extend(found)
        if isinstance(node, exp.Update | exp.Delete) and isinstance(node.this, exp.Table):
            sources.append(node.this)
        sources.extend(join.this for join in node.args.get("joins") or [])
        for source in sources:
            if isinstance(source, exp.Table) and source.name and not source.args.get("joins"):
                plain = source.copy()
                plain.set("alias", None)
                self.tables[source.alias_or_name.lower()] = plain.sql()
            else:
                self.derived = True

    @classmethod
    def of(cls, node: exp.Expr) -> Scope | None:
        """The scope of the nearest statement level holding ``node``."""
        current: exp.Expr | None = node
        while current is not None and not isinstance(current, _SCOPES):
            current = current.parent
        return None if current is None else cls(current)

    def table_of(self, column: exp.Column, types: Mapping[str, Mapping[str, str]]) -> str | None:
        """The table (as written) a column belongs to, or ``None`` when unsure."""
        if column.table:
            return self.tables.get(column.table.lower())
        distinct = sorted(set(self.tables.values()))
        if len(distinct) == 1 and not self.derived:
            return distinct[0]
        name = column.name.lower()
        having = [t for t in distinct if name in types_of(types, t)]
        return having[0] if len(having) == 1 else None

    def column_type(self, column: exp.Column, types: Mapping[str, Mapping[str, str]]) -> str | None:
        """The declared type of a column from the schema, or ``None``."""
        table = self.table_of(column, types)
        if table is None:
            return None
        return types_of(types, table).get(column.name.lower())


def types_of(types: Mapping[str, Mapping[str, str]], table: str) -> Mapping[str, str]:
    """Column types of ``table`` (as written), by qualified then bare name."""
    return types.get(table.lower()) or types.get(bare_name(table)) or {}
