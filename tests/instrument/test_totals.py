"""Cumulative totals fed by flusher snapshots."""

from __future__ import annotations

import threading

from perfpilot.app_records import (
    AppSnapshot,
    CacheRow,
    OutboundRow,
    QueryRow,
    RequestRow,
    ResourceSample,
)
from perfpilot.instrument.context import RequestContext, perf
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.totals import OTHER, Totals, process_totals
from perfpilot.stats.histogram import Histogram


def hist(*values: float) -> Histogram:
    h = Histogram()
    h.record_many(list(values))
    return h


def sample(at: float, rss: int) -> ResourceSample:
    return ResourceSample(at, 1, rss, 1.0, 2, 3, 4.0, 5, 6, 7, 8, 9, 10)


def snapshot(**rows: object) -> AppSnapshot:
    return AppSnapshot("svc", "host", 1, 0.0, 1.0, **rows)  # type: ignore[arg-type]


def test_snapshots_add_up() -> None:
    totals = Totals()
    first = snapshot(
        requests=(RequestRow("/a", "GET", 2, 3, 0, hist(0.1, 0.2, 0.3), 0.05, 6, 0.5, 1, 0.02),),
        outbound=(
            OutboundRow(
                "api",
                "/v1/{id}",
                "GET",
                2,
                "/a",
                2,
                1,
                hist(0.1, 0.3),
                cost_usd=0.01,
                prompt_tokens=10,
                completion_tokens=4,
            ),
        ),
        queries=(QueryRow("fp", "SELECT ?", "sqlite", "/a", 6, 1, hist(*[0.001] * 6), 6),),
        caches=(CacheRow("redis", "get", "user:", "/a", 4, 1),),
        resources=(sample(10.0, 100), sample(5.0, 50)),
        drops={"traces": 2},
    )
    second = snapshot(
        requests=(RequestRow("/a", "GET", 2, 1, 0, hist(0.4)),),
        queries=(QueryRow("fp", "SELECT ?", "sqlite", "/b", 1, 0, hist(0.002)),),
        caches=(CacheRow("redis", "get", "other:", "/b", 0, 3),),
        resources=(sample(8.0, 80),),
        drops={"traces": 1, "keys": 5},
    )
    totals.add(first)
    totals.add(second)
    view = totals.view()
    req = view.requests[("/a", "GET", 2)]
    assert (req.count, req.latency.count, req.db_count, req.cost_usd) == (4, 4, 6, 0.02)
    assert req.latency.sum_s == 1.0
    out = view.outbound[("api", "/v1/{id}")]
    assert (out.count, out.errors, out.prompt_tokens, out.completion_tokens) == (2, 1, 10, 4)
    assert abs(out.time_s - 0.4) < 1e-12
    query = view.queries[("fp", "sqlite")]  # two routes, one fingerprint
    assert (query.sql, query.count, query.errors, query.rows) == ("SELECT ?", 7, 1, 6)
    assert abs(query.time_s - 0.008) < 1e-12
    assert (view.caches["redis"].hits, view.caches["redis"].misses) == (4, 4)
    assert view.drops == {"traces": 3, "keys": 5}
    assert view.resources is not None and view.resources.at == 10.0  # the latest, not the last
    assert view.snapshots == 2


def test_the_view_is_a_copy() -> None:
    totals = Totals()
    totals.add(snapshot(requests=(RequestRow("/a", "GET", 2, 1, 0, hist(0.1)),)))
    view = totals.view()
    view.requests[("/a", "GET", 2)].latency.record(5.0)
    view.requests[("/a", "GET", 2)].count += 10
    again = totals.view().requests[("/a", "GET", 2)]
    assert (again.count, again.latency.count) == (1, 1)


def test_keys_past_the_bound_fold_into_other_and_are_counted() -> None:
    totals = Totals(max_keys=2)
    totals.add(
        snapshot(
            requests=tuple(RequestRow(f"/r{i}", "GET", 2, 1, 0, hist(0.1)) for i in range(5)),
            queries=tuple(
                QueryRow(f"fp{i}", f"SELECT {i}", "sqlite", "/", 1, 0, hist(0.1)) for i in range(4)
            ),
        )
    )
    view = totals.view()
    assert set(view.requests) == {("/r0", "GET", 2), ("/r1", "GET", 2), (OTHER, OTHER, 2)}
    assert view.requests[(OTHER, OTHER, 2)].count == 3
    assert view.queries[(OTHER, OTHER)].sql == OTHER
    assert view.queries[(OTHER, OTHER)].count == 2
    assert view.queries[("fp0", "sqlite")].sql == "SELECT 0"
    assert view.drops["totals_keys"] == 3 + 2


def test_concurrent_adds_lose_nothing() -> None:
    totals = Totals()
    one = snapshot(requests=(RequestRow("/a", "GET", 2, 1, 0, hist(0.01)),))

    def work() -> None:
        for _ in range(200):
            totals.add(one)
            totals.view()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    req = totals.view().requests[("/a", "GET", 2)]
    assert (req.count, req.latency.count) == (800, 800)


def test_as_a_flusher_observer() -> None:
    recorder, totals = Recorder(sample_rate=0.0), Totals()
    flusher = Flusher(
        recorder, lambda s: None, lambda sql, db: ("f1", "SELECT ?"), observers=[totals.add]
    )
    for status in (200, 200, 404):
        ctx = RequestContext("GET", perf())
        ctx.route, ctx.status = "/items/{id}", status
        recorder.finish(ctx, 0.003)
    recorder.query("SELECT 1", perf(), 0.001, 1, False, "sqlite")
    flusher.flush()
    flusher.flush()  # an empty interval adds nothing
    view = totals.view()
    assert view.requests[("/items/{id}", "GET", 2)].count == 2
    assert view.requests[("/items/{id}", "GET", 4)].count == 1
    assert view.queries[("f1", "sqlite")].count == 1


def test_process_totals_is_one_object_and_resets_in_a_child() -> None:
    totals = process_totals()
    assert process_totals() is totals
    fresh = Totals()
    fresh.add(snapshot(drops={"x": 1}))
    fresh.reset_after_fork()
    assert fresh.view().drops == {} and fresh.view().snapshots == 0
