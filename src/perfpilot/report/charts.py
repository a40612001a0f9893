"""Plotly figure specifications for a report's charts, built in Python.

Each chart is a plain dict (``id``, ``title``, ``data``, ``layout``) that the
HTML page hands to ``Plotly.newPlot`` as is, so the page's script holds no
logic of its own. Only charts with data are made:

- ``latency``: p50/p95/p99 over time, per timeline (client, server);
- ``throughput``: requests and errors per second over time;
- ``distribution``: the latency distribution;
- ``routes``: routes ranked by total time;
- ``breakdown``: mean time per request split into app, database, outbound, cache;
- ``outbound``: outbound cost (or time, when nothing was priced).

Plotly reads a few HTML-like tags in its text (``<b>``, ``<a href>``), so
names from outside are entity-escaped (:func:`plotly_text`) and shown as written.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from perfpilot.report.model import Report
from perfpilot.report.series import Timeline

#: Most routes or endpoints in a bar chart.
MAX_BARS = 15

_COLORS = {
    "p50": "#4c78a8",
    "p95": "#f58518",
    "p99": "#e45756",
    "requests": "#4c78a8",
    "errors": "#e45756",
    "app": "#4c78a8",
    "db": "#f58518",
    "outbound": "#54a24b",
    "cache": "#b279a2",
}


def plotly_text(value: str) -> str:
    """``value`` with ``&``, ``<`` and ``>`` as entities, so Plotly shows it verbatim."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def charts(report: Report) -> list[dict[str, Any]]:
    """The figures for ``report``, in page order, leaving out those without data."""
    found = [
        _latency(report),
        _throughput(report),
        _distribution(report),
        _routes(report),
        _breakdown(report),
        _outbound(report),
    ]
    return [chart for chart in found if chart is not None]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 72, "b": 40},
        "height": 360,
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "xanchor": "left"},
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


