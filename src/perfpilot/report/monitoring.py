"""The terminal view of in-app monitoring: where each route's time and money go."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfpilot.analyze.breakdown import CacheHitRate, OutboundSummary, RouteBreakdown, UnitCost
from perfpilot.report.numbers import ms


def _usd(value: float) -> str:
    if value == 0:
        return "0"
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}".rstrip("0")


def render_monitoring(
    console: Console,
    routes: Sequence[RouteBreakdown],
    outbound: Sequence[OutboundSummary] = (),
    units: Sequence[UnitCost] = (),
    caches: Sequence[CacheHitRate] = (),
    *,
    title: str = "server side (perfpilot.instrument)",
) -> None:
    """Print per-route server-side latency with its split, then calls, units and caches."""
    table = Table(
        title=title,
        title_justify="left",
        caption="latency in ms; app, db, ext, cache: mean ms per request in app code, the "
        "database, outbound calls and timed cache commands; q/req, ext/req: queries and "
        "outbound calls per request",
        caption_justify="left",
    )
    table.add_column("route", no_wrap=True)
    columns = ("req", "err", "p50", "p95", "p99", "app", "db", "ext", "cache", "q/req", "ext/req")
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("$/req", justify="right", no_wrap=True)
    for row in routes:
        table.add_row(
            escape(f"{row.method} {row.route}"),
            f"{row.requests:,}",
            f"{row.errors:,}" if row.errors else "0",
            ms(row.p50_ms),
            ms(row.p95_ms),
            ms(row.p99_ms),
            ms(row.app_ms),
            ms(row.db_ms),
            ms(row.outbound_ms),
            ms(row.cache_ms),
            f"{row.queries_per_request:.1f}",
            f"{row.outbound_per_request:.1f}",
            _usd(row.cost_per_request_usd),
        )
    console.print(table)
    if outbound:
        calls = Table(title="outbound calls", title_justify="left")
        for column in ("call", "calls", "errors", "p95 ms", "tokens in/out", "cost", "repeated"):
            calls.add_column(column, justify="left" if column == "call" else "right")
        for call in outbound:
            calls.add_row(
                escape(f"{call.method} {call.host}{call.template}"),
                f"{call.calls:,}",
                f"{call.errors:,}",
                ms(call.p95_ms),
                f"{call.prompt_tokens:,}/{call.completion_tokens:,}",
                _usd(call.cost_usd),
                f"{call.repeated:,}",
            )
        console.print(calls)
    if units:
        unit_table = Table(title="cost per business unit", title_justify="left")
        for column in ("unit", "units", "cost", "cost per unit"):
            unit_table.add_column(column, justify="left" if column == "unit" else "right")
        for unit in units:
            unit_table.add_row(
                escape(unit.unit), f"{unit.units:,}", _usd(unit.cost_usd),
                _usd(unit.cost_per_unit_usd),
            )  # fmt: skip
        console.print(unit_table)
    if caches:
        cache_table = Table(title="caches", title_justify="left")
        for column in ("cache", "hits", "misses", "hit rate"):
            cache_table.add_column(column, justify="left" if column == "cache" else "right")
        for cache in caches:
            cache_table.add_row(
                escape(cache.cache), f"{cache.hits:,}", f"{cache.misses:,}",
                f"{cache.hit_rate:.1%}",
            )  # fmt: skip
        console.print(cache_table)
