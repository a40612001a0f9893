"""Judge a run against thresholds: the observed value of each, and the verdict.

:func:`evaluate` and :func:`evaluate_all` are also exported by
:mod:`perfpilot.load.thresholds`, next to the parser that makes the specs.
"""

from __future__ import annotations

from collections.abc import Iterable

from perfpilot.load.plan import ThresholdSpec
from perfpilot.load.threshold_metrics import OPERATORS, RUN_COUNTERS
from perfpilot.records import LoadResult, NameStats, ThresholdResult
from perfpilot.stats.histogram import Histogram


def _selected(spec: ThresholdSpec, result: LoadResult) -> list[NameStats]:
    """The per-name series matching the spec's tag filter (all when unfiltered)."""
    chosen = []
    for stats in result.names.values():
        ok = True
        for key, value in spec.tags:
            actual = stats.name if key == "name" else stats.tags.get(key)
            if actual != value:
                ok = False
                break
        if ok:
            chosen.append(stats)
    return chosen


def _observe(spec: ThresholdSpec, result: LoadResult, end_second: int | None) -> float | None:
    """The observed value of the spec's aggregation, in canonical units."""
    elapsed = result.duration_s if end_second is None else float(end_second)
    if spec.metric in RUN_COUNTERS:
        count = float(result.counters.get(spec.metric, 0))
        if spec.aggregation == "count":
            return count
        return count / elapsed if elapsed > 0 else None
    names = _selected(spec, result)
    if spec.metric == "checks":
        passes = fails = 0
        for stats in names:
            for check_passes, check_fails in stats.checks.values():
                passes += check_passes
                fails += check_fails
        total = passes + fails
        return passes / total if total else None
    totals = [stats.totals(end=end_second) for stats in names]
    if spec.metric == "http_reqs":
        count = float(sum(t.requests for t in totals))
        if spec.aggregation == "count":
            return count
        return count / elapsed if elapsed > 0 else None
    if spec.metric == "http_req_failed":
        requests = sum(t.requests for t in totals)
        errors = sum(t.error_count for t in totals)
        return errors / requests if requests else None
    merged = Histogram()
    for t in totals:
        merged.merge(t.latency if spec.metric == "http_req_duration" else t.service)
    if spec.aggregation == "count":
        return float(merged.count)
    if merged.count == 0:
        return None
    if spec.aggregation == "avg":
        seconds = merged.mean_s
    elif spec.aggregation == "min":
        seconds = merged.min_s
    elif spec.aggregation == "max":
        seconds = merged.max_s
    elif spec.aggregation == "med":
        seconds = merged.percentile(50.0)
    else:
        assert spec.percentile is not None
        seconds = merged.percentile(spec.percentile)
    return seconds * 1e3


def evaluate(
    spec: ThresholdSpec, result: LoadResult, *, end_second: int | None = None
) -> ThresholdResult:
    """Judge one threshold against a run (or the first part of one).

    Durations come from the merged ``latency`` (``http_req_duration``) or
    ``service`` histograms of the selected names, converted to milliseconds.
    A tag filter ``{name:X}`` selects the name ``X``; any other key selects the
    names whose ``tags`` carry that value; no filter selects every name.

    With no data to aggregate (no requests for a duration or
    ``http_req_failed``, no check results for ``checks``, a zero-length run
    for a per-second ``rate``), ``observed`` is ``None`` and the threshold
    *passes*, whatever its operator. This is what k6 does with empty metrics:
    a threshold on a request name that never ran does not fail the run.
    ``count`` always has data (zero is a count).

    Args:
        spec: The threshold.
        result: The run, complete or in progress.
        end_second: Only count seconds ``< end_second`` of the run, and divide
            per-second rates by ``end_second``; used for ``abort_on_fail``
            checks during the run. Check results and the ``iterations`` and
            ``dropped_iterations`` counters are not kept per second, so they
            count whatever ``result`` holds so far.

    Returns:
        The verdict, with ``observed`` in the unit of the condition.

    Example:
        >>> from perfpilot.load.thresholds import parse_threshold
        >>> from perfpilot.records import LoadResult
        >>> evaluate(parse_threshold("p(95)<500"), LoadResult("r", 0.0, 1.0)).passed
        True
    """
    observed = _observe(spec, result, end_second)
    passed = True if observed is None else OPERATORS[spec.op](observed, spec.value)
    return ThresholdResult(
        metric=spec.metric_key,
        expression=spec.condition,
        passed=passed,
        observed=observed,
        aborted=False,
    )


def evaluate_all(specs: Iterable[ThresholdSpec], result: LoadResult) -> list[ThresholdResult]:
    """Judge every threshold against a complete run, in order.

    Args:
        specs: The thresholds.
        result: The run.

    Returns:
        One verdict per threshold.
    """
    return [evaluate(spec, result) for spec in specs]
