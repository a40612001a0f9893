"""The load engine against a real loopback server: counts, latencies, executors."""

from __future__ import annotations

import pytest

from perfpilot.load.engine import arrival_times, segment_share
from perfpilot.load.plan import Check, ExecutorSpec, LoadPlan, RequestSpec, Stage
from perfpilot.load.runner import run_load, split_segment
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def plan_for(
    url: str, executor: ExecutorSpec, *requests: RequestSpec, **kwargs: object
) -> LoadPlan:
    reqs = requests or (RequestSpec(name="root", method="GET", url=url),)
    return LoadPlan(name="test", executor=executor, requests=reqs, **kwargs)  # type: ignore[arg-type]


def test_closed_model_counts_match_the_server_exactly(server: LoopbackServer) -> None:
    plan = plan_for(f"{server.url}/", ExecutorSpec(kind="constant-vus", vus=8, duration_s=1.5))
    result = run_load(plan, processes=1)
    total = result.totals()
    assert total.requests > 100
    assert total.requests == server.counts["/"]
    assert total.errors == {}
    assert total.latency.count == total.requests
    assert result.counters["iterations"] == total.requests
    assert result.counters["vus_max"] == 8
    assert max(result.vus.values()) == 8


def test_latency_percentiles_follow_the_server_delays(server: LoopbackServer) -> None:
    # /cycle answers after 10, 20, ..., 100 ms in turn, so with one VU the true
    # distribution is known: p50 = 50 ms, p90 = 90 ms, max = 100 ms.
    plan = plan_for(f"{server.url}/cycle", ExecutorSpec(kind="constant-vus", vus=1, duration_s=2.2))
    result = run_load(plan, processes=1)
    latency = result.totals().latency
    assert latency.count >= 30
    for q, true_ms in ((50, 50), (90, 90), (100, 100)):
        measured_ms = latency.percentile(q) * 1000
        # never below the server's delay (less the histogram's 1% bound) ...
        assert measured_ms >= true_ms * 0.99 - 1.5
        # ... and above it only by loopback overhead plus the bound
        assert measured_ms <= true_ms * 1.01 + 15
    assert latency.min_s * 1000 >= 10 * 0.99 - 1.5


def test_errors_are_counted_by_kind(server: LoopbackServer) -> None:
    plan = plan_for(
        server.url,
        ExecutorSpec(kind="constant-vus", vus=2, duration_s=1.0),
        RequestSpec(name="e500", method="GET", url=f"{server.url}/status?code=503", weight=1),
        RequestSpec(name="e404", method="GET", url=f"{server.url}/status?code=404", weight=1),
        RequestSpec(name="ok", method="GET", url=f"{server.url}/", weight=2),
    )
    result = run_load(plan, processes=1)
    e500 = result.names["e500"].totals()
    e404 = result.names["e404"].totals()
    ok = result.names["ok"].totals()
    assert e500.errors == {"status_5xx": e500.requests}
    assert e404.errors == {"status_4xx": e404.requests}
    assert ok.errors == {}
    assert e500.requests + e404.requests + ok.requests == server.total()
    # weights 1:1:2 → "ok" about half of all requests
    assert 0.35 < ok.requests / server.total() < 0.65


def test_timeouts_and_closed_connections(server: LoopbackServer) -> None:
    plan = plan_for(
        server.url,
        ExecutorSpec(kind="constant-vus", vus=2, duration_s=1.2, graceful_stop_s=0.2),
        RequestSpec(name="hang", method="GET", url=f"{server.url}/hang", weight=1),
        RequestSpec(name="close", method="GET", url=f"{server.url}/close", weight=1),
        request_timeout_s=0.3,
    )
    result = run_load(plan, processes=1)
    hang = result.names["hang"].totals()
    assert hang.requests >= 2
    assert set(hang.errors) == {"timeout"}
    close = result.names["close"].totals()
    assert close.requests == server.counts["/close"]
    assert close.errors == {}


def test_checks_are_counted(server: LoopbackServer) -> None:
    checks = (
        Check(kind="status", name="status is 200", statuses=(200,)),
        Check(
            kind="json_field",
            name="json status == 'ok'",
            path="status",
            expected="ok",
            has_expected=True,
        ),
        Check(kind="json_field", name="json items.0.id exists", path="items.0.id"),
        Check(kind="body_contains", name="body contains 'nope'", text="nope"),
    )
    plan = plan_for(
        server.url,
        ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.5),
        RequestSpec(name="json", method="GET", url=f"{server.url}/json", checks=checks),
    )
    result = run_load(plan, processes=1)
    n = result.names["json"].totals().requests
    got = result.names["json"].checks
    assert got["status is 200"] == [n, 0]
    assert got["json status == 'ok'"] == [n, 0]
    assert got["json items.0.id exists"] == [n, 0]
    assert got["body contains 'nope'"] == [0, n]


