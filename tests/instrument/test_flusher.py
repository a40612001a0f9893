"""The flusher: snapshots, a failing sink, a blocked sink, observers, fork (no servers)."""

from __future__ import annotations

import atexit
import collections
import logging
import os
import re
import threading
import time
from collections.abc import Iterator

import pytest

from perfpilot.app_records import AppSnapshot
from perfpilot.instrument import context
from perfpilot.instrument.context import RequestContext, current_request
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import Recorder

LOGGER = "perfpilot"


def fake_fingerprint(sql: str, db: str) -> tuple[str, str]:
    """Literals → ``?``; the id is the normalized text (good enough for tests)."""
    normalized = re.sub(r"'[^']*'|\b\d+\b", "?", sql)
    return f"fp:{normalized}", normalized


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_warned", set())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder("svc", sample_rate=0.0, seed=3)


def serve(recorder: Recorder, route: str = "/orders/{id}", *, sql: tuple[str, ...] = (),
          status: int = 200, duration: float = 0.01) -> None:  # fmt: skip
    ctx = RequestContext("GET", context.perf())
    token = current_request.set(ctx)
    try:
        ctx.route = route
        for text in sql:
            recorder.query(text, context.perf(), 0.001, 1, False, "sqlite")
        ctx.status = status
    finally:
        current_request.reset(token)
    recorder.finish(ctx, duration)


def total(snapshots: list[AppSnapshot]) -> int:
    return sum(row.count for snap in snapshots for row in snap.requests)


class ListSink:
    def __init__(self) -> None:
        self.snapshots: list[AppSnapshot] = []
        self.threads: set[int] = set()

    def __call__(self, snapshot: AppSnapshot) -> None:
        self.threads.add(threading.get_ident())
        self.snapshots.append(snapshot)


class FlakySink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.failing = True
        self.calls = 0

    def __call__(self, snapshot: AppSnapshot) -> None:
        self.calls += 1
        if self.failing:
            raise OSError("database is locked")
        super().__call__(snapshot)


class BlockingSink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, snapshot: AppSnapshot) -> None:
        self.entered.set()
        self.release.wait(30)
        super().__call__(snapshot)


@pytest.fixture
def flushers() -> Iterator[list[Flusher]]:
    """Flushers started by a test, stopped at its end."""
    started: list[Flusher] = []
    yield started
    for flusher in started:
        sink = flusher.sink
        if isinstance(sink, BlockingSink):
            sink.release.set()
        flusher.stop(timeout_s=5)
        atexit.unregister(flusher.stop)


def test_build_turns_an_interval_into_a_snapshot(recorder: Recorder) -> None:
    serve(recorder, sql=("SELECT * FROM orders WHERE id = 1", "SELECT * FROM orders WHERE id = 2"))
    serve(recorder, sql=("SELECT * FROM orders WHERE id = 3",))
    serve(recorder, "/boom", status=500, sql=("UPDATE t SET name = 'alice' WHERE id = 7",))
    recorder.drop("snapshots")
    flusher = Flusher(recorder, ListSink(), fake_fingerprint)
    snapshot = flusher.build(recorder.collect())

    assert snapshot.service == "svc"
    assert snapshot.pid == os.getpid()
    assert snapshot.started_at <= snapshot.ended_at
    rows = {(r.route, r.method, r.status_class): r for r in snapshot.requests}
    assert rows["/orders/{id}", "GET", 2].count == 2
    assert rows["/orders/{id}", "GET", 2].db_count == 3
    assert (rows["/boom", "GET", 5].count, rows["/boom", "GET", 5].errors) == (1, 1)
    # three raw texts, one fingerprint: one row, literals redacted
    queries = {(q.sql, q.route): q for q in snapshot.queries}
    assert set(queries) == {
        ("SELECT * FROM orders WHERE id = ?", "/orders/{id}"),
        ("UPDATE t SET name = ? WHERE id = ?", "/boom"),
    }
    select = queries["SELECT * FROM orders WHERE id = ?", "/orders/{id}"]
    assert select.count == 3
    assert select.latency.count == 3
    assert select.rows == 3
    assert select.fingerprint == "fp:SELECT * FROM orders WHERE id = ?"
    assert snapshot.drops == {"snapshots": 1}
    (trace,) = snapshot.traces  # the error
    assert trace.reasons == ("error",)
    assert [s.name for s in trace.spans] == ["UPDATE t SET name = ? WHERE id = ?"]
    assert "alice" not in repr(snapshot)


