"""The index advisor: workload in, recommended indexes and verdicts out.

``advise(db, workload)`` runs, for each query of the workload:

1. its shape and candidates (:mod:`~perfpilot.dbadvisor.shape`,
   :mod:`~perfpilot.dbadvisor.candidates`), placeholders filled with sampled
   values when the source kept none (:mod:`~perfpilot.dbadvisor.params`);
2. its baseline cost; queries below the floor (``min_cost``: 100 planner
   cost units on PostgreSQL, 1 ms measured on SQLite) are left alone;
3. each distinct candidate once, against every query above the floor that
   filters, joins or sorts on the candidate's first column
   (:mod:`~perfpilot.dbadvisor.whatif`);
4. the smallest set of indexes serving the queries whose cost they cut by
   ``min_gain`` (:mod:`~perfpilot.dbadvisor.selection`);
5. unless ``hints`` is off, the query hints of every statement of the
   workload, with the catalog's column types
   (:mod:`~perfpilot.dbadvisor.workload_hints`).

Every other query above the floor gets a verdict: served by an existing
index, or no btree index helps and why (leading-wildcard pattern, whole-table
aggregate, deep ``OFFSET``, low selectivity, no filter at all).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.candidates import IndexCandidate, candidates_for
from perfpilot.dbadvisor.catalog import Catalog, read_catalog
from perfpilot.dbadvisor.database import Database
from perfpilot.dbadvisor.params import Unresolved, fill_placeholders, has_placeholders
from perfpilot.dbadvisor.params import sample_column as _sample
from perfpilot.dbadvisor.selection import Trial, cover, serving
from perfpilot.dbadvisor.shape import QueryShape, analyze_query
from perfpilot.dbadvisor.whatif import PlanCost, WhatIf, WhatIfError, open_whatif
from perfpilot.dbadvisor.workload import Query, Workload
from perfpilot.dbadvisor.workload_hints import workload_hints

#: Default cost floor per database kind (planner units; milliseconds).
DEFAULT_MIN_COST = {"postgresql": 100.0, "sqlite": 1.0}
#: ``OFFSET`` from which pagination is called deep.
DEEP_OFFSET = 1000

#: Query verdicts.
STATUSES = ("recommended", "served", "no_index_helps", "below_floor", "skipped")


@dataclasses.dataclass(frozen=True)
class AdviceOptions:
    """Knobs of :func:`advise`.

    Attributes:
        min_gain: Smallest cost drop (fraction) that earns a recommendation.
        min_cost: Queries cheaper than this are left alone; ``None`` for
            :data:`DEFAULT_MIN_COST` of the database kind.
        near_best: See :func:`perfpilot.dbadvisor.selection.serving`.
        max_queries: The most queries costed (the costliest first).
        hints: Whether to add the query hints of the workload's statements.
    """

    min_gain: float = 0.5
    min_cost: float | None = None
    near_best: float = 0.25
    max_queries: int = 200
    hints: bool = True

    def floor(self, kind: str) -> float:
        """The cost floor for a database of ``kind``."""
        return DEFAULT_MIN_COST[kind] if self.min_cost is None else self.min_cost


@dataclasses.dataclass(frozen=True)
class QueryOutcome:
    """What the advisor concluded about one query.

    Attributes:
        query: The query.
        status: One of :data:`STATUSES`.
        reason: One line: why.
        remedy: For ``no_index_helps``: ``trigram``, ``summary``, ``keyset``,
            ``selectivity`` or ``unbounded``; else ``""``.
        values: ``real`` (as the source ran it), ``sampled`` (placeholders
            filled from the tables) or ``none`` (no parameters).
        sql_run: The statement costed, when one was.
        before: Its cost with the existing indexes.
        after: Its cost with the recommended index (``recommended`` only).
        index: The recommended index serving it, as a label.
        tables: The tables it reads.
    """

    query: Query
    status: str
    reason: str = ""
    remedy: str = ""
    values: str = "none"
    sql_run: str | None = None
    before: PlanCost | None = None
    after: float | None = None
    index: str | None = None
    tables: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "query": self.query.to_dict(),
            "status": self.status,
            "reason": self.reason,
            "remedy": self.remedy,
            "values": self.values,
            "sql_run": self.sql_run,
            "before": None if self.before is None else self.before.to_dict(),
            "after": self.after,
            "index": self.index,
            "tables": list(self.tables),
        }


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One index to create.

    Attributes:
        candidate: The index.
        ddl: Its ``CREATE INDEX`` statement.
        trials: The queries it serves (positions in ``Advice.outcomes``),
            with their costs before and after.
        table_rows: Rows in its table.
        table_writes_per_s: Row writes per second on its table, when known.
        size_bytes: Estimated size, when known.
    """

    candidate: IndexCandidate
    ddl: str
    trials: tuple[Trial, ...]
    table_rows: int = 0
    table_writes_per_s: float | None = None
    size_bytes: int | None = None