def test_redirects_followed_only_when_asked(server: LoopbackServer) -> None:
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.4)
    request = RequestSpec(name="r", method="GET", url=f"{server.url}/redirect")
    plain = run_load(plan_for(server.url, executor, request), processes=1)
    assert server.counts["/"] == 0
    assert plain.names["r"].totals().requests == server.counts["/redirect"]
    followed = run_load(plan_for(server.url, executor, request, follow_redirects=True), processes=1)
    assert server.counts["/"] == followed.names["r"].totals().requests > 0


def test_post_body_reaches_the_server(server: LoopbackServer) -> None:
    check = Check(kind="body_contains", name="echo", text='"x": 1')
    request = RequestSpec(
        name="echo",
        method="POST",
        url=f"{server.url}/echo",
        headers=(("Content-Type", "application/json"),),
        body=b'{"x": 1}',
        checks=(check,),
    )
    result = run_load(
        plan_for(server.url, ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.3), request),
        processes=1,
    )
    passes, fails = result.names["echo"].checks["echo"]
    assert passes > 0 and fails == 0


def test_open_model_keeps_the_rate(server: LoopbackServer) -> None:
    executor = ExecutorSpec(
        kind="constant-arrival-rate", rate=200, duration_s=2.0, pre_allocated_vus=5, max_vus=50
    )
    result = run_load(plan_for(f"{server.url}/", executor), processes=1)
    total = result.totals()
    assert 396 <= total.requests <= 401
    assert total.requests == server.counts["/"]
    assert result.counters.get("dropped_iterations", 0) == 0


def test_open_model_shows_a_stall_that_closed_model_hides(server: LoopbackServer) -> None:
    """No coordinated omission: a 0.6 s pause lands in the open model's percentiles."""
    executor = ExecutorSpec(
        kind="constant-arrival-rate", rate=100, duration_s=2.0, pre_allocated_vus=2, max_vus=2
    )
    server.pause(0.0)
    plan = plan_for(f"{server.url}/pause", executor)
    import threading

    timer = threading.Timer(0.7, server.pause, args=(0.6,))
    timer.start()
    try:
        result = run_load(plan, processes=1)
    finally:
        timer.cancel()
    total = result.totals()
    # About 60 iterations fell due during the pause; they waited for the two VUs
    # (or were dropped and counted), and their waiting counts as latency.
    assert total.latency.percentile(90) * 1000 > 100
    assert total.service.percentile(75) * 1000 < total.latency.percentile(75) * 1000
    assert total.requests + result.counters.get("dropped_iterations", 0) >= 190


def test_ramping_vus_follows_the_stages(server: LoopbackServer) -> None:
    executor = ExecutorSpec(
        kind="ramping-vus",
        vus=0,
        stages=(Stage(1.0, 10), Stage(1.0, 10), Stage(0.5, 0)),
        graceful_stop_s=1,
    )
    result = run_load(plan_for(f"{server.url}/delay?ms=5", executor), processes=1)
    assert result.counters["vus_max"] == 10
    assert result.vus[1] == 10
    assert result.totals().requests == server.counts["/delay"]


def test_two_processes_merge_exactly(server: LoopbackServer) -> None:
    plan = plan_for(f"{server.url}/", ExecutorSpec(kind="constant-vus", vus=4, duration_s=1.0))
    result = run_load(plan, processes=2)
    assert result.totals().requests == server.counts["/"] > 0
    assert result.counters["vus_max"] == 4


def test_segments_add_up() -> None:
    for total in (1, 7, 10, 1000):
        for parts in (1, 2, 3, 7):
            segments = split_segment((0.0, 1.0), parts)
            assert sum(segment_share(total, s) for s in segments) == total


def test_arrival_times_ramp() -> None:
    # 0 → 100/s over 2 s: 100 iterations, denser at the end
    times = list(arrival_times("ramping-arrival-rate", 0.0, (Stage(2.0, 100),), 1.0, 0.0))
    assert len(times) == 100
    assert times == sorted(times)
    assert times[-1] <= 2.0
    assert sum(1 for t in times if t >= 1.0) == 75
    # two staggered half segments interleave into the whole
    halves = [
        list(arrival_times("ramping-arrival-rate", 0.0, (Stage(2.0, 100),), 0.5, phase))
        for phase in (0.0, 0.5)
    ]
    assert len(halves[0]) + len(halves[1]) == 100