def test_build_carries_call_sites(recorder: Recorder) -> None:
    sql = "SELECT 1"
    site = recorder.call_site(sql)
    recorder.query(sql, context.perf(), 0.001, 1, False, "sqlite")
    (row,) = Flusher(recorder, ListSink(), fake_fingerprint).build(recorder.collect()).queries
    assert row.call_site == site
    assert site is not None
    assert site.startswith(__file__)


def test_a_fingerprinter_that_raises_costs_no_data(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sql: str, db: str) -> tuple[str, str]:
        if "weird" in sql:
            raise ValueError("cannot parse")
        return fake_fingerprint(sql, db)

    serve(recorder, sql=("SELECT weird 1", "SELECT 2"))
    sink = ListSink()
    with caplog.at_level(logging.WARNING, LOGGER):
        Flusher(recorder, sink, broken).flush()
    (snapshot,) = sink.snapshots
    assert total(sink.snapshots) == 1
    assert {q.sql for q in snapshot.queries} == {"<unparsed sql>", "SELECT ?"}
    assert "secret" not in repr(snapshot)
    assert len(caplog.records) == 1


def test_flush_writes_and_skips_empty_intervals(recorder: Recorder) -> None:
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint)
    flusher.flush()
    assert sink.snapshots == []
    serve(recorder)
    flusher.flush()
    flusher.flush()
    assert len(sink.snapshots) == 1
    assert flusher.written == 1


def test_a_failing_sink_keeps_snapshots_then_drops_the_oldest(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FlakySink()
    flusher = Flusher(recorder, sink, fake_fingerprint, max_pending=3)
    with caplog.at_level(logging.WARNING, LOGGER):
        for i in range(5):
            serve(recorder, f"/r{i}")
            flusher.flush()  # never raises
    assert len(flusher.pending) == 3
    assert [s.requests[0].route for s in flusher.pending] == ["/r2", "/r3", "/r4"]
    assert len(caplog.records) == 1  # logged once, not per attempt
    assert caplog.records[0].getMessage() == (  # the message, not the exception's repr
        "perfpilot: cannot write to the store (will retry): database is locked"
    )

    sink.failing = False
    serve(recorder, "/r5")
    flusher.flush()
    assert flusher.pending == collections.deque()
    routes = [row.route for snap in sink.snapshots for row in snap.requests]
    assert routes == ["/r2", "/r3", "/r4", "/r5"]
    # the two lost snapshots are reported in the next one written
    assert sum(s.drops.get("snapshots", 0) for s in sink.snapshots) == 2


def test_a_recovered_sink_gets_everything_held(recorder: Recorder) -> None:
    sink = FlakySink()
    flusher = Flusher(recorder, sink, fake_fingerprint, max_pending=3)
    for i in range(3):
        serve(recorder, f"/r{i}")
        flusher.flush()
    sink.failing = False
    serve(recorder, "/r3")
    flusher.flush()  # 4 waiting > max_pending, but the sink takes them all
    assert total(sink.snapshots) == 4
    assert all(not s.drops for s in sink.snapshots)


def test_a_blocked_sink_never_blocks_requests(recorder: Recorder, flushers: list[Flusher]) -> None:
    sink = BlockingSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=0.01)
    flushers.append(flusher)
    serve(recorder, "/first")
    flusher.start()
    assert sink.entered.wait(5)  # the flusher thread is now stuck in the sink

    started = time.perf_counter()
    for _ in range(2000):
        serve(recorder, "/while-stuck")
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # 2000 requests; nothing waited on the stuck thread
    assert flusher._thread is not None
    assert flusher._thread.is_alive()
    assert sink.snapshots == []

    sink.release.set()
    deadline = time.monotonic() + 5
    while total(sink.snapshots) < 2001 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert total(sink.snapshots) == 2001


def test_stop_does_not_hang_on_a_blocked_sink(
    recorder: Recorder, flushers: list[Flusher], caplog: pytest.LogCaptureFixture
) -> None:
    sink = BlockingSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=0.01)
    flushers.append(flusher)
    serve(recorder)
    flusher.start()
    assert sink.entered.wait(5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, LOGGER):
        flusher.stop(timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert "did not answer" in caplog.text


def test_stop_flushes_the_last_interval_from_the_flusher_thread(
    recorder: Recorder, flushers: list[Flusher]
) -> None:
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=60)
    flusher.start()
    serve(recorder)
    flusher.stop()
    assert total(sink.snapshots) == 1
    # a SQLite connection belongs to the thread that opened it: the sink is
    # only ever called from the flusher's thread, the last time included
    assert sink.threads == {flusher._thread.ident if flusher._thread else None}
    assert threading.get_ident() not in sink.threads


def test_stop_without_a_thread_flushes_directly(recorder: Recorder) -> None:
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint)
    serve(recorder)
    flusher.stop()
    assert total(sink.snapshots) == 1