@dataclasses.dataclass(frozen=True)
class Advice:
    """The advisor's result for one database and workload.

    Attributes:
        database: The DSN without its password, or the SQLite path.
        kind: ``postgresql`` or ``sqlite``.
        unit: The cost unit: ``plan cost`` or ``ms``.
        source: Where the workload came from.
        window_s: Seconds the workload's counts cover, when known.
        options: The options used.
        recommendations: The indexes to create, most useful first.
        outcomes: One per query considered, in workload order.
        hints: Query hints (:func:`~perfpilot.dbadvisor.workload_hints.workload_hints`),
            empty when ``options.hints`` is off.
    """

    database: str
    kind: str
    unit: str
    source: str
    window_s: float | None
    options: AdviceOptions
    recommendations: tuple[Recommendation, ...]
    outcomes: tuple[QueryOutcome, ...]
    hints: tuple[Finding, ...] = ()

    def summary(self) -> str:
        """One line: how many statements were advised on, and their verdicts.

        Example: ``Index advice on 4 statements from sql (ms): 1 recommended,
        2 no index helps, 1 below the cost floor; 3 query hints.``
        """
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        words = {
            "recommended": "recommended",
            "served": "served by an existing index",
            "no_index_helps": "no index helps",
            "below_floor": "below the cost floor",
            "skipped": "skipped",
        }
        verdicts = ", ".join(f"{counts[s]} {words[s]}" for s in STATUSES if counts.get(s))
        line = (
            f"Index advice on {len(self.outcomes)} statement(s) from {self.source} "
            f"({self.unit}): {verdicts or 'nothing to cost'}"
        )
        if self.options.hints:
            line += f"; {len(self.hints)} query hint(s)"
        return line + "."


@dataclasses.dataclass
class _Prepared:
    position: int
    shape: QueryShape
    sql: str
    values: str
    before: PlanCost
    candidates: list[IndexCandidate]


def advise(db: Database, workload: Workload, options: AdviceOptions | None = None) -> Advice:
    """Recommend indexes for ``workload`` on ``db``, with measured or estimated gains.

    Args:
        db: An open database (:func:`~perfpilot.dbadvisor.database.open_database`).
        workload: The queries to advise on.
        options: Thresholds; defaults when ``None``.

    Returns:
        The advice; the database is left as it was.

    Raises:
        UsageError: PostgreSQL without hypopg.

    Example::

        with open_database("shop.db") as db:
            advice = advise(db, sql_file_workload("queries.sql", dialect=db.kind))
    """
    opts = options or AdviceOptions()
    engine = open_whatif(db)
    try:
        catalog = read_catalog(db)
        return _advise(db, engine, catalog, workload, opts)
    finally:
        engine.close()


