"""What-if costing on PostgreSQL with hypopg's hypothetical indexes.

All the advisor's work on a PostgreSQL database happens in one transaction
that is rolled back at the end. When hypopg is installed in the database the
transaction is read-only (``default_transaction_read_only``; hypopg works
there, its indexes live in the session's memory). When only the server has
it, the transaction starts read-write to ``CREATE EXTENSION hypopg``, and
the rollback removes the extension again. Each ``EXPLAIN`` runs under a
savepoint, so one failing statement (a timeout, a table missing from this
database) does not end the run; ``hypopg_reset()`` clears the session's
hypothetical indexes on close.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from perfpilot.dbadvisor.candidates import IndexCandidate
from perfpilot.dbadvisor.database import Database
from perfpilot.dbadvisor.whatif import PlanCost, WhatIfError
from perfpilot.errors import UsageError


class PostgresWhatIf:
    """Planner costs with and without hypothetical indexes.

    Args:
        db: An open PostgreSQL :class:`~perfpilot.dbadvisor.database.Database`.

    Raises:
        UsageError: hypopg is neither in the database nor on the server, or
            it cannot be created (not enough privilege).
    """

    unit = "plan cost"

    def __init__(self, db: Database) -> None:
        self.db = db
        conn = db.conn
        conn.rollback()
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").fetchone()
        if installed is None:
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'"
            ).fetchone()
            if available is None:
                raise UsageError(
                    "the PostgreSQL server lacks the hypopg extension that what-if costing needs "
                    "(Debian: apt-get install postgresql-15-hypopg)"
                )
            conn.rollback()
            try:
                conn.execute("SET TRANSACTION READ WRITE")
                conn.execute("CREATE EXTENSION hypopg")
            except Exception as exc:
                conn.rollback()
                raise UsageError(
                    "hypopg is not installed in this database and cannot be created here "
                    f"({db.scrub(str(exc).strip())}); run CREATE EXTENSION hypopg as its owner"
                ) from None
        self.created_extension = installed is None

    def baseline(self, sql: str) -> PlanCost:
        """The planner's cost of ``sql`` with the existing indexes.

        Raises:
            WhatIfError: EXPLAIN fails.
        """
        return self._explain(sql, None)

    def with_index(self, candidate: IndexCandidate, sqls: Sequence[str]) -> list[PlanCost | None]:
        """The cost of each of ``sqls`` with a hypothetical ``candidate``."""
        conn = self.db.conn
        try:
            with conn.transaction():
                row = conn.execute(
                    "SELECT indexrelid, indexname FROM hypopg_create_index(%s)",
                    (candidate.hypothetical_ddl(),),
                ).fetchone()
        except Exception:
            return [None] * len(sqls)
        oid, name = row
        try:
            out: list[PlanCost | None] = []
            for sql in sqls:
                try:
                    out.append(self._explain(sql, name))
                except WhatIfError:
                    out.append(None)
            return out
        finally:
            conn.execute("SELECT hypopg_drop_index(%s)", (oid,))

    def index_size_bytes(self, candidate: IndexCandidate) -> int | None:
        """hypopg's size estimate for ``candidate`` (from the table's statistics)."""
        conn = self.db.conn
        try:
            with conn.transaction():
                oid = conn.execute(
                    "SELECT indexrelid FROM hypopg_create_index(%s)",
                    (candidate.hypothetical_ddl(),),
                ).fetchone()[0]
                size = conn.execute("SELECT hypopg_relation_size(%s)", (oid,)).fetchone()[0]
                conn.execute("SELECT hypopg_drop_index(%s)", (oid,))
        except Exception:
            return None
        return int(size)

    def close(self) -> None:
        """Clear the hypothetical indexes and roll the transaction back."""
        conn = self.db.conn
        try:
            conn.rollback()
            if not self.created_extension:
                conn.execute("SELECT hypopg_reset()")
        finally:
            conn.rollback()

    def _explain(self, sql: str, candidate_name: str | None) -> PlanCost:
        conn = self.db.conn
        try:
            with conn.transaction():
                raw = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()[0]
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WhatIfError(self.db.scrub(message)) from None
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        indexes = tuple(dict.fromkeys(_index_names(plan)))
        scans = [float(rows) for rows in _scan_rows(plan)]
        return PlanCost(
            cost=float(plan["Total Cost"]),
            rows=max(scans) if scans else float(plan.get("Plan Rows", 0.0)),
            indexes=indexes,
            uses_candidate=candidate_name is not None and candidate_name in indexes,
        )


def _index_names(plan: dict[str, Any]) -> Iterator[str]:
    name = plan.get("Index Name")
    if name:
        yield str(name)
    for child in plan.get("Plans", ()):
        yield from _index_names(child)


def _scan_rows(plan: dict[str, Any]) -> Iterator[float]:
    """Rows each table scan of the plan is expected to return (a loop's count included)."""
    if plan.get("Relation Name"):
        yield float(plan.get("Plan Rows", 0.0))
    for child in plan.get("Plans", ()):
        yield from _scan_rows(child)
