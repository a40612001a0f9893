"""The one entry point of the detectors: in-app data (and a load run) in, ranked findings out.

Example:
    >>> from perfpilot.analyze.appdata import AppData
    >>> diagnose(AppData(since=0.0, until=60.0))
    []
"""

from __future__ import annotations

from collections.abc import Callable

from perfpilot.analyze import detect_db, detect_outbound, detect_resources, detect_routes
from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding, rank
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.records import LoadResult

__all__ = ["DETECTORS", "DiagnoseOptions", "diagnose"]

Detector = Callable[[AppData, DiagnoseOptions], list[Finding]]


_IN_APP: tuple[Detector, ...] = (
    detect_db.n_plus_one,
    detect_db.slow_queries,
    detect_db.unbounded_results,
    detect_db.select_star,
    detect_outbound.repeated_calls,
    detect_outbound.slow_calls,
    detect_outbound.sequential_calls,
    detect_resources.cache_hit_rate,
    detect_resources.memory_growth,
    detect_resources.pool_waits,
    detect_routes.cpu_hotspots,
    detect_routes.large_responses,
    detect_routes.error_bursts,
)


#: Names of the in-app detectors, in the order they run.
DETECTORS = (
    "n_plus_one",
    "slow_query",
    "unbounded_result",
    "select_star",
    "repeated_outbound",
    "slow_outbound",
    "sequential_outbound",
    "low_cache_hit_rate",
    "memory_growth",
    "pool_wait",
    "cpu_hotspot",
    "large_response",
    "error_burst",
    "saturation",
)


def diagnose(
    app: AppData,
    load: LoadResult | None = None,
    options: DiagnoseOptions | None = None,
) -> list[Finding]:
    """Run every detector and return their findings, most costly first.

    Args:
        app: In-app data of one window (see
            :func:`perfpilot.store.app_data.read_app_data`).
        load: A load run over the same window, when there was one: enables the
            saturation detector (latency and errors as load grew).
        options: Thresholds; the defaults of :class:`DiagnoseOptions` when ``None``.

    Returns:
        Findings ranked by :func:`perfpilot.analyze.findings.rank`; at most one
        per detector and subject.

    Example:
        >>> diagnose(AppData(since=0.0, until=60.0), options=DiagnoseOptions(cores=2))
        []
    """
    opts = options or DiagnoseOptions()
    findings: list[Finding] = []
    for detector in _IN_APP:
        findings.extend(detector(app, opts))
    if load is not None:
        from perfpilot.analyze.detect_load import saturation

        findings.extend(saturation(load, app, opts))
    unique = {f.id: f for f in findings}
    return rank(unique.values())