def _advise(
    db: Database, engine: WhatIf, catalog: Catalog, workload: Workload, opts: AdviceOptions
) -> Advice:
    columns = catalog.columns_of()
    samples: dict[tuple[str, str], list[Any]] = {}

    def sampler(table: str, column: str) -> list[Any]:
        key = (table, column)
        if key not in samples:
            samples[key] = _sample(db, table, column)
        return samples[key]

    outcomes: list[QueryOutcome] = []
    prepared: list[_Prepared] = []
    floor = opts.floor(db.kind)
    for position, query in enumerate(workload.queries[: opts.max_queries]):
        outcome, ready = _prepare(db, engine, catalog, query, columns, sampler, floor)
        outcomes.append(outcome)
        if ready is not None:
            ready.position = position
            prepared.append(ready)
    trials = _trials(engine, prepared)
    choices = cover(serving(trials, min_gain=opts.min_gain, near_best=opts.near_best))
    recommendations = []
    for choice in choices:
        info = catalog.table(choice.candidate.table)
        recommendations.append(
            Recommendation(
                candidate=choice.candidate,
                ddl=choice.candidate.ddl(db.kind),
                trials=choice.trials,
                table_rows=info.rows if info else 0,
                table_writes_per_s=info.writes_per_s if info else None,
                size_bytes=engine.index_size_bytes(choice.candidate),
            )
        )
        for trial in choice.trials:
            outcomes[trial.query] = dataclasses.replace(
                outcomes[trial.query],
                status="recommended",
                reason=f"{trial.gain:.0%} cheaper with {choice.candidate.label}",
                after=trial.after,
                index=choice.candidate.label,
            )
    best_gain: dict[int, float] = {}
    for trial in trials:
        best_gain[trial.query] = max(best_gain.get(trial.query, 0.0), trial.gain)
    for ready in prepared:
        if outcomes[ready.position].status == "pending":
            outcomes[ready.position] = _verdict(
                outcomes[ready.position], ready, best_gain.get(ready.position), catalog, db.kind
            )
    return Advice(
        database=db.display,
        kind=db.kind,
        unit=engine.unit,
        source=workload.source,
        window_s=workload.window_s,
        options=opts,
        recommendations=tuple(recommendations),
        outcomes=tuple(outcomes),
        hints=tuple(
            workload_hints(workload, db.kind, schema=catalog.column_types()) if opts.hints else ()
        ),
    )


def _prepare(
    db: Database,
    engine: WhatIf,
    catalog: Catalog,
    query: Query,
    columns: dict[str, tuple[str, ...]],
    sampler: Callable[[str, str], list[Any]],
    floor: float,
) -> tuple[QueryOutcome, _Prepared | None]:
    text = query.example or query.sql
    shape = analyze_query(text, db.kind, columns)
    if shape.error is not None:
        return QueryOutcome(query, "skipped", f"cannot parse: {shape.error}"), None
    if not shape.is_select:
        return QueryOutcome(
            query, "skipped", "not a query: only SELECT statements are costed"
        ), None
    tables = tuple(dict.fromkeys(use.table for use in shape.uses))
    if not tables:
        return QueryOutcome(query, "skipped", "reads no table of this database"), None
    values = "real" if query.example is not None else "none"
    sql = text
    if has_placeholders(text, db.kind):
        try:
            seen_rows = query.rows_per_call
            limit = max(1, round(seen_rows)) if seen_rows is not None and seen_rows >= 1 else None
            sql = fill_placeholders(text, db.kind, sampler, columns, limit=limit)
        except Unresolved as exc:
            return QueryOutcome(query, "skipped", f"no values for placeholders: {exc}"), None
        values = "sampled"
    try:
        before = engine.baseline(sql)
    except WhatIfError as exc:
        reason = f"cannot be costed: {exc}"
        return QueryOutcome(query, "skipped", reason, values=values, sql_run=sql), None
    outcome = QueryOutcome(
        query, "pending", values=values, sql_run=sql, before=before, tables=tables
    )
    if before.cost < floor:
        unit = "ms" if db.kind == "sqlite" else "cost units"
        reason = f"cheap already ({before.cost:.3g} {unit}, floor {floor:.3g})"
        measured = query.mean_time_ms
        if values == "sampled" and measured is not None and measured >= max(floor, 1.0):
            # the app's own figure says otherwise: its values were not recorded
            reason += (
                f", though the app measured {measured:.3g} ms per call: the values "
                "sampled here may not be the app's (--from-log or --sql with real "
                "statements give real ones)"
            )
        return dataclasses.replace(outcome, status="below_floor", reason=reason), None
    candidates = candidates_for(shape, catalog, db.kind)
    if _whole_table_aggregate(shape):
        # An index would only swap a scan of the table for a scan of a copy of
        # it: still every row, still growing with the table.
        candidates = []
    ready = _Prepared(0, shape, sql, values, before, candidates)
    return outcome, ready


