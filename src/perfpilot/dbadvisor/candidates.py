"""Index candidates for a query: which btree indexes could serve it.

From a :class:`~perfpilot.dbadvisor.shape.TableUse`, per table:

* one single-column candidate per equality, join-key and range column;
* the equality columns together (both orders when there are two, so
  queries that share a leading column can share an index);
* equality columns, then one range column;
* equality columns, then the ``ORDER BY`` columns (an index that returns rows
  in order lets ``LIMIT`` stop early), or else the ``GROUP BY`` columns;
* on PostgreSQL, each of those with ``INCLUDE`` of the other columns the query
  reads from the table (at most three), so an index-only scan can answer it.
  Whether covering pays is left to the what-if costing.

Candidates an existing usable index already serves (its key starts with the
candidate's columns, see :meth:`~perfpilot.dbadvisor.catalog.Catalog.serving_index`)
are dropped.
"""

from __future__ import annotations

import dataclasses
import re

from perfpilot.dbadvisor.catalog import Catalog, quote_identifier
from perfpilot.dbadvisor.shape import QueryShape, TableUse

#: Most key columns in one candidate.
MAX_KEY_COLUMNS = 4
#: Most columns a covering candidate adds with ``INCLUDE``.
MAX_INCLUDE_COLUMNS = 3
#: PostgreSQL's limit on identifier length.
MAX_NAME_LENGTH = 63


@dataclasses.dataclass(frozen=True, order=True)
class IndexCandidate:
    """A btree index that could be created.

    Attributes:
        table: Its table.
        columns: Key columns, in order.
        include: Non-key columns stored in the index (PostgreSQL ``INCLUDE``).
    """

    table: str
    columns: tuple[str, ...]
    include: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``table(a, b) INCLUDE (c)``, for people."""
        text = f"{self.table}({', '.join(self.columns)})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        return text

    @property
    def width(self) -> int:
        """Columns stored in the index: a proxy for its size and upkeep."""
        return len(self.columns) + len(self.include)

    @property
    def name(self) -> str:
        """A deterministic index name, at most 63 characters."""
        name = "_".join(("idx", self.table, *self.columns))
        if self.include:
            name += "_incl"
        name = re.sub(r"[^A-Za-z0-9_]", "_", name).lower()
        return name[:MAX_NAME_LENGTH]

    def ddl(self, kind: str, *, concurrently: bool = True) -> str:
        """The ``CREATE INDEX`` statement for ``kind`` (``postgresql`` or ``sqlite``).

        Example:
            >>> IndexCandidate("orders", ("customer_id",)).ddl("postgresql")
            'CREATE INDEX CONCURRENTLY idx_orders_customer_id ON orders (customer_id);'
        """
        keys = ", ".join(quote_identifier(c) for c in self.columns)
        head = (
            "CREATE INDEX CONCURRENTLY" if kind == "postgresql" and concurrently else "CREATE INDEX"
        )
        text = f"{head} {quote_identifier(self.name)} ON {quote_identifier(self.table)} ({keys})"
        if self.include and kind == "postgresql":
            text += f" INCLUDE ({', '.join(quote_identifier(c) for c in self.include)})"
        return text + ";"

    def hypothetical_ddl(self) -> str:
        """The statement handed to ``hypopg_create_index`` (no name, no ``CONCURRENTLY``)."""
        keys = ", ".join(quote_identifier(c) for c in self.columns)
        text = f"CREATE INDEX ON {quote_identifier(self.table)} ({keys})"
        if self.include:
            text += f" INCLUDE ({', '.join(quote_identifier(c) for c in self.include)})"
        return text


def candidates_for(shape: QueryShape, catalog: Catalog, kind: str) -> list[IndexCandidate]:
    """The index candidates for one query, those already served left out.

    Args:
        shape: The query's shape.
        catalog: The database's tables and indexes.
        kind: ``postgresql`` (covering candidates too) or ``sqlite``.

    Returns:
        Distinct candidates, in a stable order.
    """
    found: dict[IndexCandidate, None] = {}
    for use in shape.uses:
        info = catalog.table(use.table)
        if info is None:
            continue
        spelled = {c.lower(): c for c in info.columns}
        for listed in _key_lists(use):
            keys = tuple(spelled.get(c, c) for c in listed[:MAX_KEY_COLUMNS])
            plain = IndexCandidate(info.name, keys)
            if catalog.serving_index(info.name, keys) is None:
                found.setdefault(plain, None)
            if kind != "postgresql" or use.star:
                continue
            rest = tuple(spelled.get(c, c) for c in use.referenced if spelled.get(c, c) not in keys)
            if 0 < len(rest) <= MAX_INCLUDE_COLUMNS:
                covering = IndexCandidate(info.name, keys, rest)
                if catalog.serving_index(info.name, keys + rest) is None:
                    found.setdefault(covering, None)
    return list(found)


def _key_lists(use: TableUse) -> list[tuple[str, ...]]:
    """Key column lists for one table use, most specific last."""
    equal = list(dict.fromkeys(use.equality + use.joins))
    lists: list[tuple[str, ...]] = [(c,) for c in equal]
    lists += [(c,) for c in use.ranges]
    prefixes: list[tuple[str, ...]] = []
    if equal:
        prefixes.append(tuple(equal))
        if len(equal) == 2:
            prefixes.append((equal[1], equal[0]))
    lists += [p for p in prefixes if len(p) > 1]
    for prefix in prefixes:
        lists += [(*prefix, r) for r in use.ranges[:2]]
    tail = use.order_by or use.group_by
    if tail:
        for prefix in prefixes or [()]:
            extra = tuple(c for c in tail if c not in prefix)
            if extra:
                lists.append(prefix + extra)
    return list(dict.fromkeys(lists))
