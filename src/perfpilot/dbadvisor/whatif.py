"""What-if costing: a query's cost now, and with an index that does not exist.

Two engines share one interface (:class:`WhatIf`):

* :class:`~perfpilot.dbadvisor.whatif_pg.PostgresWhatIf`: the planner's
  estimated cost (``EXPLAIN (FORMAT JSON)``), with hypopg's hypothetical
  indexes, which cost nothing to create and exist only in the session;
* :class:`~perfpilot.dbadvisor.whatif_sqlite.SQLiteWhatIf`: measured
  execution time in milliseconds, with a real index created (and analyzed)
  inside a transaction that is rolled back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from perfpilot.dbadvisor.candidates import IndexCandidate
from perfpilot.dbadvisor.database import Database


@dataclasses.dataclass(frozen=True)
class PlanCost:
    """The cost of one query under one set of indexes.

    Attributes:
        cost: Planner cost units (PostgreSQL) or measured milliseconds (SQLite).
        rows: Rows the largest table scan is expected to return (PostgreSQL),
            or rows the query returned (SQLite).
        indexes: Names of the indexes the plan uses.
        uses_candidate: Whether the plan uses the index being tried.
    """

    cost: float
    rows: float | None = None
    indexes: tuple[str, ...] = ()
    uses_candidate: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


class WhatIf(Protocol):
    """A costing engine bound to one open database."""

    #: ``plan cost`` or ``ms``.
    unit: str

    def baseline(self, sql: str) -> PlanCost:
        """The cost of ``sql`` with the indexes that exist.

        Raises:
            WhatIfError: The statement fails (syntax, timeout, permissions).
        """
        ...

    def with_index(self, candidate: IndexCandidate, sqls: Sequence[str]) -> list[PlanCost | None]:
        """The cost of each statement with ``candidate`` added (``None`` when one fails)."""
        ...

    def index_size_bytes(self, candidate: IndexCandidate) -> int | None:
        """The candidate's estimated size, when the engine can tell."""
        ...

    def close(self) -> None:
        """Drop whatever the engine created and end its transaction."""
        ...


class WhatIfError(Exception):
    """A statement failed while being costed; the message is safe to show."""


def open_whatif(db: Database) -> WhatIf:
    """The engine for ``db``'s kind.

    Raises:
        UsageError: PostgreSQL without hypopg on the server.
    """
    if db.kind == "postgresql":
        from perfpilot.dbadvisor.whatif_pg import PostgresWhatIf

        return PostgresWhatIf(db)
    from perfpilot.dbadvisor.whatif_sqlite import SQLiteWhatIf

    return SQLiteWhatIf(db)
