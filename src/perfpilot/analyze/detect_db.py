"""Database detectors: N+1 queries, slow queries (and missing indexes), unbounded
result sets, ``SELECT *``.

They read the query aggregates (per fingerprint and route) and the kept traces
(whose ``db`` spans carry the normalized statement and its call site).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.analyze.remedies import (
    index_sql,
    n_plus_one_code,
    pagination_code,
    select_columns_code,
)
from perfpilot.analyze.sqlshape import shape
from perfpilot.analyze.traffic import PSEUDO_ROUTES, RouteTraffic, route_traffic
from perfpilot.app_records import QueryRow, Span, Trace, add_rows

#: Databases whose ``CREATE INDEX`` syntax the missing-index guess writes.
INDEXED_DBS = frozenset(("sqlite", "postgresql"))


def short_sql(sql: str, limit: int = 80) -> str:
    """The statement on one line, cut to ``limit`` characters."""
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _traces_by_route(traces: Iterable[Trace]) -> dict[str, list[Trace]]:
    by_route: dict[str, list[Trace]] = {}
    for trace in traces:
        by_route.setdefault(trace.route, []).append(trace)
    return by_route


def n_plus_one(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """One ``SELECT`` fingerprint run many times per request: the N+1 pattern.

    A (route, fingerprint) is reported when it runs at least
    ``n_plus_one_min_repeats`` times per request and the repeats take at least
    ``n_plus_one_min_total_ms`` together, on average or in at least one kept
    trace (Sentry's rule, judged per event); or, with low severity, when it runs
    at least ``n_plus_one_structural_repeats`` times per request however fast.
    """
    traffic = route_traffic(app)
    traces = _traces_by_route(app.traces)
    min_total_s = options.n_plus_one_min_total_ms / 1000
    findings = []
    for query in app.queries:
        route = traffic.get(query.route)
        if query.route in PSEUDO_ROUTES or route is None or route.requests == 0:
            continue
        per_request = query.count / route.requests
        if per_request < options.n_plus_one_min_repeats or not shape(query.sql, query.db).select:
            continue
        total_s = query.latency.sum_s / route.requests
        crossing: list[tuple[float, int, Trace]] = []
        for trace in traces.get(query.route, ()):
            spans = [s for s in trace.spans if s.kind == "db" and s.name == query.sql]
            repeat_s = sum(s.duration_s for s in spans)
            if len(spans) >= options.n_plus_one_min_repeats and repeat_s >= min_total_s:
                crossing.append((repeat_s, len(spans), trace))
        on_average = total_s >= min_total_s
        if not (on_average or crossing or per_request >= options.n_plus_one_structural_repeats):
            continue
        severity = "high" if on_average else "medium" if crossing else "low"
        sample = max(crossing, key=lambda c: c[0])[2] if crossing else None
        if sample is None:
            sample = next(
                (t for t in traces.get(query.route, ()) if "repeated_query" in t.reasons), None
            )
        parent = _parent_span(sample, query.sql) if sample is not None else None
        code, language = n_plus_one_code(query.sql, query.db)
        saving_s = total_s * (1 - 1 / per_request)
        evidence = {
            "route": query.route,
            "fingerprint": query.fingerprint,
            "sql": query.sql,
            "db": query.db,
            "requests": route.requests,
            "executions": query.count,
            "per_request": round(per_request, 2),
            "time_per_request_ms": total_s * 1000,
            "p50_ms": query.latency.percentile(50) * 1000,
            "traces_over_threshold": len(crossing),
            "max_trace_repeat_ms": max((c[0] for c in crossing), default=0.0) * 1000,
            "call_site": query.call_site,
            "parent_sql": parent.name if parent is not None else None,
            "parent_call_site": parent.detail.get("call_site") if parent is not None else None,
        }
        findings.append(
            Finding(
                id=finding_id("n_plus_one", query.route, query.fingerprint),
                kind="n_plus_one",
                severity=severity,
                title=(
                    f"N+1 queries on {route.label}: {per_request:.0f} x "
                    f"`{short_sql(query.sql, 60)}` per request"
                ),
                subject=f"{route.label} {short_sql(query.sql)}",
                evidence=evidence,
                impact=Impact(
                    time_per_request_s=saving_s,
                    requests_per_s=route.requests_per_s,
                    note=f"{per_request:.0f} queries per request become 1 (upper bound)",
                ),
                fix=Fix(
                    summary=(
                        "Load the rows for all parents in one query: SQLAlchemy "
                        "selectinload/joinedload, Django prefetch_related/select_related, "
                        "or one WHERE ... IN (...) query in raw SQL."
                    ),
                    code=code,
                    language=language,
                    location=query.call_site,
                ),
                confidence=0.9 if severity != "low" else 0.7,
                trace=sample,
            )
        )
    return findings


def _parent_span(trace: Trace, sql: str) -> Span | None:
    """The database span just before the first repeat: the query that yields the N."""
    previous: Span | None = None
    for span in trace.spans:
        if span.kind != "db":
            continue
        if span.name == sql:
            return previous
        previous = span
    return None


@dataclasses.dataclass(frozen=True)
class _Statement:
    """One fingerprint's rows merged, with the routes that ran it, most time first.

    The fingerprint-level detectors (slow, unbounded, ``SELECT *``) share its
    evidence and impact: the statement's time per request of the routes that
    ran it, at their request rate.
    """

    query: QueryRow
    per_route: list[tuple[QueryRow, RouteTraffic]]

    @property
    def top(self) -> RouteTraffic:
        """The route that spends the most time in the statement."""
        return self.per_route[0][1]

    @property
    def rows_per_call(self) -> float:
        """Rows returned per execution."""
        return self.query.rows / self.query.count if self.query.count else 0.0

    def evidence(self, **extra: Any) -> dict[str, Any]:
        """The common evidence, ``extra`` before the call site."""
        query = self.query
        return {
            "route": self.top.route,
            "routes": [t.route for _, t in self.per_route],
            "fingerprint": query.fingerprint,
            "sql": query.sql,
            "db": query.db,
            "calls": query.count,
            "rows_per_call": round(self.rows_per_call, 2),
            **extra,
            "call_site": query.call_site,
        }

    def impact(self, note: str) -> Impact:
        """The statement's whole time per request of its routes, at their request rate."""
        requests = sum(t.requests for _, t in self.per_route)
        return Impact(
            time_per_request_s=sum(r.latency.sum_s for r, _ in self.per_route) / max(1, requests),
            requests_per_s=sum(t.requests_per_s for _, t in self.per_route),
            note=note,
        )

    def sample_trace(self, traces: Iterable[Trace]) -> Trace | None:
        """The kept trace of the top route with the slowest execution of the statement."""
        return _sample_trace(traces, self.per_route[0][0])


def _statements(app: AppData) -> list[_Statement]:
    """Query rows merged per (fingerprint, database), each with the routes that ran it
    (pseudo routes and routes without request rows left out); none without such a route."""
    traffic = route_traffic(app)
    groups: dict[tuple[str, str], list[QueryRow]] = {}
    for row in app.queries:
        groups.setdefault((row.fingerprint, row.db), []).append(row)
    statements = []
    for rows in groups.values():
        merged = rows[0]
        for row in rows[1:]:
            merged = add_rows(merged, row, keep=("route", "fingerprint", "db", "sql", "call_site"))
        per_route = sorted(
            (
                (row, traffic[row.route])
                for row in rows
                if row.route not in PSEUDO_ROUTES and row.route in traffic
            ),
            key=lambda pair: pair[0].latency.sum_s,
            reverse=True,
        )
        if per_route:
            statements.append(_Statement(merged, per_route))
    return statements


def slow_queries(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Fingerprints slow at p95, or slow at the median while taking most of a route's time.

    The fix is a concrete ``CREATE INDEX`` (kind ``missing_index``) only when
    the data justify it: a single-table lookup by equality returning a few rows
    per call whose *median* is over ``slow_query_min_p50_ms`` (an indexed
    lookup takes well under a millisecond); many rows per call get pagination;
    anything else gets ``perfpilot db advise``, which costs candidate indexes.
    """
    findings = []
    for statement in _statements(app):
        query, top = statement.query, statement.top
        if query.count < options.slow_query_min_calls:
            continue
        p50, p95 = (v * 1000 for v in query.latency.percentiles([50, 95]))
        shares = [
            row.latency.sum_s / t.total_s if t.total_s else 0.0 for row, t in statement.per_route
        ]
        slow_tail = p95 > options.slow_query_p95_ms
        dominant = max(shares) >= options.slow_query_min_share and (
            p50 >= options.slow_query_min_p50_ms
        )
        if not (slow_tail or dominant):
            continue
        facts = shape(query.sql, query.db)
        rows_per_call = statement.rows_per_call
        evidence = statement.evidence(
            p50_ms=p50,
            p95_ms=p95,
            mean_ms=query.latency.mean_s * 1000,
            total_s=query.latency.sum_s,
            share_of_route_time=round(shares[0], 3),
        )
        kind = "slow_query"
        confidence = 0.8
        if (
            facts.select
            and facts.lookup_columns
            and rows_per_call <= 10
            and p50 >= options.slow_query_min_p50_ms
            and query.db in INDEXED_DBS
        ):
            kind = "missing_index"
            table = facts.tables[0]
            fix = Fix(
                summary=(
                    f"Index {table}({', '.join(facts.lookup_columns)}): this lookup by equality "
                    f"returns {rows_per_call:.1f} rows per call yet its median is {p50:.0f} ms, "
                    "the signature of a full table scan. Confirm the plan with "
                    "`perfpilot db advise` (it costs the index before you create it)."
                ),
                code=index_sql(table, facts.lookup_columns),
                language="sql",
                location=query.call_site,
            )
            evidence["index_guess"] = {"table": table, "columns": list(facts.lookup_columns)}
            confidence = 0.7
        elif rows_per_call >= options.unbounded_rows_per_call:
            code, language = pagination_code(query.sql)
            fix = Fix(
                summary=(
                    f"It returns {rows_per_call:.0f} rows per call: fetch a page at a time "
                    "(keyset pagination) and only the columns needed."
                ),
                code=code,
                language=language,
                location=query.call_site,
            )
        else:
            fix = Fix(
                summary=(
                    "Run `perfpilot db advise` for the query plan and a costed index "
                    "suggestion for this statement."
                ),
                code=(
                    "# the queries the app recorded, costed against your database:\n"
                    "perfpilot db advise DATABASE_URL --from-store\n"
                    f"# this statement: {' '.join(query.sql.split())}"
                ),
                language="shell",
                location=query.call_site,
            )
            confidence = 0.6
        severity = "high" if slow_tail and max(shares) >= options.slow_query_min_share else "medium"
        findings.append(
            Finding(
                id=finding_id(kind, query.fingerprint, query.db),
                kind=kind,
                severity=severity,
                title=(
                    f"Slow query on {top.label}: p95 {p95:.0f} ms, median {p50:.0f} ms, "
                    f"{shares[0]:.0%} of the route's time"
                ),
                subject=short_sql(query.sql),
                evidence=evidence,
                impact=statement.impact(
                    "the query's whole time per request (upper bound of the saving)"
                ),
                fix=fix,
                confidence=confidence,
                trace=statement.sample_trace(app.traces),
            )
        )
    return findings


def _sample_trace(traces: Iterable[Trace], query: QueryRow) -> Trace | None:
    best: tuple[float, Trace] | None = None
    for trace in traces:
        if trace.route != query.route:
            continue
        for span in trace.spans:
            if (
                span.kind == "db"
                and span.name == query.sql
                and (best is None or span.duration_s > best[0])
            ):
                best = (span.duration_s, trace)
    return None if best is None else best[1]


def unbounded_results(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """``SELECT`` without ``LIMIT`` returning ``unbounded_rows_per_call`` rows or more per call."""
    findings = []
    for statement in _statements(app):
        query = statement.query
        facts = shape(query.sql, query.db)
        if not facts.select or facts.limited or facts.aggregate_only:
            continue
        rows_per_call = statement.rows_per_call
        if rows_per_call < options.unbounded_rows_per_call:
            continue
        code, language = pagination_code(query.sql)
        findings.append(
            Finding(
                id=finding_id("unbounded_result", query.fingerprint, query.db),
                kind="unbounded_result",
                severity="medium",
                title=(
                    f"Unbounded result set on {statement.top.label}: "
                    f"{rows_per_call:.0f} rows per call, no LIMIT"
                ),
                subject=short_sql(query.sql),
                evidence=statement.evidence(mean_ms=query.latency.mean_s * 1000),
                impact=statement.impact(
                    "the query's time per request; the rows also cost memory and transfer"
                ),
                fix=Fix(
                    summary="Add a LIMIT and paginate; the result grows with the table.",
                    code=code,
                    language=language,
                    location=query.call_site,
                ),
                confidence=0.8,
                trace=statement.sample_trace(app.traces),
            )
        )
    return findings


def select_star(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """``SELECT *`` returning many rows per call (single-row lookups are left alone).

    The table's width is not known from monitoring data, so the finding is low
    severity and low confidence: it is only worth fixing on a wide table.
    """
    findings = []
    for statement in _statements(app):
        query = statement.query
        if not shape(query.sql, query.db).star or not query.count:
            continue
        rows_per_call = statement.rows_per_call
        if rows_per_call < options.select_star_rows_per_call:
            continue
        code, language = select_columns_code(query.sql)
        findings.append(
            Finding(
                id=finding_id("select_star", query.fingerprint, query.db),
                kind="select_star",
                severity="low",
                title=(
                    f"SELECT * on {statement.top.label}: {rows_per_call:.0f} rows per call, "
                    "every column"
                ),
                subject=short_sql(query.sql),
                evidence=statement.evidence(table_width=None),
                impact=Impact(note="unknown: depends on how many columns the code does not use"),
                fix=Fix(
                    summary="Select only the columns the code uses (less I/O, covering indexes).",
                    code=code,
                    language=language,
                    location=query.call_site,
                ),
                confidence=0.4,
            )
        )
    return findings