def test_start_is_idempotent(recorder: Recorder, flushers: list[Flusher]) -> None:
    flusher = Flusher(recorder, ListSink(), fake_fingerprint, interval_s=60)
    flushers.append(flusher)
    flusher.start()
    thread = flusher._thread
    flusher.start()
    assert flusher._thread is thread


def test_the_thread_flushes_every_interval(recorder: Recorder, flushers: list[Flusher]) -> None:
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=0.02)
    flushers.append(flusher)
    flusher.start()
    serve(recorder, "/a")
    deadline = time.monotonic() + 5
    while not sink.snapshots and time.monotonic() < deadline:
        time.sleep(0.005)
    serve(recorder, "/b")
    while total(sink.snapshots) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert total(sink.snapshots) == 2


def test_observers_see_every_snapshot_even_when_the_sink_fails(recorder: Recorder) -> None:
    seen: list[AppSnapshot] = []
    sink = FlakySink()
    flusher = Flusher(recorder, sink, fake_fingerprint, observers=[seen.append])
    serve(recorder)
    flusher.flush()
    serve(recorder)
    flusher.flush()
    flusher.flush()  # empty intervals too (a gauge may want to know time passed)
    assert len(seen) == 3
    assert total(seen) == 2
    assert sink.snapshots == []


def test_a_raising_observer_costs_no_data(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(snapshot: AppSnapshot) -> None:
        raise RuntimeError("observer bug")

    seen: list[AppSnapshot] = []
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, observers=[broken, seen.append])
    with caplog.at_level(logging.WARNING, LOGGER):
        serve(recorder)
        flusher.flush()
        serve(recorder)
        flusher.flush()
    assert total(sink.snapshots) == 2
    assert len(seen) == 2
    assert len(caplog.records) == 1


def test_a_raising_sampler_costs_no_data(recorder: Recorder) -> None:
    def sampler() -> object:
        raise OSError("no /proc")

    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, sampler=sampler)
    serve(recorder)
    flusher.flush()
    assert total(sink.snapshots) == 1


def test_samples_go_into_the_snapshot(recorder: Recorder) -> None:
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, sampler=lambda: "sample")
    flusher.flush()
    (snapshot,) = sink.snapshots
    assert snapshot.resources == ("sample",)


def test_after_fork_the_child_starts_afresh(recorder: Recorder, flushers: list[Flusher]) -> None:
    sink = FlakySink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=60)
    serve(recorder)
    flusher.flush()  # one snapshot pending (the sink fails)
    serve(recorder)  # and one request in the current interval
    assert len(flusher.pending) == 1

    flusher._after_fork()  # what os.register_at_fork calls in a child
    flushers.append(flusher)
    assert flusher.pending == collections.deque()
    assert recorder.collect().requests == {}
    assert flusher._thread is not None
    assert flusher._thread.is_alive()


def test_after_fork_the_sink_is_told(recorder: Recorder, flushers: list[Flusher]) -> None:
    class ForkAwareSink(ListSink):
        forks = 0

        def after_fork(self) -> None:  # e.g. StoreSink: forget the parent's connection
            self.forks += 1

    sink = ForkAwareSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=60)
    flushers.append(flusher)
    flusher._after_fork()
    assert sink.forks == 1


@pytest.mark.integration
def test_a_forked_child_flushes_its_own_requests_only(
    recorder: Recorder, flushers: list[Flusher]
) -> None:
    sink = ListSink()
    flusher = Flusher(recorder, sink, fake_fingerprint, interval_s=60)
    flushers.append(flusher)
    flusher.start()
    serve(recorder, "/parent")
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            thread = flusher._thread
            ok = thread is not None and thread.is_alive()
            serve(recorder, "/child")
            flusher.stop()
            routes = [r.route for s in sink.snapshots for r in s.requests]
            code = 0 if ok and routes == ["/child"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    flusher.stop()
    assert [r.route for s in sink.snapshots for r in s.requests] == ["/parent"]


def test_snapshot_rows_carry_repeats_across_requests(recorder: Recorder) -> None:
    for _ in range(3):
        ctx = RequestContext("GET", context.perf())
        token = current_request.set(ctx)
        try:
            ctx.route = "/r"
            recorder.outbound("GET", "h", "/x", 200, context.perf(), 0.01, identity="same")
            ctx.status = 200
        finally:
            current_request.reset(token)
        recorder.finish(ctx, 0.02)
    snapshot = Flusher(recorder, ListSink(), fake_fingerprint).build(recorder.collect())
    (row,) = snapshot.outbound
    assert (row.count, row.repeated, row.repeated_across) == (3, 0, 2)
    assert snapshot.profiles == ()
