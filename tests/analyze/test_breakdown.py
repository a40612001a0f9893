"""Per-route breakdowns, unit costs, cache hit rates, outbound summaries."""

from __future__ import annotations

import pytest

from perfpilot.analyze.breakdown import (
    cache_hit_rates,
    outbound_summary,
    route_breakdown,
    unit_costs,
)
from perfpilot.app_records import CacheRow, OutboundRow, RequestRow, UnitRow, add_rows
from perfpilot.stats.histogram import Histogram


def hist(*values: float) -> Histogram:
    h = Histogram()
    h.record_many(list(values))
    return h


def test_route_time_is_split_and_status_classes_merge() -> None:
    ok = RequestRow("/orders/{id}", "GET", 2, 3, 0, hist(0.1, 0.1, 0.1), db_time_s=0.15,
                    db_count=30, outbound_time_s=0.06, outbound_count=3, cost_usd=0.03)  # fmt: skip
    failed = RequestRow("/orders/{id}", "GET", 5, 1, 1, hist(0.1), db_time_s=0.05, db_count=10)
    other = RequestRow("/health", "GET", 2, 10, 0, hist(*[0.001] * 10))
    routes = route_breakdown([ok, other, failed])
    assert [r.route for r in routes] == ["/orders/{id}", "/health"]  # ranked by total time
    orders = routes[0]
    assert orders.requests == 4
    assert orders.errors == 1
    assert orders.mean_ms == pytest.approx(100)
    assert orders.db_ms == pytest.approx(50)
    assert orders.outbound_ms == pytest.approx(15)
    assert orders.app_ms == pytest.approx(35)
    assert orders.queries_per_request == 10
    assert orders.cost_per_request_usd == pytest.approx(0.0075)


def test_cache_time_is_its_own_share_and_comes_out_of_app_time() -> None:
    hit = RequestRow("/p", "GET", 2, 4, 0, hist(0.1, 0.1, 0.1, 0.1), db_time_s=0.08,
                     outbound_time_s=0.04, cache_time_s=0.06, cache_hits=3)  # fmt: skip
    failed = RequestRow("/p", "GET", 5, 1, 1, hist(0.1), cache_time_s=0.02, cache_misses=1)
    (route,) = route_breakdown([hit, failed])
    assert route.mean_ms == pytest.approx(100)
    assert route.cache_ms == pytest.approx(16)  # (0.06 + 0.02) s over 5 requests
    assert route.db_ms == pytest.approx(16)
    assert route.outbound_ms == pytest.approx(8)
    assert route.app_ms == pytest.approx(100 - 16 - 8 - 16)


def test_untimed_caches_leave_their_time_in_app_time() -> None:
    row = RequestRow("/p", "GET", 2, 2, 0, hist(0.05, 0.05), cache_hits=2)
    (route,) = route_breakdown([row])
    assert route.cache_ms == 0.0
    assert route.app_ms == pytest.approx(50)


def test_app_time_is_never_negative_when_the_parts_add_up_to_more() -> None:
    # concurrent database and cache calls can sum to more than the request took
    row = RequestRow("/p", "GET", 2, 1, 0, hist(0.01), db_time_s=0.008, cache_time_s=0.006)
    (route,) = route_breakdown([row])
    assert route.app_ms == 0.0
    assert route.cache_ms == pytest.approx(6)


def test_add_rows_keeps_labels_and_merges_histograms() -> None:
    a = RequestRow("/a", "GET", 2, 1, 0, hist(0.1))
    b = RequestRow("/a", "GET", 5, 2, 2, hist(0.2, 0.3))
    total = add_rows(a, b, keep=("status_class",))
    assert (total.route, total.status_class, total.count, total.errors) == ("/a", 2, 3, 2)
    assert total.latency.count == 3
    assert a.latency.count == 1  # inputs untouched


def test_unit_costs_and_cache_rates() -> None:
    units = unit_costs(
        [
            UnitRow("summary", "/summarize", 10, 10, 0.5),
            UnitRow("summary", "/other", 10, 5, 0.5),
            UnitRow("listing", "/l", 4, 4, 0.04),
        ]
    )
    assert [(u.unit, u.units) for u in units] == [("summary", 20), ("listing", 4)]
    assert units[0].cost_per_unit_usd == pytest.approx(0.05)
    rates = cache_hit_rates(
        [
            CacheRow("redis", "get", "user", "/a", 9, 1),
            CacheRow("redis", "get", "x", "/b", 1, 9),
            CacheRow("local", "get", "", "/a", 1, 3),
        ]
    )
    assert [(r.cache, r.hit_rate) for r in rates] == [("local", 0.25), ("redis", 0.5)]


def test_outbound_summary_merges_routes() -> None:
    rows = [
        OutboundRow(
            "api:1",
            "/v1/chat",
            "POST",
            2,
            "/a",
            2,
            0,
            hist(0.2, 0.3),
            cost_usd=0.02,
            prompt_tokens=100,
            completion_tokens=20,
            repeated=1,
        ),
        OutboundRow("api:1", "/v1/chat", "POST", 2, "/b", 1, 0, hist(0.25), cost_usd=0.01),
        OutboundRow("maps", "/geo", "GET", 2, "/a", 5, 1, hist(*[0.01] * 5)),
    ]
    summary = outbound_summary(rows)
    assert summary[0].host == "api:1"
    assert (summary[0].calls, summary[0].repeated, summary[0].prompt_tokens) == (3, 1, 100)
    assert summary[0].cost_usd == pytest.approx(0.03)
    assert summary[1].errors == 1
