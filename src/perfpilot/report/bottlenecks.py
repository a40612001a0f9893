"""Bottleneck Identification: where the time and the money go.

Routes are ranked by the total time spent serving them (mean × requests), each
with its mean time split between application code, the database, outbound
calls and timed cache commands (:mod:`perfpilot.analyze.breakdown`), and its
cache lookups. Query fingerprints are ranked by total time, outbound endpoints
by cost then time.

Cache time is that of redis-py commands and of ``cache_event(...,
duration_s=)``; an in-process cache reported without a duration stays in
``app_ms``. Without in-app data the routes are the load run's request names,
with no split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.breakdown import (
    CacheHitRate,
    OutboundSummary,
    RouteBreakdown,
    cache_hit_rates,
    merge_by,
    outbound_summary,
    route_breakdown,
)
from perfpilot.records import LoadResult
from perfpilot.report.flat import FlatRecord


@dataclasses.dataclass(frozen=True)
class RouteTime(RouteBreakdown, FlatRecord):
    """One route: how much time it takes and where that time goes.

    The fields of :class:`~perfpilot.analyze.breakdown.RouteBreakdown` (for a
    load request name, ``method`` is "" and there is no split), and:

    Attributes:
        total_s: Time spent serving the route, over all requests.
        share: ``total_s`` as a 0..1 share of all routes' time.
        split_known: Whether the app/db/outbound/cache split was measured (in-app
            data) or not (load run only: all of ``mean_ms`` is in ``app_ms``).
    """

    total_s: float
    share: float
    split_known: bool = True

    @property
    def label(self) -> str:
        """``METHOD route``, or the bare name for a load request name."""
        return f"{self.method} {self.route}" if self.method else self.route

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the fields and the cache figures derived from them."""
        return {
            **super().to_dict(),
            "cache_lookups_per_request": self.cache_lookups_per_request,
            "cache_hit_rate": self.cache_hit_rate,
        }


@dataclasses.dataclass(frozen=True)
class QueryCost(FlatRecord):
    """One SQL fingerprint over all routes.

    Attributes:
        fingerprint: Stable id of the normalized statement.
        sql: The normalized statement (literals redacted).
        db: Database kind.
        route: The route that spends the most time in it.
        routes: How many routes run it.
        calls: Executions.
        errors: Executions that raised.
        total_s: Time spent in it, over all executions.
        mean_ms: Mean duration.
        p95_ms: 95th percentile duration.
        rows_per_call: Rows returned or affected per execution.
        share: ``total_s`` as a 0..1 share of all request time.
        call_site: ``file:line`` that runs it, when known.
    """

    fingerprint: str
    sql: str
    db: str
    route: str
    routes: int
    calls: int
    errors: int
    total_s: float
    mean_ms: float
    p95_ms: float
    rows_per_call: float
    share: float
    call_site: str | None = None


@dataclasses.dataclass(frozen=True)
class OutboundCost(OutboundSummary, FlatRecord):
    """Outbound calls to one host and path template, over all routes.

    The fields of :class:`~perfpilot.analyze.breakdown.OutboundSummary`, and:

    Attributes:
        total_s: Time spent waiting on them.
        cost_per_hour_usd: ``cost_usd`` scaled to one hour of the window's rate.
    """

    total_s: float
    cost_per_hour_usd: float


@dataclasses.dataclass(frozen=True)
class CacheRate(CacheHitRate, FlatRecord):
    """Hits and misses of one cache (:class:`~perfpilot.analyze.breakdown.CacheHitRate`)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the fields and the hit rate."""
        return {**super().to_dict(), "hit_rate": self.hit_rate}


