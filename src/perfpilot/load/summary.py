"""The end-of-run summary: one row per request name, then the thresholds."""

from __future__ import annotations

import dataclasses

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfpilot.records import LoadResult, SecondStats

PERCENTILES = (50.0, 90.0, 95.0, 99.0)


@dataclasses.dataclass(frozen=True)
class NameSummary:
    """Figures of one request name (or the total) over a run.

    Latencies are in milliseconds, measured from the intended send time;
    ``service_p95_ms`` is measured from the actual send.
    """

    name: str
    requests: int
    rate_per_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    service_p95_ms: float

    @property
    def error_rate(self) -> float:
        """Failed requests as a fraction of all requests."""
        return self.errors / self.requests if self.requests else 0.0


def summarize(name: str, stats: SecondStats, duration_s: float) -> NameSummary:
    """Reduce merged stats to the figures of the summary table."""
    latency = stats.latency
    p50, p90, p95, p99 = latency.percentiles(PERCENTILES) if latency.count else [0.0] * 4
    service_p95 = stats.service.percentile(95) if stats.service.count else 0.0
    return NameSummary(
        name=name,
        requests=stats.requests,
        rate_per_s=stats.requests / duration_s if duration_s > 0 else 0.0,
        errors=stats.error_count,
        p50_ms=p50 * 1000,
        p90_ms=p90 * 1000,
        p95_ms=p95 * 1000,
        p99_ms=p99 * 1000,
        max_ms=latency.max_s * 1000,
        service_p95_ms=service_p95 * 1000,
    )


def name_summaries(result: LoadResult) -> list[NameSummary]:
    """One :class:`NameSummary` per request name, sorted by name, then the total."""
    duration = result.duration_s
    rows = [
        summarize(name, series.totals(), duration) for name, series in sorted(result.names.items())
    ]
    rows.append(summarize("total", result.totals(), duration))
    return rows


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_summary(result: LoadResult, console: Console) -> None:
    """Print the summary of ``result``: per-name table, counters, errors, thresholds."""
    rows = name_summaries(result)
    open_model = any(
        abs(row.service_p95_ms - row.p95_ms) > 0.05 * max(row.p95_ms, 1e-9) for row in rows
    )
    table = Table(
        title=f"{escape(result.name)} — {result.duration_s:.1f} s",
        title_justify="left",
        caption="latency in ms, from the intended send time"
        + ("; service p95 from the actual send" if open_model else ""),
        caption_justify="left",
    )
    table.add_column("name")
    for column in ("requests", "rate/s", "errors", "p50", "p90", "p95", "p99", "max"):
        table.add_column(column, justify="right")
    if open_model:
        table.add_column("service p95", justify="right")
    for index, row in enumerate(rows):
        is_total = index == len(rows) - 1
        errors = f"{row.errors:,} ({row.error_rate:.1%})" if row.errors else "0"
        cells = [
            escape(row.name),
            f"{row.requests:,}",
            f"{row.rate_per_s:,.1f}",
            errors,
            _ms(row.p50_ms),
            _ms(row.p90_ms),
            _ms(row.p95_ms),
            _ms(row.p99_ms),
            _ms(row.max_ms),
        ]
        if open_model:
            cells.append(_ms(row.service_p95_ms))
        table.add_row(
            *cells, style="bold" if is_total else None, end_section=index == len(rows) - 2
        )
    console.print(table)

    total = result.totals()
    if total.errors:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(total.errors.items()))
        console.print(f"errors by kind: {escape(kinds)}")
    counters = result.counters
    line = [
        f"iterations {counters.get('iterations', 0):,}",
        f"VUs max {counters.get('vus_max', 0)}",
    ]
    for key in ("dropped_iterations", "interrupted_iterations", "flow_errors"):
        if counters.get(key):
            line.append(f"{key.replace('_', ' ')} {counters[key]:,}")
    console.print(", ".join(line))
    checks = {}
    for series in result.names.values():
        for check, (passes, fails) in series.checks.items():
            checks[escape(f"{series.name}: {check}")] = (passes, fails)
    if checks:
        check_table = Table(title="checks", title_justify="left")
        check_table.add_column("check")
        check_table.add_column("passed", justify="right")
        check_table.add_column("failed", justify="right")
        for label, (passes, fails) in sorted(checks.items()):
            check_table.add_row(label, f"{passes:,}", f"[red]{fails:,}[/]" if fails else "0")
        console.print(check_table)
    if result.thresholds:
        thresholds = Table(title="thresholds", title_justify="left")
        thresholds.add_column("")
        thresholds.add_column("metric")
        thresholds.add_column("condition")
        thresholds.add_column("observed", justify="right")
        for verdict in result.thresholds:
            mark = "[green]✓[/]" if verdict.passed else "[red]✗[/]"
            observed = "no data" if verdict.observed is None else f"{verdict.observed:,.4g}"
            condition = verdict.expression + (" (aborted the run)" if verdict.aborted else "")
            thresholds.add_row(mark, escape(verdict.metric), escape(condition), observed)
        console.print(thresholds)
    if result.aborted:
        console.print(f"[yellow]stopped early: {escape(result.aborted)}[/]")
