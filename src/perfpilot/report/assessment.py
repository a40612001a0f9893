"""Performance Assessment: the service's health at a glance, against targets.

Four headline figures are judged: p95 latency, error rate, Apdex and
throughput. When a load run is given they are what its clients saw (latency
from the intended send time); otherwise what the instrumented app recorded
about itself. A load run's own threshold verdicts are added as checks.

Each check is ``pass``, ``warn`` (within reach of the target: past
``warn_ratio`` of the allowance), ``fail`` (target missed) or ``info`` (no
target, or no data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.records import LoadResult
from perfpilot.report.flat import FlatRecord
from perfpilot.stats.apdex import apdex
from perfpilot.stats.histogram import Histogram

#: Check statuses, most severe first (``info`` is not a verdict).
STATUSES = ("fail", "warn", "pass", "info")


@dataclasses.dataclass(frozen=True)
class Targets(FlatRecord):
    """What "healthy" means for the assessment.

    Attributes:
        p95_ms: Highest acceptable 95th percentile latency, in milliseconds.
        error_rate: Highest acceptable share of failed requests (0..1).
        apdex_t_ms: The Apdex target time ``T``, in milliseconds.
        apdex_min: Lowest acceptable Apdex score (0.85 is "good" on apdex.org's scale).
        min_throughput_rps: Lowest acceptable throughput, requests per second
            (0: no target, throughput is shown for information).
        warn_ratio: A figure past this share of its allowance warns.
    """

    p95_ms: float = 500.0
    error_rate: float = 0.01
    apdex_t_ms: float = 500.0
    apdex_min: float = 0.85
    min_throughput_rps: float = 0.0
    warn_ratio: float = 0.8


@dataclasses.dataclass(frozen=True)
class HealthCheck(FlatRecord):
    """One judged figure.

    Attributes:
        metric: ``p95_ms``, ``error_rate``, ``apdex``, ``throughput_rps``, or
            ``threshold`` for a load run's own threshold.
        label: What a person reads (``p95 latency``, or the threshold expression).
        observed: The observed value in ``unit``; ``None`` without data.
        target: The target in ``unit``; ``None`` when there is none.
        unit: ``ms``, ``ratio`` (0..1), ``score`` (0..1) or ``req/s``.
        status: One of :data:`STATUSES`.
        rule: How the status was decided, in a few words.
    """

    metric: str
    label: str
    observed: float | None
    target: float | None
    unit: str
    status: str
    rule: str = ""


@dataclasses.dataclass(frozen=True)
class Assessment:
    """The health at a glance.

    Attributes:
        source: ``load`` (client side, from a load run) or ``app`` (server side).
        requests: Requests judged.
        errors: Failed requests among them.
        duration_s: Length of the window the figures cover.
        p50_ms: Median latency.
        p95_ms: 95th percentile latency.
        p99_ms: 99th percentile latency.
        checks: The judged figures, headline figures first.
    """

    source: str
    requests: int
    errors: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    checks: tuple[HealthCheck, ...]

    @property
    def status(self) -> str:
        """The worst verdict among the checks (``info`` when none judged anything)."""
        seen = {check.status for check in self.checks}
        return next((s for s in STATUSES if s in seen and s != "info"), "info")

    @property
    def throughput_rps(self) -> float:
        """Requests per second over the window."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Failed requests as a 0..1 share (0 without requests)."""
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the overall status."""
        return {
            "source": self.source,
            "status": self.status,
            "requests": self.requests,
            "errors": self.errors,
            "duration_s": self.duration_s,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "checks": [check.to_dict() for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assessment:
        """Inverse of :meth:`to_dict` (the status is recomputed)."""
        return cls(
            source=str(data["source"]),
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            duration_s=float(data["duration_s"]),
            p50_ms=float(data["p50_ms"]),
            p95_ms=float(data["p95_ms"]),
            p99_ms=float(data["p99_ms"]),
            checks=tuple(HealthCheck.from_dict(c) for c in data.get("checks", ())),
        )


@dataclasses.dataclass(frozen=True)
class Headline:
    """The figures a report is judged on, and where they come from.

    Attributes:
        source: ``load`` (the load run's client side, when it has requests) or
            ``app`` (what the instrumented app recorded).
        latency: All requests' latencies, merged.
        requests: Requests counted.
        errors: Failed requests.
        duration_s: The time they were counted over.
    """

    source: str
    latency: Histogram
    requests: int
    errors: int
    duration_s: float


def headline(app: AppData, load: LoadResult | None) -> Headline:
    """The load run's figures when it made requests, else the app's."""
    totals = None if load is None else load.totals()
    if load is not None and totals is not None and totals.requests > 0:
        return Headline("load", totals.latency, totals.requests, totals.error_count,
                        load.duration_s)  # fmt: skip
    return Headline(
        "app",
        _merged(row.latency for row in app.requests),
        app.request_count,
        sum(row.errors for row in app.requests),
        app.duration_s,
    )


def assess(
    app: AppData,
    load: LoadResult | None,
    targets: Targets,
    figures: Headline | None = None,
) -> Assessment:
    """Judge the window's headline figures against ``targets``.

    Args:
        app: In-app data of the window.
        load: The load run of the window, if any: its client-side figures are
            judged instead of the app's, and its thresholds are added.
        targets: What healthy means.
        figures: :func:`headline` of ``app`` and ``load``, when the caller
            has it already.

    Returns:
        The assessment.
    """
    figures = headline(app, load) if figures is None else figures
    source, latency = figures.source, figures.latency
    requests, errors, duration_s = figures.requests, figures.errors, figures.duration_s
    p50, p95, p99 = (v * 1000 for v in latency.percentiles([50, 95, 99]))
    has_data = latency.count > 0
    checks = [
        _upper("p95_ms", "p95 latency", p95 if has_data else None, targets.p95_ms, "ms", targets),
        _upper(
            "error_rate",
            "error rate",
            errors / requests if requests else None,
            targets.error_rate,
            "ratio",
            targets,
        ),
        _apdex(apdex(latency, targets.apdex_t_ms / 1000) if has_data else None, targets),
        _throughput(requests / duration_s if requests and duration_s > 0 else None, targets),
    ]
    if load is not None:
        checks.extend(
            HealthCheck(
                metric="threshold",
                label=f"{t.metric}: {t.expression}",
                observed=t.observed,
                target=None,
                unit="",
                status="pass" if t.passed else "fail",
                rule="load run threshold" + (" (aborted the run)" if t.aborted else ""),
            )
            for t in load.thresholds
        )
    return Assessment(
        source=source,
        requests=requests,
        errors=errors,
        duration_s=duration_s,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        checks=tuple(checks),
    )


def _merged(histograms: Iterable[Histogram]) -> Histogram:
    total = Histogram()
    for histogram in histograms:
        total.merge(histogram)
    return total


def _upper(
    metric: str, label: str, observed: float | None, target: float, unit: str, targets: Targets
) -> HealthCheck:
    """A figure where lower is better."""
    shown = f"{target:g} ms" if unit == "ms" else f"{target:.2%}"
    rule = f"fail above {shown}, warn above {targets.warn_ratio:.0%} of it"
    if observed is None:
        status = "info"
    elif observed > target:
        status = "fail"
    elif observed > target * targets.warn_ratio:
        status = "warn"
    else:
        status = "pass"
    return HealthCheck(metric, label, observed, target, unit, status, rule)


def _apdex(observed: float | None, targets: Targets) -> HealthCheck:
    # warn once the shortfall from a perfect 1.0 uses warn_ratio of the allowed shortfall
    warn_below = 1.0 - (1.0 - targets.apdex_min) * targets.warn_ratio
    rule = (
        f"T = {targets.apdex_t_ms:g} ms; fail below {targets.apdex_min:.2f}, "
        f"warn below {warn_below:.2f}"
    )
    if observed is None:
        status = "info"
    elif observed < targets.apdex_min:
        status = "fail"
    elif observed < warn_below:
        status = "warn"
    else:
        status = "pass"
    return HealthCheck("apdex", "Apdex", observed, targets.apdex_min, "score", status, rule)


def _throughput(observed: float | None, targets: Targets) -> HealthCheck:
    minimum = targets.min_throughput_rps
    if minimum <= 0:
        return HealthCheck(
            "throughput_rps", "throughput", observed, None, "req/s", "info", "no target"
        )
    warn_below = minimum / targets.warn_ratio
    rule = f"fail below {minimum:g} req/s, warn below {warn_below:g}"
    if observed is None:
        status = "info"
    elif observed < minimum:
        status = "fail"
    elif observed < warn_below:
        status = "warn"
    else:
        status = "pass"
    return HealthCheck("throughput_rps", "throughput", observed, minimum, "req/s", status, rule)
