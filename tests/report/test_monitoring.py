"""The terminal view perfpilot demo prints: per-route split, calls, units, caches."""

from __future__ import annotations

import io

from rich.console import Console

from perfpilot.analyze.breakdown import route_breakdown
from perfpilot.app_records import RequestRow
from perfpilot.report.monitoring import render_monitoring
from perfpilot.stats.histogram import Histogram


def test_the_server_side_table_splits_time_into_app_db_ext_and_cache() -> None:
    latency = Histogram()
    latency.record_many([0.1] * 4)
    row = RequestRow("/p", "GET", 2, 4, 0, latency, db_time_s=0.08, outbound_time_s=0.04,
                     cache_time_s=0.06, cache_hits=3, cache_misses=1)  # fmt: skip
    console = Console(file=io.StringIO(), width=160, color_system=None)
    render_monitoring(console, route_breakdown([row]))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("┃│").replace("┃", "│").split("│")]

    header = cells(next(line for line in lines if "route" in line and "cache" in line))
    values = cells(next(line for line in lines if "GET /p" in line))
    columns = dict(zip(header, values, strict=True))
    assert (columns["app"], columns["db"], columns["ext"], columns["cache"]) == (
        "55.0", "20.0", "10.0", "15.0",
    )  # fmt: skip