@dataclasses.dataclass(frozen=True)
class Bottlenecks:
    """The Bottleneck Identification section.

    Attributes:
        routes: Routes, most total time first.
        queries: The costliest query fingerprints, most total time first.
        outbound: Outbound endpoints, most expensive first.
        caches: Caches, lowest hit rate first.
    """

    routes: tuple[RouteTime, ...] = ()
    queries: tuple[QueryCost, ...] = ()
    outbound: tuple[OutboundCost, ...] = ()
    caches: tuple[CacheRate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "routes": [r.to_dict() for r in self.routes],
            "queries": [q.to_dict() for q in self.queries],
            "outbound": [o.to_dict() for o in self.outbound],
            "caches": [c.to_dict() for c in self.caches],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bottlenecks:
        """Inverse of :meth:`to_dict`."""
        return cls(
            routes=tuple(RouteTime.from_dict(r) for r in data.get("routes", ())),
            queries=tuple(QueryCost.from_dict(q) for q in data.get("queries", ())),
            outbound=tuple(OutboundCost.from_dict(o) for o in data.get("outbound", ())),
            caches=tuple(CacheRate.from_dict(c) for c in data.get("caches", ())),
        )


def find_bottlenecks(
    app: AppData, load: LoadResult | None = None, *, top_queries: int = 10
) -> Bottlenecks:
    """Rank routes, queries, outbound endpoints and caches of the window.

    Args:
        app: In-app data of the window.
        load: The load run, used for routes only when there is no in-app data.
        top_queries: The most query fingerprints to keep.

    Returns:
        The section.
    """
    routes = _app_routes(app) if app.requests else _load_routes(load)
    request_time_s = sum(r.total_s for r in routes) if app.requests else 0.0
    return Bottlenecks(
        routes=routes,
        queries=_queries(app, request_time_s)[:top_queries],
        outbound=tuple(
            OutboundCost(
                **_fields(o),
                total_s=o.calls * o.mean_ms / 1000,
                cost_per_hour_usd=o.cost_usd * 3600.0 / app.duration_s,
            )
            for o in outbound_summary(app.outbound)
        ),
        caches=tuple(CacheRate(**_fields(c)) for c in cache_hit_rates(app.caches)),
    )


def _fields(record: Any) -> dict[str, Any]:
    """A dataclass's fields by name (not copied, unlike ``dataclasses.asdict``)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _app_routes(app: AppData) -> tuple[RouteTime, ...]:
    breakdowns = route_breakdown(app.requests)
    grand_total_s = sum(b.total_ms for b in breakdowns) / 1000
    return tuple(
        RouteTime(
            **_fields(b),
            total_s=b.total_ms / 1000,
            share=b.total_ms / 1000 / grand_total_s if grand_total_s else 0.0,
        )
        for b in breakdowns
    )


def _load_routes(load: LoadResult | None) -> tuple[RouteTime, ...]:
    if load is None:
        return ()
    rows = []
    for name, stats in load.names.items():
        totals = stats.totals()
        if totals.requests == 0:
            continue
        p50, p95, p99 = (v * 1000 for v in totals.latency.percentiles([50, 95, 99]))
        mean_ms = totals.latency.mean_s * 1000
        rows.append((name, totals.requests, totals.error_count, p50, p95, p99, mean_ms))
    grand_total_s = sum(r[1] * r[6] for r in rows) / 1000
    routes = [
        RouteTime(
            route=name,
            method="",
            requests=n,
            errors=errors,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            mean_ms=mean_ms,
            app_ms=mean_ms,
            db_ms=0.0,
            outbound_ms=0.0,
            queries_per_request=0.0,
            outbound_per_request=0.0,
            cost_per_request_usd=0.0,
            cost_usd=0.0,
            cache_hits=0,
            cache_misses=0,
            total_s=n * mean_ms / 1000,
            share=n * mean_ms / 1000 / grand_total_s if grand_total_s else 0.0,
            split_known=False,
        )
        for name, n, errors, p50, p95, p99, mean_ms in rows
    ]
    routes.sort(key=lambda r: r.total_s, reverse=True)
    return tuple(routes)


def _queries(app: AppData, request_time_s: float) -> tuple[QueryCost, ...]:
    # the route that spends the most time in each fingerprint names it
    per_route: dict[str, dict[str, float]] = {}
    for row in app.queries:
        spent = per_route.setdefault(row.fingerprint, {})
        spent[row.route] = spent.get(row.route, 0.0) + row.latency.sum_s
    costs = []
    for row in merge_by(app.queries, lambda r: r.fingerprint).values():
        spent = per_route[row.fingerprint]
        costs.append(
            QueryCost(
                fingerprint=row.fingerprint,
                sql=row.sql,
                db=row.db,
                route=max(spent, key=lambda route: spent[route]),
                routes=len(spent),
                calls=row.count,
                errors=row.errors,
                total_s=row.latency.sum_s,
                mean_ms=row.latency.mean_s * 1000,
                p95_ms=row.latency.percentile(95) * 1000,
                rows_per_call=row.rows / row.count if row.count else 0.0,
                share=row.latency.sum_s / request_time_s if request_time_s else 0.0,
                call_site=row.call_site,
            )
        )
    costs.sort(key=lambda q: q.total_s, reverse=True)
    return tuple(costs)
