"""What-if costing on SQLite: create the index for real, measure, roll back.

SQLite has no hypothetical indexes, so each candidate is tried as::

    BEGIN; CREATE INDEX perfpilot_whatif ON t (...); ANALYZE perfpilot_whatif;
    EXPLAIN QUERY PLAN <query>; <query, timed>; ...; ROLLBACK

The connection is ``PRAGMA query_only`` except while the trial index is
created and analyzed; the rollback removes the index and the statistics
(``sqlite_stat1`` too, when the ``ANALYZE`` created it), so the file is left
as it was. A query is timed (best of up to five runs, one when a run is
slow) only when its plan uses the trial index; otherwise its time is the
baseline's. The cost unit is measured milliseconds.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence

from perfpilot.dbadvisor.candidates import IndexCandidate
from perfpilot.dbadvisor.catalog import quote_identifier
from perfpilot.dbadvisor.database import Database
from perfpilot.dbadvisor.whatif import PlanCost, WhatIfError

#: Name of the trial index (it never outlives its transaction).
TRIAL_INDEX = "perfpilot_whatif"
#: Runs per timing, at most (fast queries get them all: the minimum of a few
#: runs is what resists a busy machine's noise).
RUNS = 5
#: Past this many milliseconds, one run is enough.
SLOW_RUN_MS = 200.0

_USING = re.compile(r"USING (?:COVERING )?INDEX (\S+)")


class SQLiteWhatIf:
    """Measured times with and without trial indexes.

    Args:
        db: An open SQLite :class:`~perfpilot.dbadvisor.database.Database`.
    """

    unit = "ms"

    def __init__(self, db: Database) -> None:
        self.db = db

    def baseline(self, sql: str) -> PlanCost:
        """The measured time of ``sql`` with the existing indexes.

        Raises:
            WhatIfError: The statement fails or runs past the timeout.
        """
        indexes = self._plan(sql)
        ms, rows = self._time(sql)
        return PlanCost(cost=ms, rows=rows, indexes=indexes)

    def with_index(self, candidate: IndexCandidate, sqls: Sequence[str]) -> list[PlanCost | None]:
        """The time of each of ``sqls`` with ``candidate`` created in a rolled-back transaction.

        A statement whose plan does not use the index is not timed: its entry
        has ``uses_candidate=False`` and a NaN cost, and the caller keeps its
        baseline. ``None`` marks a statement that failed.
        """
        conn = self.db.conn
        keys = ", ".join(quote_identifier(c) for c in candidate.columns)
        out: list[PlanCost | None] = []
        conn.execute("PRAGMA query_only = OFF")
        try:
            conn.execute("BEGIN")
            try:
                self.db.arm_timeout()
                conn.execute(
                    f"CREATE INDEX {TRIAL_INDEX} ON {quote_identifier(candidate.table)} ({keys})"
                )
                conn.execute(f"ANALYZE {TRIAL_INDEX}")
                conn.execute("PRAGMA query_only = ON")
                for sql in sqls:
                    out.append(self._try(sql))
            except sqlite3.Error:
                out += [None] * (len(sqls) - len(out))
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.execute("PRAGMA query_only = ON")
        return out

    def index_size_bytes(self, candidate: IndexCandidate) -> int | None:
        """Not estimated on SQLite."""
        return None

    def close(self) -> None:
        """Nothing to undo: every trial was rolled back."""
        if self.db.conn.in_transaction:
            self.db.conn.execute("ROLLBACK")

    def _try(self, sql: str) -> PlanCost | None:
        try:
            indexes = self._plan(sql)
            if TRIAL_INDEX not in indexes:
                return PlanCost(cost=float("nan"), indexes=indexes, uses_candidate=False)
            ms, rows = self._time(sql)
        except WhatIfError:
            return None
        return PlanCost(cost=ms, rows=rows, indexes=indexes, uses_candidate=True)

    def _plan(self, sql: str) -> tuple[str, ...]:
        try:
            self.db.arm_timeout()
            rows = self.db.conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        except sqlite3.Error as exc:
            raise WhatIfError(str(exc)) from None
        names = []
        for row in rows:
            match = _USING.search(str(row[-1]))
            if match:
                names.append(match.group(1))
        return tuple(dict.fromkeys(names))

    def _time(self, sql: str) -> tuple[float, float]:
        best = float("inf")
        rows = 0
        for _ in range(RUNS):
            self.db.arm_timeout()
            start = time.perf_counter()
            try:
                rows = len(self.db.conn.execute(sql).fetchall())
            except sqlite3.Error as exc:
                raise WhatIfError("timed out" if "interrupt" in str(exc) else str(exc)) from None
            elapsed = (time.perf_counter() - start) * 1000.0
            best = min(best, elapsed)
            if elapsed > SLOW_RUN_MS:
                break
        return best, float(rows)
