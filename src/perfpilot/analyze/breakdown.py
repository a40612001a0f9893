"""Where the time and the money of each route go, from in-app aggregates.

Pure functions over :mod:`perfpilot.app_records` rows (already merged by the
store): per-route latency percentiles with the split of the mean request time
between application code, database, outbound calls and cache commands; queries and outbound
calls per request; cost per request and per business unit; cache hit rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from perfpilot.app_records import CacheRow, OutboundRow, RequestRow, UnitRow, add_rows

Row = TypeVar("Row")


def merge_by(rows: Iterable[Row], key: Callable[[Row], Hashable]) -> dict[Hashable, Row]:
    """Rows with the same ``key`` added together (see :func:`add_rows`); status
    classes are labels, never summed."""
    merged: dict[Hashable, Row] = {}
    for row in rows:
        k = key(row)
        current = merged.get(k)
        merged[k] = row if current is None else add_rows(current, row, keep=("status_class",))
    return merged


@dataclasses.dataclass(frozen=True)
class RouteBreakdown:
    """One route (all status classes together).

    Time figures are means per request, in milliseconds; ``app_ms`` is what is
    left of the mean duration after database, outbound and cache time (never
    below 0).

    Attributes:
        route: Route template.
        method: HTTP method.
        requests: Requests served.
        errors: Failed requests.
        p50_ms: Median latency.
        p95_ms: 95th percentile latency.
        p99_ms: 99th percentile latency.
        mean_ms: Mean latency.
        app_ms: Mean time per request in application code (what is left).
        db_ms: Mean time per request in the database.
        outbound_ms: Mean time per request in outbound HTTP calls.
        queries_per_request: Database calls per request.
        outbound_per_request: Outbound calls per request.
        cost_per_request_usd: Outbound money per request.
        cost_usd: Outbound money, over all requests.
        cache_hits: Cache lookups that hit.
        cache_misses: Cache lookups that missed.
        cache_ms: Mean time per request in timed cache commands (redis-py,
            ``cache_event(..., duration_s=)``); keyword-only, 0 when untimed
            (and in data recorded before cache commands were timed).
    """

    route: str
    method: str
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    app_ms: float
    db_ms: float
    outbound_ms: float
    queries_per_request: float
    outbound_per_request: float
    cost_per_request_usd: float
    cost_usd: float
    cache_hits: int
    cache_misses: int
    # keyword-only with a default, so the report's subclasses can add fields
    # and reports written before it still read back
    cache_ms: float = dataclasses.field(default=0.0, kw_only=True)

    @property
    def total_ms(self) -> float:
        """Time spent in this route over all requests, in milliseconds."""
        return self.mean_ms * self.requests

    @property
    def cache_lookups_per_request(self) -> float:
        """Cache lookups (hits and misses) per request."""
        return (self.cache_hits + self.cache_misses) / self.requests if self.requests else 0.0

    @property
    def cache_hit_rate(self) -> float | None:
        """Hits per lookup (0..1), ``None`` without lookups."""
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else None


def route_breakdown(rows: Iterable[RequestRow]) -> list[RouteBreakdown]:
    """Merge request rows per (route, method) and split their time.

    Returns:
        Breakdowns ranked by total time spent (mean × requests), largest first.
    """
    result = []
    for row in merge_by(rows, lambda r: (r.route, r.method)).values():
        n = row.count
        if n == 0:
            continue
        p50, p95, p99 = row.latency.percentiles([50, 95, 99])
        mean_ms = row.latency.mean_s * 1000
        db_ms = row.db_time_s / n * 1000
        out_ms = row.outbound_time_s / n * 1000
        cache_ms = row.cache_time_s / n * 1000
        result.append(
            RouteBreakdown(
                route=row.route,
                method=row.method,
                requests=n,
                errors=row.errors,
                p50_ms=p50 * 1000,
                p95_ms=p95 * 1000,
                p99_ms=p99 * 1000,
                mean_ms=mean_ms,
                app_ms=max(0.0, mean_ms - db_ms - out_ms - cache_ms),
                db_ms=db_ms,
                outbound_ms=out_ms,
                cache_ms=cache_ms,
                queries_per_request=row.db_count / n,
                outbound_per_request=row.outbound_count / n,
                cost_per_request_usd=row.cost_usd / n,
                cost_usd=row.cost_usd,
                cache_hits=row.cache_hits,
                cache_misses=row.cache_misses,
            )
        )
    result.sort(key=lambda b: b.total_ms, reverse=True)
    return result


@dataclasses.dataclass(frozen=True)
class UnitCost:
    """Outbound cost per business unit produced (``perfpilot.unit("listing")``)."""

    unit: str
    units: int
    requests: int
    cost_usd: float

    @property
    def cost_per_unit_usd(self) -> float:
        """US dollars per unit (0 when none were produced)."""
        return self.cost_usd / self.units if self.units else 0.0


def unit_costs(rows: Iterable[UnitRow]) -> list[UnitCost]:
    """Merge unit rows across routes, most expensive per unit first."""
    costs = [
        UnitCost(row.unit, row.units, row.requests, row.cost_usd)
        for row in merge_by(rows, lambda r: r.unit).values()
    ]
    costs.sort(key=lambda c: c.cost_per_unit_usd, reverse=True)
    return costs


@dataclasses.dataclass(frozen=True)
class CacheHitRate:
    """Hits and misses of one cache."""

    cache: str
    hits: int
    misses: int

    @property
    def lookups(self) -> int:
        """Hits plus misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits as a 0..1 fraction of lookups (0 when there were none)."""
        return self.hits / self.lookups if self.lookups else 0.0


def cache_hit_rates(rows: Iterable[CacheRow]) -> list[CacheHitRate]:
    """Hit rate per cache (all commands, prefixes and routes), lowest first."""
    rates = [
        CacheHitRate(row.cache, row.hits, row.misses)
        for row in merge_by(rows, lambda r: r.cache).values()
    ]
    rates.sort(key=lambda r: r.hit_rate)
    return rates


@dataclasses.dataclass(frozen=True)
class OutboundSummary:
    """Outbound calls to one host and path template, over all routes.

    Attributes:
        host: ``host[:port]``.
        template: Path template.
        method: HTTP method.
        calls: Calls.
        errors: Failed calls.
        p95_ms: 95th percentile duration.
        mean_ms: Mean duration.
        cost_usd: Money spent, from the price table.
        prompt_tokens: Tokens sent (OpenAI-compatible APIs).
        completion_tokens: Tokens received.
        repeated: Calls identical to an earlier call in the same request.
    """

    host: str
    template: str
    method: str
    calls: int
    errors: int
    p95_ms: float
    mean_ms: float
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    repeated: int

    @property
    def label(self) -> str:
        """``METHOD host/template``."""
        return f"{self.method} {self.host}{self.template}"


def outbound_summary(rows: Iterable[OutboundRow]) -> list[OutboundSummary]:
    """Merge outbound rows per (host, template, method), most expensive first."""
    result = [
        OutboundSummary(
            host=row.host,
            template=row.template,
            method=row.method,
            calls=row.count,
            errors=row.errors,
            p95_ms=row.latency.percentile(95) * 1000,
            mean_ms=row.latency.mean_s * 1000,
            cost_usd=row.cost_usd,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            repeated=row.repeated,
        )
        for row in merge_by(rows, lambda r: (r.host, r.template, r.method)).values()
    ]
    result.sort(key=lambda s: (s.cost_usd, s.calls * s.mean_ms), reverse=True)
    return result
