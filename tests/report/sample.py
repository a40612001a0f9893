"""Hand-made report inputs: a window of in-app data, a load run over it, findings.

Names, SQL, paths and headers carry markup so every renderer's escaping is tested.
"""

from __future__ import annotations

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.app_records import (
    CacheRow,
    OutboundRow,
    QueryRow,
    RequestRow,
    ResourceSample,
    Span,
    Trace,
)
from perfpilot.records import LoadResult, NameStats, SecondStats, ThresholdResult
from perfpilot.stats.histogram import Histogram

T0 = 1_700_000_040.0  # a minute boundary minus 0: 1_700_000_040 % 60 == 0
EVIL_ROUTE = "/<script>alert(1)</script>"
EVIL_SQL = "SELECT a || b FROM t WHERE x = '</script><script>alert(2)</script>' AND y = ?"
EVIL_HEADER = '<img src=x onerror="alert(3)">'
EVIL_PATH = "app/<b>views</b>.py:12"
EVIL_CODE = "q = q.options(selectinload(Order.items))  # </script> </textarea> {{ 7*7 }} | `x`"


def hist(*values: float) -> Histogram:
    h = Histogram()
    h.record_many(list(values))
    return h


def sample_app() -> AppData:
    """Two minutes of a service: a slow N+1 route, a hostile route name, a cheap health check."""
    orders = RequestRow("/orders", "GET", 2, 100, 0, hist(*[0.2] * 90, *[0.6] * 10),
                        db_time_s=12.0, db_count=3100, outbound_time_s=2.0, outbound_count=100,
                        cost_usd=0.5, cache_hits=60, cache_misses=40, cache_time_s=1.04)  # fmt: skip
    orders_failed = RequestRow("/orders", "GET", 5, 4, 4, hist(0.9, 0.9, 0.9, 0.9))
    evil = RequestRow(EVIL_ROUTE, "POST", 2, 20, 0, hist(*[0.05] * 20), db_time_s=0.2, db_count=20)
    health = RequestRow("/health", "GET", 2, 200, 0, hist(*[0.001] * 200))
    queries = (
        QueryRow(
            "f1",
            "SELECT * FROM items WHERE order_id = ?",
            "sqlite",
            "/orders",
            3000,
            0,
            hist(*[0.004] * 3000),
            rows=9000,
            call_site=EVIL_PATH,
        ),
        QueryRow("f2", EVIL_SQL, "sqlite", EVIL_ROUTE, 20, 0, hist(*[0.01] * 20), rows=20),
        QueryRow(
            "f1",
            "SELECT * FROM items WHERE order_id = ?",
            "sqlite",
            EVIL_ROUTE,
            10,
            0,
            hist(*[0.004] * 10),
            rows=30,
        ),
    )
    outbound = (
        OutboundRow(
            "api.openai.com",
            "/v1/chat/completions",
            "POST",
            2,
            "/orders",
            100,
            0,
            hist(*[0.02] * 100),
            cost_usd=0.5,
            prompt_tokens=1000,
            completion_tokens=200,
            repeated=40,
        ),
    )
    caches = (CacheRow("redis", "GET", "user", "/orders", 60, 40),)
    resources = tuple(
        ResourceSample(
            T0 + 10 * i, 1, 100_000_000 + i * 1_000_000, 10.0, 4, 10, 20.0, 1, 2, 0, 0, 0, 0
        )
        for i in range(12)
    )
    trace = Trace(T0 + 5, "/orders", "GET", 200, 0.25, ("repeated_query",),
                  tuple(Span("db", "SELECT * FROM items WHERE order_id = ?", 0.01 * i, 0.004,
                             {"call_site": EVIL_PATH}) for i in range(5)))  # fmt: skip
    first, second = T0, T0 + 60
    timeline = (
        (first, RequestRow("/orders", "GET", 2, 50, 0, hist(*[0.2] * 50))),
        (first, RequestRow("/health", "GET", 2, 100, 0, hist(*[0.001] * 100))),
        (second, RequestRow("/orders", "GET", 2, 50, 0, hist(*[0.2] * 40, *[0.6] * 10))),
        (second, RequestRow("/orders", "GET", 5, 4, 4, hist(0.9, 0.9, 0.9, 0.9))),
        (second, RequestRow(EVIL_ROUTE, "POST", 2, 20, 0, hist(*[0.05] * 20))),
        (second, RequestRow("/health", "GET", 2, 100, 0, hist(*[0.001] * 100))),
    )
    return AppData(
        since=T0,
        until=T0 + 120,
        service="shop",
        requests=(orders, orders_failed, evil, health),
        queries=queries,
        outbound=outbound,
        caches=caches,
        resources=resources,
        traces=(trace,),
        timeline=timeline,
        drops={"traces": 3},
    )


def sample_load() -> LoadResult:
    """A 10-second run: 'orders' slow, 'health' fast, one failed threshold."""
    result = LoadResult(name="shop <smoke>", started_at=T0, ended_at=T0 + 10.0)
    for name, latency_s, errors in (("orders", 0.2, 1), ("health", 0.001, 0)):
        stats = NameStats(name=name)
        for second in range(10):
            latency = hist(*[latency_s] * 10)
            stats.seconds[second] = SecondStats(
                latency=latency, service=latency.copy(), requests=10,
                errors={"status_5xx": errors} if errors else {},
            )  # fmt: skip
        result.names[name] = stats
    result.thresholds = [
        ThresholdResult("http_req_duration", "p(95)<100", False, 200.0),
        ThresholdResult("http_req_failed", "rate<0.1", True, 0.05),
    ]
    return result


def sample_findings() -> list[Finding]:
    """Three findings in the wrong order; one with a hostile fix, evidence and trace."""
    trace = sample_app().traces[0]
    return [
        Finding(
            id=finding_id("low_cache_hit_rate", "redis"),
            kind="low_cache_hit_rate",
            severity="low",
            title="Cache redis hits 60% of lookups",
            subject="redis",
            evidence={"hit_rate": 0.6},
            impact=Impact(time_per_request_s=0.001, requests_per_s=1.0),
            fix=Fix("Cache user profiles for longer.", code="CACHE_TTL_S = 300", language="python"),
        ),
        Finding(
            id=finding_id("n_plus_one", "GET /orders"),
            kind="n_plus_one",
            severity="high",
            title=f"N+1 queries on GET /orders from {EVIL_PATH}",
            subject="GET /orders",
            evidence={
                "repeats_per_request": 30,
                "headers": {"X-Evil": EVIL_HEADER},
                "sql": EVIL_SQL,
            },
            impact=Impact(time_per_request_s=0.12, requests_per_s=0.8, note="30 queries × 4 ms"),
            fix=Fix(
                "Load the items with the orders.",
                code=EVIL_CODE,
                language="python",
                location=EVIL_PATH,
            ),
            confidence=0.9,
            trace=trace,
        ),
        Finding(
            id=finding_id("repeated_outbound", "POST api.openai.com/v1/chat/completions"),
            kind="repeated_outbound",
            severity="medium",
            title="Repeated calls to POST api.openai.com/v1/chat/completions",
            subject="POST api.openai.com/v1/chat/completions",
            evidence={"repeated": 40},
            impact=Impact(time_per_request_s=0.008, requests_per_s=0.8, usd_per_request=0.002),
            fix=Fix(
                "Cache identical completions.",
                code="@functools.cache\ndef summarize(text): ...",
                language="python",
            ),
        ),
    ]
