"""The vocabulary of thresholds: metrics, their kinds and aggregations, operators.

Shared by the grammar (:mod:`perfpilot.load.thresholds`) and the evaluation
(:mod:`perfpilot.load.threshold_eval`); the table of metrics and what they
aggregate is in the grammar's documentation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

TREND_METRICS = ("http_req_duration", "http_req_service_duration")
RATE_METRICS = ("http_req_failed", "checks")
COUNTER_METRICS = ("http_reqs", "iterations", "dropped_iterations")
METRICS: tuple[str, ...] = TREND_METRICS + RATE_METRICS + COUNTER_METRICS
# Run-wide counters that have no per-name series, hence no tag filter.
RUN_COUNTERS = frozenset({"iterations", "dropped_iterations"})

TREND_AGGREGATIONS = ("avg", "min", "max", "med", "p(N)", "count")
RATE_AGGREGATIONS = ("rate",)
COUNTER_AGGREGATIONS = ("count", "rate")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def metric_kind(metric: str) -> str:
    """Return ``trend``, ``rate`` or ``counter`` for a known metric name.

    Args:
        metric: One of :data:`METRICS`.

    Returns:
        The kind of the metric.

    Raises:
        KeyError: ``metric`` is not a known metric.
    """
    if metric in TREND_METRICS:
        return "trend"
    if metric in RATE_METRICS:
        return "rate"
    if metric in COUNTER_METRICS:
        return "counter"
    raise KeyError(metric)