def _trials(engine: WhatIf, prepared: list[_Prepared]) -> list[Trial]:
    """Each distinct candidate tried once against every query that reads its table
    (not only the queries that proposed it: a covering index one query asked
    for may serve another as well)."""
    candidates: dict[IndexCandidate, None] = {}
    readers: dict[str, list[_Prepared]] = {}
    for ready in prepared:
        for candidate in ready.candidates:
            candidates.setdefault(candidate, None)
        for table in dict.fromkeys(use.table.lower() for use in ready.shape.uses):
            if not _whole_table_aggregate(ready.shape):
                readers.setdefault(table, []).append(ready)
    trials = []
    for candidate in candidates:
        readies = [r for r in readers.get(candidate.table.lower(), []) if _leads(candidate, r)]
        if not readies:
            continue
        costs = engine.with_index(candidate, [r.sql for r in readies])
        for ready, cost in zip(readies, costs, strict=True):
            if cost is None:
                continue
            after = cost.cost if cost.uses_candidate else ready.before.cost
            trials.append(Trial(ready.position, candidate, ready.before.cost, after))
    return trials


def _verdict(
    outcome: QueryOutcome,
    ready: _Prepared,
    best_gain: float | None,
    catalog: Catalog,
    kind: str,
) -> QueryOutcome:
    """Why no index is recommended for a query above the floor."""
    shape = ready.shape

    def none_helps(remedy: str, reason: str) -> QueryOutcome:
        return dataclasses.replace(outcome, status="no_index_helps", remedy=remedy, reason=reason)

    if shape.leading_wildcard:
        columns = ", ".join(shape.leading_wildcard)
        return none_helps("trigram", f"pattern starts with a wildcard on {columns}")
    if shape.offset is not None and shape.offset >= DEEP_OFFSET:
        return none_helps("keyset", f"OFFSET {shape.offset} reads and discards that many rows")
    if _whole_table_aggregate(shape):
        return none_helps("summary", "aggregates every row of the table")
    if ready.before.indexes:
        used = ", ".join(ready.before.indexes)
        return dataclasses.replace(outcome, status="served", reason=f"uses {used}")
    if not any(use.filtered or use.order_by for use in shape.uses):
        return none_helps("unbounded", "no filter: reads the whole table")
    gain = "" if best_gain is None else f" (best candidate: {best_gain:.0%} cheaper)"
    rows = ""
    if kind == "postgresql" and ready.before.rows is not None:
        infos = [catalog.table(t) for t in outcome.tables]
        total = sum(info.rows for info in infos if info is not None)
        rows = f", about {ready.before.rows:,.0f} of {total:,} rows"
    return none_helps("selectivity", f"the filter matches too many rows{rows}{gain}")


def _leads(candidate: IndexCandidate, ready: _Prepared) -> bool:
    """Whether the query filters, joins or sorts on the candidate's first column.

    Only then is the index used to look rows up (or to read them in order);
    otherwise a plan can use it only as a narrower copy of the table (a full
    index scan) or by skip-scan, and neither lasts as the table grows.
    """
    lead = candidate.columns[0].lower()
    for use in ready.shape.uses:
        if use.table.lower() != candidate.table.lower():
            continue
        if lead in use.equality or lead in use.ranges or lead in use.joins:
            return True
        if use.order_by and use.order_by[0] == lead:
            return True
    return False


def _whole_table_aggregate(shape: QueryShape) -> bool:
    """An aggregate over every row: no filter, no ``LIMIT``."""
    return shape.aggregate and shape.limit is None and not any(u.filtered for u in shape.uses)
