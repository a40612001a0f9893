"""Monitoring Strategy: alert rules and budgets derived from the observed baselines.

Alert rules catch a departure from what was observed (p95 warns at 1.5× the
observed p95 and pages at 2×, sustained for five minutes); error budgets come
from the error-rate target, watched with the multiwindow burn rates of the
Google SRE workbook (14.4× the budget rate over one hour pages, 6× over six
hours warns). Budgets are the limits a pull request should not cross: 1.2× the
observed p95 (rounded up to two significant digits), the error-rate target,
the observed queries per request of the busiest routes, the observed cost per
request. Budgets that the load engine can check are also written as
``perfpilot load --threshold`` expressions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.report.assessment import Assessment, Targets
from perfpilot.report.bottlenecks import Bottlenecks
from perfpilot.report.flat import FlatRecord

#: Multiplier of the observed p95 at which the latency alert warns, and pages.
WARN_FACTOR = 1.5
PAGE_FACTOR = 2.0
#: Multiplier of the observed value that makes a budget.
BUDGET_FACTOR = 1.2
#: Routes (most total time first) that get their own rules and budgets.
TOP_ROUTES = 5
#: Days an error budget covers.
BUDGET_DAYS = 30


@dataclasses.dataclass(frozen=True)
class AlertRule(FlatRecord):
    """A suggested alert.

    Attributes:
        name: Short identifier, e.g. ``latency_p95_warning``.
        metric: ``p95_ms``, ``error_rate``, ``apdex``, ``throughput_rps``,
            ``cost_usd_per_hour``, ``cache_hit_rate``, ``rss_bytes``.
        scope: ``service``, a route (``GET /orders``), a cache or a host.
        condition: The rule in words and numbers, e.g. ``p95 > 270 ms``.
        threshold: The number in ``condition``.
        unit: Its unit.
        for_s: How long the condition must hold before the alert fires.
        window_s: The window the metric is computed over.
        severity: ``warning`` or ``critical``.
        baseline: The observed value the threshold was derived from.
        rationale: Why this threshold.
    """

    name: str
    metric: str
    scope: str
    condition: str
    threshold: float
    unit: str
    for_s: float
    window_s: float
    severity: str
    baseline: float | None
    rationale: str


@dataclasses.dataclass(frozen=True)
class Budget(FlatRecord):
    """A limit a change should not cross.

    Attributes:
        name: Short identifier.
        metric: What is limited.
        scope: ``service`` or a route.
        limit: The limit.
        unit: Its unit.
        baseline: The observed value it was derived from.
        threshold: The same limit as a ``perfpilot load --threshold``
            expression, when the load engine can check it ("" otherwise).
        rationale: Why this limit.
    """

    name: str
    metric: str
    scope: str
    limit: float
    unit: str
    baseline: float | None
    threshold: str
    rationale: str


@dataclasses.dataclass(frozen=True)
class MonitoringStrategy:
    """The Monitoring Strategy section: alert rules, then budgets."""

    rules: tuple[AlertRule, ...] = ()
    budgets: tuple[Budget, ...] = ()

    def load_command(self) -> str:
        """A ``perfpilot load`` command line that checks the budgets the load
        engine can check ("" when there are none); ``URL`` is a placeholder."""
        flags = [
            "--threshold '" + b.threshold.replace("'", "'\\''") + "'"
            for b in self.budgets
            if b.threshold
        ]
        return f"perfpilot load URL {' '.join(flags)}" if flags else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rules": [r.to_dict() for r in self.rules],
            "budgets": [b.to_dict() for b in self.budgets],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitoringStrategy:
        """Inverse of :meth:`to_dict`."""
        return cls(
            rules=tuple(AlertRule.from_dict(r) for r in data.get("rules", ())),
            budgets=tuple(Budget.from_dict(b) for b in data.get("budgets", ())),
        )


def round_up(value: float) -> float:
    """``value`` rounded up to two significant digits (``219.6`` → ``220``)."""
    if value <= 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(value)) - 1
    mantissa = math.ceil(round(value / 10.0**exponent, 9))
    return round(mantissa * 10.0**exponent, max(0, -exponent))


def monitoring_strategy(
    assessment: Assessment, bottlenecks: Bottlenecks, app: AppData, targets: Targets
) -> MonitoringStrategy:
    """Suggest alert rules and budgets from what the window showed.

    Args:
        assessment: The headline figures (their baselines).
        bottlenecks: Routes, outbound endpoints and caches (their baselines).
        app: In-app data (resource samples, for the memory rule).
        targets: The targets (error budget, Apdex).

    Returns:
        The section; empty when the window saw no request.
    """
    if assessment.requests == 0:
        return MonitoringStrategy()
    rules: list[AlertRule] = [*_latency_rules(assessment), *_error_rules(assessment, targets)]
    rules.append(
        AlertRule(
            "apdex_low", "apdex", "service", f"Apdex(T={targets.apdex_t_ms:g} ms) < "
            f"{targets.apdex_min:.2f}", targets.apdex_min, "score", 600.0, 300.0, "warning",
            None, "users start to be frustrated below the Apdex target",
        )
    )  # fmt: skip
    rps = assessment.throughput_rps
    if rps > 0:
        floor = rps / 2
        rules.append(
            AlertRule(
                "traffic_drop", "throughput_rps", "service", f"throughput < {floor:.3g} req/s",
                floor, "req/s", 600.0, 300.0, "warning", rps,
                "half the observed throughput: clients may be failing to reach the service",
            )
        )  # fmt: skip
    for route in bottlenecks.routes[:TOP_ROUTES]:
        if route.requests and route.p95_ms > 0:
            limit = round_up(route.p95_ms * WARN_FACTOR)
            rules.append(
                AlertRule(
                    f"route_p95:{route.label}", "p95_ms", route.label, f"p95 > {limit:g} ms",
                    limit, "ms", 300.0, 300.0, "warning", route.p95_ms,
                    f"{WARN_FACTOR:g}× the route's observed p95",
                )
            )  # fmt: skip
    spend = sum(o.cost_per_hour_usd for o in bottlenecks.outbound)
    if spend > 0:
        limit = round_up(spend * WARN_FACTOR)
        rules.append(
            AlertRule(
                "outbound_spend", "cost_usd_per_hour", "service", f"outbound spend > ${limit:g}/h",
                limit, "usd/h", 900.0, 3600.0, "warning", spend,
                f"{WARN_FACTOR:g}× the observed spend on paid APIs",
            )
        )  # fmt: skip
    for cache in bottlenecks.caches:
        floor = max(0.0, min(cache.hit_rate - 0.1, 0.85))
        # a cache that (almost) never hits has no hit rate to guard: its finding says so
        if cache.hits + cache.misses and floor > 0:
            rules.append(
                AlertRule(
                    f"cache_hit_rate:{cache.cache}", "cache_hit_rate", cache.cache,
                    f"hit rate < {floor:.0%}", floor, "ratio", 900.0, 900.0, "warning",
                    cache.hit_rate, "10 points under the observed hit rate, at most 85 %",
                )
            )  # fmt: skip
    rss = max((s.rss_bytes for s in app.resources), default=0)
    if rss > 0:
        limit = round_up(rss * WARN_FACTOR)
        rules.append(
            AlertRule(
                "memory_rss", "rss_bytes", "process", f"RSS > {limit / 2**20:.0f} MiB", limit,
                "bytes", 900.0, 60.0, "warning", float(rss),
                f"{WARN_FACTOR:g}× the largest observed resident memory: a leak or a spike",
            )
        )  # fmt: skip
    return MonitoringStrategy(tuple(rules), _budgets(assessment, bottlenecks, targets))


def _latency_rules(assessment: Assessment) -> list[AlertRule]:
    p95 = assessment.p95_ms
    if p95 <= 0:
        return []
    warn, page = round_up(p95 * WARN_FACTOR), round_up(p95 * PAGE_FACTOR)
    return [
        AlertRule(
            "latency_p95_warning", "p95_ms", "service", f"p95 > {warn:g} ms", warn, "ms", 300.0,
            300.0, "warning", p95, f"{WARN_FACTOR:g}× the observed p95 ({p95:.1f} ms)",
        ),
        AlertRule(
            "latency_p95_critical", "p95_ms", "service", f"p95 > {page:g} ms", page, "ms", 300.0,
            300.0, "critical", p95, f"{PAGE_FACTOR:g}× the observed p95 ({p95:.1f} ms)",
        ),
    ]  # fmt: skip


def _error_rules(assessment: Assessment, targets: Targets) -> list[AlertRule]:
    budget = targets.error_rate
    baseline = assessment.error_rate
    rules = [
        AlertRule(
            "error_budget_fast_burn", "error_rate", "service",
            f"error rate > {min(1.0, 14.4 * budget):.2%} over 1h and 5m", min(1.0, 14.4 * budget),
            "ratio", 120.0, 3600.0, "critical", baseline,
            f"burns 2 % of a {BUDGET_DAYS}-day error budget of {budget:.2%} in one hour (14.4×)",
        ),
        AlertRule(
            "error_budget_slow_burn", "error_rate", "service",
            f"error rate > {min(1.0, 6 * budget):.2%} over 6h and 30m", min(1.0, 6 * budget),
            "ratio", 900.0, 21600.0, "warning", baseline,
            f"burns 5 % of a {BUDGET_DAYS}-day error budget of {budget:.2%} in six hours (6×)",
        ),
    ]  # fmt: skip
    if baseline > 0:
        limit = min(1.0, max(3 * baseline, 0.001))
        rules.append(
            AlertRule(
                "error_rate_above_baseline", "error_rate", "service",
                f"error rate > {limit:.2%} over 5m", limit, "ratio", 600.0, 300.0, "warning",
                baseline, "3× the observed error rate (at least 0.1 %)",
            )
        )  # fmt: skip
    return rules


def _budgets(
    assessment: Assessment, bottlenecks: Bottlenecks, targets: Targets
) -> tuple[Budget, ...]:
    budgets: list[Budget] = []
    if assessment.p95_ms > 0:
        limit = round_up(assessment.p95_ms * BUDGET_FACTOR)
        budgets.append(
            Budget(
                "latency_p95", "p95_ms", "service", limit, "ms", assessment.p95_ms,
                f"http_req_duration: p(95)<{limit:g}",
                f"{BUDGET_FACTOR:g}× the observed p95: a change that slows the service fails",
            )
        )  # fmt: skip
    budgets.append(
        Budget(
            "error_rate", "error_rate", "service", targets.error_rate, "ratio",
            assessment.error_rate, f"http_req_failed: rate<{targets.error_rate:g}",
            "the error-rate target",
        )
    )  # fmt: skip
    allowed = targets.error_rate * assessment.throughput_rps * BUDGET_DAYS * 86400
    if allowed > 0:
        budgets.append(
            Budget(
                "error_budget_30d", "failed_requests", "service", math.floor(allowed), "requests",
                float(assessment.errors), "",
                f"{targets.error_rate:.2%} of {BUDGET_DAYS} days of requests at the observed rate",
            )
        )  # fmt: skip
    for route in bottlenecks.routes[:TOP_ROUTES]:
        if route.split_known and route.queries_per_request > 0:
            limit = float(math.ceil(route.queries_per_request - 1e-9))
            budgets.append(
                Budget(
                    f"queries_per_request:{route.label}", "queries_per_request", route.label,
                    limit, "queries", route.queries_per_request, "",
                    "the observed queries per request: more means a new N+1 or a lost cache",
                )
            )  # fmt: skip
        if route.cost_per_request_usd > 0:
            limit = round_up(route.cost_per_request_usd * BUDGET_FACTOR)
            budgets.append(
                Budget(
                    f"cost_per_request:{route.label}", "cost_per_request_usd", route.label,
                    limit, "usd", route.cost_per_request_usd, "",
                    f"{BUDGET_FACTOR:g}× the observed outbound cost per request",
                )
            )  # fmt: skip
    return tuple(budgets)