def _chart(chart_id: str, title: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> Any:
    return {"id": chart_id, "title": title, "data": data, "layout": layout}


def _times(at: list[float]) -> list[str]:
    return [
        datetime.datetime.fromtimestamp(t, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        for t in at
    ]


def _drawn(report: Report) -> list[Timeline]:
    """The timelines worth a line over time: one of fewer than three points (a
    short window on the server's per-minute series) is left out when another
    timeline has more."""
    longest = max((len(t.points) for t in report.timelines), default=0)
    return [t for t in report.timelines if len(t.points) >= min(3, longest) and t.points]


def _line(name: str, timeline: Timeline, y: list[float], color: str, **extra: Any) -> Any:
    """One line of an over-time chart: solid for the client side, dotted for the server."""
    return {
        "type": "scatter",
        "mode": "lines+markers" if len(timeline.points) < 30 else "lines",
        "name": f"{name} ({timeline.label})",
        "x": _times([p.at for p in timeline.points]),
        "y": y,
        "line": {"color": color, "dash": "solid" if timeline.source == "load" else "dot"},
        **extra,
    }


def _latency(report: Report) -> Any:
    data = [
        _line(name, t, [getattr(p, f"{name}_ms") for p in t.points], _COLORS[name])
        for t in _drawn(report)
        for name in ("p50", "p95", "p99")
    ]
    if not data:
        return None
    title = "Latency percentiles over time (UTC)"
    layout = _layout(title, yaxis={"title": {"text": "ms"}, "rangemode": "tozero"})
    return _chart("latency", title, data, layout)


def _throughput(report: Report) -> Any:
    timelines = _drawn(report)
    if not timelines:
        return None
    errors = any(p.errors for t in timelines for p in t.points)
    data = []
    for t in timelines:
        data.append(
            _line("requests/s", t, [p.requests_per_s for p in t.points], _COLORS["requests"])
        )
        if errors:
            y = [p.errors_per_s for p in t.points]
            data.append(_line("errors/s", t, y, _COLORS["errors"], yaxis="y2"))
    if not errors:  # an errors axis of zeros only says it badly
        title = "Throughput over time (UTC); no errors"
        layout = _layout(title, yaxis={"title": {"text": "requests/s"}, "rangemode": "tozero"})
        return _chart("throughput", title, data, layout)
    title = "Throughput and errors over time (UTC)"
    layout = _layout(
        title,
        margin={"l": 60, "r": 70, "t": 72, "b": 40},
        yaxis={"title": {"text": "requests/s"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "errors/s"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
    return _chart("throughput", title, data, layout)


def _distribution(report: Report) -> Any:
    bins = report.distribution.bins
    if not bins:
        return None
    centers = [(b.lower_ms * b.upper_ms) ** 0.5 for b in bins]
    widths = [b.upper_ms - b.lower_ms for b in bins]
    side = "client side" if report.distribution.source == "load" else "server side"
    title = f"Latency distribution ({side})"
    data = [
        {
            "type": "bar",
            "name": "requests",
            "x": centers,
            "y": [b.count for b in bins],
            "width": widths,
            "marker": {"color": _COLORS["requests"]},
            "customdata": [[b.lower_ms, b.upper_ms] for b in bins],
            "hovertemplate": "%{customdata[0]:.3g}–%{customdata[1]:.3g} ms: %{y}<extra></extra>",
        }
    ]
    ticks = _log_ticks(bins[0].lower_ms, bins[-1].upper_ms)
    layout = _layout(
        title,
        xaxis={
            "title": {"text": "latency (ms, log scale)"},
            "type": "log",
            "tickvals": ticks,
            "ticktext": [f"{t:g}" for t in ticks],
        },
        yaxis={"title": {"text": "requests"}},
        bargap=0,
    )
    return _chart("distribution", title, data, layout)


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks from ``low`` to ``high`` (milliseconds), labelled in full:
    Plotly's own log ticks label only the digit of the in-between ones."""
    ticks = []
    decade = 10.0 ** math.floor(math.log10(max(low, 1e-6)))
    while decade <= high:
        ticks += [m * decade for m in (1, 2, 5) if low <= m * decade <= high]
        decade *= 10
    return [round(t, 6) for t in ticks]


def _route_labels(report: Report) -> list[str]:
    return [plotly_text(r.label) for r in report.bottlenecks.routes[:MAX_BARS]]


def _routes(report: Report) -> Any:
    routes = report.bottlenecks.routes[:MAX_BARS]
    if not routes:
        return None
    title = "Routes by total time"
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "total time",
            "y": _route_labels(report),
            "x": [r.total_s for r in routes],
            "customdata": [[r.requests, r.mean_ms, r.share * 100] for r in routes],
            "hovertemplate": "%{y}: %{x:.3g} s over %{customdata[0]} requests "
            "(mean %{customdata[1]:.3g} ms, %{customdata[2]:.1f}%)<extra></extra>",
            "marker": {"color": _COLORS["requests"]},
        }
    ]
    layout = _layout(
        title,
        xaxis={"title": {"text": "seconds spent"}},
        yaxis={"autorange": "reversed", "automargin": True},
        height=max(240, 60 + 28 * len(routes)),
        showlegend=False,
    )
    return _chart("routes", title, data, layout)


def _breakdown(report: Report) -> Any:
    routes = [r for r in report.bottlenecks.routes[:MAX_BARS] if r.split_known]
    if not routes:
        return None
    labels = [plotly_text(r.label) for r in routes]
    title = "Time per request by route: app, database, outbound, cache"
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": labels,
            "x": [getattr(r, f"{field}_ms") for r in routes],
            "marker": {"color": _COLORS[field]},
            "hovertemplate": f"%{{y}}: %{{x:.3g}} ms {name}<extra></extra>",
        }
        for name, field in (
            ("app", "app"),
            ("database", "db"),
            ("outbound", "outbound"),
            ("cache", "cache"),
        )
    ]
    layout = _layout(
        title,
        barmode="stack",
        xaxis={"title": {"text": "mean ms per request"}},
        yaxis={"autorange": "reversed", "automargin": True},
        height=max(240, 80 + 28 * len(routes)),
    )
    return _chart("breakdown", title, data, layout)


def _outbound(report: Report) -> Any:
    calls = report.bottlenecks.outbound[:MAX_BARS]
    if not calls:
        return None
    priced = any(o.cost_usd > 0 for o in calls)
    title = "Outbound cost by endpoint" if priced else "Outbound time by endpoint"
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "cost" if priced else "time",
            "y": [plotly_text(o.label) for o in calls],
            "x": [o.cost_usd if priced else o.total_s for o in calls],
            "customdata": [[o.calls, o.cost_per_hour_usd, o.total_s] for o in calls],
            "hovertemplate": (
                "%{y}: $%{x:.4g} over %{customdata[0]} calls ($%{customdata[1]:.3g}/h)"
                if priced
                else "%{y}: %{x:.3g} s over %{customdata[0]} calls"
            )
            + "<extra></extra>",
            "marker": {"color": _COLORS["outbound"]},
        }
    ]
    layout = _layout(
        title,
        xaxis={"title": {"text": "US dollars" if priced else "seconds waiting"}},
        yaxis={"autorange": "reversed", "automargin": True},
        height=max(240, 60 + 28 * len(calls)),
        showlegend=False,
    )
    return _chart("outbound", title, data, layout)
