"""The thresholds every detector reads: one frozen object with documented defaults.

Defaults follow the tools people already trust where one exists (Sentry's N+1
rule: at least 5 repeats of one statement taking at least 50 ms together in one
request) and the issue's figures otherwise (slow query p95 over 100 ms, cache
hit rate under 85 %).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class DiagnoseOptions:
    """Thresholds of the detectors (:func:`perfpilot.analyze.diagnose.diagnose`).

    Attributes:
        n_plus_one_min_repeats: Executions of one statement in one request that
            make an N+1 suspect.
        n_plus_one_min_total_ms: Time the repeats must take together in one
            request (on average, or in one kept trace as Sentry judges each
            event) for a medium or high severity finding.
        n_plus_one_structural_repeats: Repeats per request from which the
            pattern is reported even when it is fast today (low severity):
            its cost grows with N, as nplusone and Bullet report it.
        slow_query_p95_ms: A query fingerprint slower than this at p95 is slow.
        slow_query_min_share: A fingerprint taking at least this share of its
            route's request time is reported even under ``slow_query_p95_ms``,
            if its median is at least ``slow_query_min_p50_ms``.
        slow_query_min_p50_ms: See ``slow_query_min_share``. Also the median
            from which a few-row equality lookup is taken for a missing index
            (an indexed lookup takes well under a millisecond).
        slow_query_min_calls: Executions needed before a query is judged.
        unbounded_rows_per_call: A ``SELECT`` without ``LIMIT`` returning at
            least this many rows per execution is an unbounded result set.
        select_star_rows_per_call: ``SELECT *`` returning at least this many rows
            per execution is reported (single-row lookups are not).
        outbound_slow_p95_ms: An outbound endpoint slower than this at p95,
            taking ``outbound_min_share`` of a route's time, is reported.
        outbound_min_share: See ``outbound_slow_p95_ms``.
        outbound_min_repeated_share: Share of calls repeating an identical call
            in the same request that makes a repeated-call finding.
        sequential_min_calls: Outbound calls back to back in one trace (no
            overlap, no database work between) that could run concurrently.
        sequential_min_saving_ms: Least time running them concurrently would save.
        cache_min_hit_rate: A cache below this hit rate (0..1) is reported.
        cache_min_lookups: Lookups needed before a hit rate is judged.
        memory_min_growth_mb: Least fitted RSS growth over the later half of
            the window, in MiB.
        memory_min_t: Least t-statistic of that later half's RSS slope (least
            squares): memory must still be growing at the end of the window.
        memory_min_samples: Resource samples needed per process (after warm-up).
        memory_warmup_share: Share of each process's sampled time left out at
            the start (imports, first requests, pools filling up).
        cpu_min_app_share: A route whose mean time is mostly (at least this
            share) application code, not database or outbound calls, is a CPU
            hotspot suspect...
        cpu_min_app_ms: ...when that application time is at least this much
            per request.
        cpu_baseline_factor: ...and at least this many times the median
            application time of the app's other routes: waiting for the GIL and
            the server's own work inflate every route's application time alike
            on a loaded machine, a hot loop only its own.
        cpu_min_profile_samples: Stack samples of a route needed before its
            top frames are named.
        large_response_bytes: Mean response body size from which an
            uncompressed response is reported.
        min_requests: Requests a route needs before route-level detectors judge it.
        error_min_rate: Share of a route's requests failing (5xx) that is reported.
        error_min_count: Least failing requests for an error finding.
        error_burst_factor: A minute with this many times the route's mean
            failures per minute (and ``error_min_count``) is a burst.
        saturation_min_latency_growth: Latency (p95) growth factor, last stage
            over first, that makes saturation when throughput stays flat.
        saturation_max_throughput_growth: Throughput growth factor under which
            throughput counts as flat while load grows.
        pool_min_wait_ms: Mean connection-pool wait per checkout worth a finding.
        cores: CPU cores of the app host, for worker advice (0: unknown).
    """

    n_plus_one_min_repeats: int = 5
    n_plus_one_min_total_ms: float = 50.0
    n_plus_one_structural_repeats: int = 20
    slow_query_p95_ms: float = 100.0
    slow_query_min_share: float = 0.5
    slow_query_min_p50_ms: float = 10.0
    slow_query_min_calls: int = 5
    unbounded_rows_per_call: int = 1000
    select_star_rows_per_call: int = 100
    outbound_slow_p95_ms: float = 100.0
    outbound_min_share: float = 0.5
    outbound_min_repeated_share: float = 0.2
    sequential_min_calls: int = 2
    sequential_min_saving_ms: float = 50.0
    cache_min_hit_rate: float = 0.85
    cache_min_lookups: int = 20
    memory_min_growth_mb: float = 2.0
    memory_min_t: float = 5.0
    memory_min_samples: int = 8
    memory_warmup_share: float = 0.2
    cpu_min_app_share: float = 0.5
    cpu_min_app_ms: float = 25.0
    cpu_baseline_factor: float = 3.0
    cpu_min_profile_samples: int = 20
    large_response_bytes: int = 100_000
    min_requests: int = 5
    error_min_rate: float = 0.01
    error_min_count: int = 5
    error_burst_factor: float = 3.0
    saturation_min_latency_growth: float = 2.0
    saturation_max_throughput_growth: float = 1.2
    pool_min_wait_ms: float = 5.0
    cores: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiagnoseOptions:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown diagnose options: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            kind = type(getattr(cls(), key))
            values[key] = kind(value)
        return cls(**values)
