"""Time series and the latency distribution behind a report's charts.

Two timelines can describe one window: the load run's, per second (or per few
seconds for long runs), as its clients saw it; and the instrumented app's, per
minute (:attr:`AppData.timeline`), as the server saw it. Each point merges the
histograms of its interval, so its percentiles are exact to the histogram's 1 %.

The distribution re-bins a latency histogram into a few dozen bins of equal
width on a log scale, enough for a chart.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.records import LoadResult, SecondStats
from perfpilot.report.flat import FlatRecord
from perfpilot.stats.histogram import Histogram


@dataclasses.dataclass(frozen=True)
class TimePoint(FlatRecord):
    """One interval of a timeline.

    Attributes:
        at: Start of the interval, Unix time.
        interval_s: Length of the interval.
        requests: Requests finished in it.
        errors: Failed requests among them.
        p50_ms: Median latency.
        p95_ms: 95th percentile latency.
        p99_ms: 99th percentile latency.
    """

    at: float
    interval_s: float
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def requests_per_s(self) -> float:
        """Throughput over the interval."""
        return self.requests / self.interval_s

    @property
    def errors_per_s(self) -> float:
        """Failures per second over the interval."""
        return self.errors / self.interval_s


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Latency, throughput and errors over time, from one source.

    Attributes:
        source: ``load`` (client side) or ``app`` (server side).
        label: What a chart legend says (``client``, ``server``).
        points: Intervals in time order.
    """

    source: str
    label: str
    points: tuple[TimePoint, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "label": self.label,
            "points": [p.to_dict() for p in self.points],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeline:
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=str(data["source"]),
            label=str(data["label"]),
            points=tuple(TimePoint.from_dict(p) for p in data.get("points", ())),
        )


@dataclasses.dataclass(frozen=True)
class DistributionBin(FlatRecord):
    """Requests whose latency fell in ``[lower_ms, upper_ms)``."""

    lower_ms: float
    upper_ms: float
    count: int


@dataclasses.dataclass(frozen=True)
class Distribution:
    """The latency distribution of the window.

    Attributes:
        source: ``load`` or ``app``, as for the assessment.
        bins: Bins in ascending order, empty ones included between the first
            and the last non-empty bin.
    """

    source: str
    bins: tuple[DistributionBin, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"source": self.source, "bins": [b.to_dict() for b in self.bins]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Distribution:
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=str(data["source"]),
            bins=tuple(DistributionBin.from_dict(b) for b in data.get("bins", ())),
        )


def load_timeline(load: LoadResult, *, max_points: int = 600) -> Timeline:
    """The load run's client-side timeline, all request names together.

    Args:
        load: The run.
        max_points: Most points; longer runs merge consecutive seconds.

    Returns:
        One point per interval that saw requests. The last interval ends with
        the run; when that leaves less than half an interval (the requests in
        flight at the end), it joins the one before, so no rate is computed
        over a sliver of a second.
    """
    seconds: dict[int, SecondStats] = {}
    for stats in load.names.values():
        for offset, second in stats.seconds.items():
            seconds.setdefault(offset, SecondStats()).merge(second)
    if not seconds:
        return Timeline("load", "client", ())
    span = max(seconds) + 1
    step = max(1, math.ceil(span / max_points))
    buckets: dict[int, SecondStats] = {}
    for offset in sorted(seconds):
        buckets.setdefault(offset // step, SecondStats()).merge(seconds[offset])
    indexes = sorted(buckets)
    merged = [buckets[i] for i in indexes]
    covered_s = float(step)  # time the last interval covers, at most
    if len(merged) > 1 and load.ended_at - (load.started_at + indexes[-1] * step) < step / 2:
        merged[-2].merge(merged.pop())
        indexes.pop()
        covered_s += step
    last_at = load.started_at + indexes[-1] * step
    last_s = min(max(load.ended_at - last_at, step / 2), covered_s)
    points = [
        _point(
            load.started_at + index * step,
            last_s if n == len(indexes) - 1 else float(step),
            s.latency,
            s.requests,
            s.error_count,
        )
        for n, (index, s) in enumerate(zip(indexes, merged, strict=True))
        if s.requests
    ]
    return Timeline("load", "client", tuple(points))


def app_timeline(app: AppData) -> Timeline:
    """The instrumented app's server-side timeline, per minute, all routes together.

    A minute the window covers only in part is a point over that part (it
    starts at the window's start or ends at its end), so its rate is per
    second of the window, not of the whole minute.
    """
    minutes: dict[float, list[Any]] = {}
    for minute, row in app.timeline:
        entry = minutes.setdefault(minute, [Histogram(), 0, 0])
        entry[0].merge(row.latency)
        entry[1] += row.count
        entry[2] += row.errors
    points = []
    for minute, (latency, requests, errors) in sorted(minutes.items()):
        if not requests:
            continue
        at, end = max(minute, app.since), min(minute + 60.0, app.until)
        if end - at < 1.0:  # a window of less than a second in this minute: rate per minute
            at, end = minute, minute + 60.0
        points.append(_point(at, end - at, latency, requests, errors))
    return Timeline("app", "server", tuple(points))


def latency_distribution(histogram: Histogram, source: str, *, bins: int = 40) -> Distribution:
    """Re-bin ``histogram`` into at most ``bins`` bins of equal width on a log scale.

    Args:
        histogram: Latencies, in seconds.
        source: ``load`` or ``app``.
        bins: Most bins (at least 1).

    Returns:
        The distribution, spanning the exact minimum to the exact maximum.
    """
    if histogram.count == 0:
        return Distribution(source)
    low = max(histogram.min_s, 1e-6)
    high = max(histogram.max_s, low * 1.000001)
    n = max(1, bins)
    ratio = math.log(high / low) / n
    counts = [0] * n
    for lower_s, upper_s, count in histogram.buckets():
        middle = min(max((lower_s + upper_s) / 2, low), high)
        index = min(n - 1, int(math.log(middle / low) / ratio)) if ratio > 0 else 0
        counts[index] += count
    edges = [low * math.exp(ratio * i) * 1000 for i in range(n + 1)]
    first = next(i for i, c in enumerate(counts) if c)
    last = max(i for i, c in enumerate(counts) if c)
    return Distribution(
        source,
        tuple(DistributionBin(edges[i], edges[i + 1], counts[i]) for i in range(first, last + 1)),
    )


def _point(
    at: float, interval_s: float, latency: Histogram, requests: int, errors: int
) -> TimePoint:
    p50, p95, p99 = (v * 1000 for v in latency.percentiles([50, 95, 99]))
    return TimePoint(at, interval_s, requests, errors, p50, p95, p99)
