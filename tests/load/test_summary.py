"""The end-of-run summary."""

from __future__ import annotations

import io

from rich.console import Console

from perfpilot.load.summary import name_summaries, render_summary
from perfpilot.records import LoadResult, SecondStats, ThresholdResult
from perfpilot.stats.histogram import Histogram


def make_result() -> LoadResult:
    result = LoadResult(name="[red]run[/red]", started_at=100.0, ended_at=110.0)
    for second in range(10):
        latency = Histogram()
        latency.record_many([0.010] * 90 + [0.100] * 10)
        stats = SecondStats(latency, latency.copy(), 100, {"status_5xx": 1} if second == 0 else {})
        result.name_stats("[bold]home[/bold]").seconds[second] = stats
    result.thresholds = [ThresholdResult("http_req_duration{name:[x]}", "p(95)<50", False, 100.0)]
    return result


def test_figures() -> None:
    rows = name_summaries(make_result())
    home, total = rows
    assert home.requests == total.requests == 1000
    assert home.rate_per_s == 100.0
    assert home.errors == 1
    assert abs(home.p50_ms - 10) < 0.1
    assert abs(home.p95_ms - 100) < 1
    assert abs(home.max_ms - 100) < 1e-9


def test_outside_text_is_not_markup() -> None:
    out = io.StringIO()
    render_summary(make_result(), Console(file=out, width=200))
    text = out.getvalue()
    assert "[bold]home[/bold]" in text
    assert "[red]run[/red]" in text
    assert "http_req_duration{name:[x]}" in text
    assert "status_5xx 1" in text
