"""In-app monitoring data in the store: both backends, one behaviour.

Every test that takes ``location`` runs against SQLite and against PostgreSQL
(a fresh database for this module on the session's throwaway server).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from perfpilot.app_records import (
    AppSnapshot,
    CacheRow,
    OutboundRow,
    PoolRow,
    ProfileRow,
    QueryRow,
    RequestRow,
    ResourceSample,
    Span,
    Trace,
    UnitRow,
)
from perfpilot.errors import StoreError
from perfpilot.stats.histogram import Histogram
from perfpilot.store import Store, app_rows, open_store
from perfpilot.store.schema import MIGRATIONS, SCHEMA_VERSION
from perfpilot.store.sqlite import BUSY_BACKOFF_S, BUSY_RETRIES, SQLiteStore
from tests.pg import PostgresServer
from tests.store.test_sqlite import make_result

T0 = 1_700_000_040.0  # a whole minute
ROUTES = ("/orders/{id}", "/users", "/søk")


# -- building snapshots ---------------------------------------------------------------


def _histogram(rng: np.random.Generator, n: int) -> Histogram:
    histogram = Histogram()
    histogram.record_many(rng.lognormal(mean=-4.0, sigma=0.9, size=n))
    return histogram


def make_snapshot(
    seed: int,
    *,
    service: str = "shop",
    started_at: float | None = None,
    pid: int = 4242,
) -> AppSnapshot:
    """A snapshot with every kind of row, real histograms and awkward floats."""
    rng = np.random.default_rng(seed)
    start = T0 + 5.0 * seed if started_at is None else started_at
    routes = ROUTES[: 1 + seed % 3]

    def n() -> int:
        return int(rng.integers(1, 40))

    def money() -> float:
        return float(rng.random()) / 7.0

    requests = tuple(
        RequestRow(route, method, status, n(), int(rng.integers(0, 3)), _histogram(rng, n()),
                   money(), n(), money(), n(), money(), n(), n(), n(), n(), money())
        for route in routes
        for method, status in (("GET", 2), ("POST", 5 if seed % 2 else 2))
    )  # fmt: skip
    queries = tuple(
        QueryRow(f"fp{k}", f"SELECT * FROM t{k} WHERE id = ?", "sqlite", route, n(), seed % 2,
                 _histogram(rng, n()), n(), None if (seed + k) % 2 else f"app/views.py:{10 + k}")
        for route in routes
        for k in range(2)
    )  # fmt: skip
    outbound = tuple(
        OutboundRow("api.openai.com", "/v1/chat/completions", "POST", 2, route, n(), 0,
                    _histogram(rng, n()), n(), n(), seed % 2, money(), n(), n(),
                    "gpt-4o-mini" if seed % 2 == 0 else None, seed % 3, seed % 4,
                    None if seed % 2 else "app/llm.py:31 < app/views.py:88")
        for route in routes
    )  # fmt: skip
    caches = tuple(CacheRow("redis", "GET", "user:", route, n(), n()) for route in routes)
    units = tuple(UnitRow("listing", route, n(), n(), money()) for route in routes)
    pools = (
        PoolRow("postgresql://app@db/shop", n(), money(), float(rng.random()), n(), n() % 5, 5),
    )
    resources = (
        ResourceSample(start + 1.0 + seed * 1e-3, pid, n() * 1_000_000, float(rng.random() * 100),
                       n(), n(), float(rng.random() * 100), n() * 10**9, 16 * 10**9, n(), n(),
                       n(), n()),
    )  # fmt: skip
    traces = (
        Trace(
            at=start + 0.5 + seed * 1e-3,
            route=routes[-1],
            method="GET",
            status=500 if seed % 2 else 200,
            duration_s=float(rng.random()),
            reasons=("slow", "repeated_query") if seed % 2 else ("sample",),
            spans=(
                Span("db", "SELECT * FROM t0 WHERE id = ?", 0.001, 0.002,
                     {"rows": 1, "db": "sqlite", "call_site": "app/views.py:10"}),
                Span("http", "POST api.openai.com/v1/chat/completions", 0.01, 0.25,
                     {"status": 200, "cost_usd": 0.000123, "model": "gpt-4o-mini"}),
                Span("cache", "redis GET user:", 0.3, 0.0, {"hit": False, "ключ": ["ü", None]}),
            ),
            spans_dropped=seed % 4,
        ),
    )  # fmt: skip
    return AppSnapshot(
        service=service,
        host="web-1",
        pid=pid,
        started_at=start,
        ended_at=start + 5.0,
        requests=requests,
        queries=queries,
        outbound=outbound,
        caches=caches,
        units=units,
        pools=pools,
        resources=resources,
        traces=traces,
        drops={"traces": seed % 3, "queries": 1},
        profiles=tuple(
            ProfileRow(route, stack, via, n())
            for route in routes
            for stack, via in (
                ("/app/views.py:12 listing < /app/views.py:40 index", ""),
                ("/app/views.py:13 listing", "json/encoder.py:258 JSONEncoder.iterencode"),
                ("<library>", f"starlette/routing.py:{70 + seed % 2} run"),
            )
        ),
    )


# -- a reference merge, written independently of the store's ---------------------------


def reference(
    rows: Sequence[Any],
    keys: tuple[str, ...],
    *,
    maxed: tuple[str, ...] = (),
    first: tuple[str, ...] = (),
    last: tuple[str, ...] = (),
) -> list[Any]:
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, k) for k in keys), []).append(row)
    merged = []
    for key in sorted(groups):
        group = groups[key]
        values: dict[str, Any] = {}
        for field in dataclasses.fields(group[0]):
            seen = [getattr(row, field.name) for row in group]
            if field.name in keys:
                values[field.name] = seen[0]
            elif field.name in maxed:
                values[field.name] = max(seen)
            elif field.name in first:
                values[field.name] = next((v for v in seen if v is not None), None)
            elif field.name in last:
                values[field.name] = next((v for v in reversed(seen) if v is not None), None)
            elif isinstance(seen[0], Histogram):
                total = Histogram()
                for histogram in seen:
                    total.merge(histogram)
                values[field.name] = total
            elif isinstance(seen[0], float):
                values[field.name] = math.fsum(seen)
            elif isinstance(seen[0], int):
                values[field.name] = sum(seen)
            else:
                assert len(set(seen)) == 1, field.name
                values[field.name] = seen[0]
        merged.append(type(group[0])(**values))
    return merged


def expected_requests(snapshots: Sequence[AppSnapshot]) -> list[RequestRow]:
    rows = [row for s in snapshots for row in s.requests]
    return reference(rows, ("route", "method", "status_class"))


def check_everything(store: Store, snapshots: Sequence[AppSnapshot], **where: Any) -> None:
    """Every read of ``store`` equals the reference merge of ``snapshots``."""

    def every(attr: str) -> list[Any]:
        return [row for s in snapshots for row in getattr(s, attr)]

    assert store.app_requests(**where) == expected_requests(snapshots)
    assert store.app_queries(**where) == reference(
        every("queries"), ("fingerprint", "db", "route"), first=("call_site",)
    )
    assert store.app_outbound(**where) == reference(
        every("outbound"),
        ("host", "template", "method", "status_class", "route"),
        last=("model",),
        first=("call_site",),
    )
    assert store.app_caches(**where) == reference(
        every("caches"), ("cache", "command", "prefix", "route")
    )
    assert store.app_profiles(**where) == reference(every("profiles"), ("route", "stack", "via"))
    assert store.app_units(**where) == reference(every("units"), ("unit", "route"))
    assert store.app_pools(**where) == reference(
        every("pools"),
        ("pool",),
        maxed=("max_wait_s", "checked_out_max", "overflow_max", "size"),
    )
    assert store.app_resources(**where) == sorted(every("resources"), key=lambda r: r.at)
    traces = sorted(every("traces"), key=lambda t: t.at, reverse=True)
    assert store.app_traces(**where, limit=10_000) == traces
    drops: dict[str, int] = {}
    for snapshot in snapshots:
        for kind, count in snapshot.drops.items():
            drops[kind] = drops.get(kind, 0) + count
    assert store.app_drops(**where) == dict(sorted(drops.items()))


# -- fixtures ---------------------------------------------------------------------------

APP_TABLES = ", ".join(table.name for table in app_rows.TABLES)


@pytest.fixture(scope="module")
def pg_dsn(postgres: PostgresServer) -> str:
    """A fresh database for this module; its schema is created on first open."""
    name = "perfpilot_test_app_store"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = postgres.dsn_for(name)
    open_store(dsn).close()
    return dsn


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)],
)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "perf.db")
    dsn: str = request.getfixturevalue("pg_dsn")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES}, runs CASCADE")
    return dsn


@pytest.fixture
def store(location: str) -> Iterator[Store]:
    with open_store(location) as opened:
        yield opened


# -- round trips ------------------------------------------------------------------------


def test_merged_reads_equal_the_sum_of_snapshots(store: Store) -> None:
    snapshots = [make_snapshot(seed, pid=1000 + seed % 3) for seed in range(12)]
    for snapshot in snapshots:
        store.save_app_snapshot(snapshot)
    check_everything(store, snapshots)
    # spelled out once for the main figure: one key, summed by hand
    key = (ROUTES[0], "GET", 2)
    [merged] = [r for r in store.app_requests() if (r.route, r.method, r.status_class) == key]
    parts = [r for s in snapshots for r in s.requests if (r.route, r.method, r.status_class) == key]
    assert len(parts) == 12
    assert merged.count == sum(r.count for r in parts)
    assert merged.latency.count == sum(r.latency.count for r in parts)
    assert merged.latency.max_s == max(r.latency.max_s for r in parts)
    assert merged.cost_usd == math.fsum(r.cost_usd for r in parts)


def test_one_snapshot_reads_back_unchanged(store: Store) -> None:
    snapshot = make_snapshot(3)
    store.save_app_snapshot(snapshot)
    assert store.app_requests() == sorted(
        snapshot.requests, key=lambda r: (r.route, r.method, r.status_class)
    )
    assert store.app_traces() == list(snapshot.traces)
    assert store.app_resources() == list(snapshot.resources)
    assert store.app_pools() == list(snapshot.pools)
    assert store.app_drops() == {"queries": 1, "traces": 0}


def test_traces_keep_their_spans_newest_first(store: Store) -> None:
    snapshots = [make_snapshot(seed) for seed in range(5)]
    for snapshot in reversed(snapshots):
        store.save_app_snapshot(snapshot)
    traces = store.app_traces()
    assert traces == [s.traces[0] for s in reversed(snapshots)]
    assert traces[0].spans[2].detail == {"hit": False, "ключ": ["ü", None]}
    assert traces[0].spans[1].detail["cost_usd"] == 0.000123
    assert [t.at for t in store.app_traces(limit=2)] == [t.at for t in traces[:2]]
    assert store.app_traces(limit=0) == []
    with pytest.raises(StoreError, match="limit"):
        store.app_traces(limit=-1)


def test_span_details_that_are_not_json_are_kept_as_text(store: Store) -> None:
    odd = Trace(T0, "/x", "GET", 200, 0.1, ("sample",), (Span("db", "q", 0.0, 0.1, {"v": b"x"}),))
    store.save_app_snapshot(AppSnapshot("shop", "h", 1, T0, T0 + 5, traces=(odd,)))
    [back] = store.app_traces()
    assert back.spans[0].detail == {"v": "b'x'"}


def test_empty_snapshot_writes_nothing(store: Store) -> None:
    store.save_app_snapshot(AppSnapshot("shop", "h", 1, T0, T0 + 5))
    assert store.app_requests() == []
    assert store.app_drops() == {}
    assert store.app_timeline() == []


def test_pool_names_never_keep_a_password(store: Store) -> None:
    pool = PoolRow("postgresql://app:hunter2@db/shop", 1, 0.5, 0.5, 1, 0, 5)
    store.save_app_snapshot(AppSnapshot("shop", "h", 1, T0, T0 + 5, pools=(pool,)))
    [back] = store.app_pools()
    assert back.pool == "postgresql://app:***@db/shop"


# -- filters and the timeline -------------------------------------------------------------


def test_since_until_and_service_filters(store: Store) -> None:
    snapshots = [
        make_snapshot(k, service=service, started_at=T0 + 20.0 * k)
        for k in range(9)
        for service in ("shop", "admin")
    ]
    for snapshot in snapshots:
        store.save_app_snapshot(snapshot)

    def chosen(lo: float, hi: float, service: str | None = None) -> list[AppSnapshot]:
        return [
            s
            for s in snapshots
            if lo <= s.started_at < hi and (service is None or s.service == service)
        ]

    # since is inclusive, until exclusive, both on the interval start
    check_everything(store, chosen(T0 + 40, T0 + 100), since=T0 + 40, until=T0 + 100)
    check_everything(store, chosen(T0 + 45, T0 + 100), since=T0 + 45, until=T0 + 100.0)
    check_everything(store, chosen(T0 + 61, math.inf, "admin"), since=T0 + 61, service="admin")
    check_everything(store, chosen(0, T0 + 20, "shop"), until=T0 + 20, service="shop")
    check_everything(store, snapshots)
    assert store.app_requests(service="nobody") == []
    assert store.app_requests(since=T0 + 1000) == []


def test_timeline_is_per_minute(store: Store) -> None:
    # Intervals every 15 s over three minutes, from two processes.
    snapshots = [
        make_snapshot(k, started_at=T0 + 15.0 * k, pid=pid) for k in range(12) for pid in (1, 2)
    ]
    for snapshot in snapshots:
        store.save_app_snapshot(snapshot)
    expected: list[tuple[float, RequestRow]] = []
    for minute in (T0, T0 + 60, T0 + 120):
        in_minute = [s for s in snapshots if minute <= s.started_at < minute + 60]
        expected += [(minute, row) for row in expected_requests(in_minute)]
    timeline = store.app_timeline()
    assert timeline == expected
    assert all(isinstance(minute, float) for minute, _ in timeline)

    route = ROUTES[1]
    assert store.app_timeline(route=route) == [(m, r) for m, r in expected if r.route == route]
    assert store.app_timeline(since=T0 + 60, until=T0 + 120) == [
        (m, r) for m, r in expected if m == T0 + 60
    ]
    assert store.app_timeline(service="other") == []


def test_minute_of() -> None:
    assert app_rows.minute_of(T0) == T0
    assert app_rows.minute_of(T0 + 59.999) == T0
    assert app_rows.minute_of(T0 + 60) == T0 + 60
    assert app_rows.minute_of(-0.5) == -60


# -- atomicity ---------------------------------------------------------------------------


def test_failure_in_the_middle_of_a_save_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = make_snapshot(1)
    store.save_app_snapshot(kept)

    def broken(trace: Trace) -> tuple[Any, ...]:
        raise RuntimeError("disk on fire")

    # Traces come after requests, queries, outbound calls and the rest (SQLite
    # builds every row before it takes the lock; PostgreSQL inserts as it goes).
    monkeypatch.setattr(app_rows, "trace_values", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save_app_snapshot(make_snapshot(2))
    monkeypatch.undo()
    check_everything(store, [kept])

    # The database refuses the last row written (NOT NULL): the rows inserted
    # before it in the same transaction are rolled back.
    bad = dataclasses.replace(
        make_snapshot(3),
        drops={"traces": 1, "zzz": None},  # type: ignore[dict-item]
    )
    with pytest.raises(StoreError, match="cannot save the app snapshot"):
        store.save_app_snapshot(bad)
    check_everything(store, [kept])

    later = make_snapshot(4)
    store.save_app_snapshot(later)  # still usable after the rollbacks
    check_everything(store, [kept, later])


# -- several processes -------------------------------------------------------------------

WORKERS = 4
PER_WORKER = 50


def _worker_snapshots(worker: int) -> list[AppSnapshot]:
    return [
        make_snapshot(worker * 1000 + i, started_at=T0 + 5.0 * i, pid=10_000 + worker)
        for i in range(PER_WORKER)
    ]


def _save_from_worker(location: str, worker: int) -> int:
    with open_store(location) as store:
        for snapshot in _worker_snapshots(worker):
            store.save_app_snapshot(snapshot)
    return PER_WORKER


@pytest.mark.integration
def test_four_processes_save_concurrently(location: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        saved = pool.starmap(_save_from_worker, [(location, w) for w in range(WORKERS)])
    assert saved == [PER_WORKER] * WORKERS
    snapshots = [s for w in range(WORKERS) for s in _worker_snapshots(w)]
    with open_store(location) as store:
        check_everything(store, snapshots)
        requests = store.app_requests()
        assert sum(r.count for r in requests) == sum(r.count for s in snapshots for r in s.requests)
        assert len(store.app_traces(limit=1000)) == WORKERS * PER_WORKER
        assert len(store.app_resources()) == WORKERS * PER_WORKER
        assert store.app_drops()["queries"] == WORKERS * PER_WORKER


# -- SQLite specifics ----------------------------------------------------------------------


def test_sqlite_migrates_a_version_1_store_and_keeps_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    monkeypatch.setattr("perfpilot.store.sqlite.MIGRATIONS", MIGRATIONS[:1])
    monkeypatch.setattr("perfpilot.store.sqlite.SCHEMA_VERSION", 1)
    with SQLiteStore(path) as old:
        run_ids = [old.save_run(make_result(f"run-{i}")) for i in range(3)]
    monkeypatch.undo()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert (
        conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'app_%'").fetchone()[0]
        == 0
    )
    conn.close()

    with open_store(str(path)) as store:
        assert [store.get_run(i).to_dict() for i in run_ids] == [
            make_result(f"run-{i}").to_dict() for i in range(3)
        ]
        snapshot = make_snapshot(1)
        store.save_app_snapshot(snapshot)
        check_everything(store, [snapshot])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()


def test_sqlite_migrates_a_version_2_store_and_its_request_rows_read_zero_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v2.db"
    monkeypatch.setattr("perfpilot.store.sqlite.MIGRATIONS", MIGRATIONS[:2])
    monkeypatch.setattr("perfpilot.store.sqlite.SCHEMA_VERSION", 2)
    with SQLiteStore(path) as old:
        conn = old._connection()
        conn.execute(
            "INSERT INTO app_requests (service, host, pid, started_at, ended_at, minute, route,"
            " method, status_class, count, errors, latency, db_time_s, db_count, outbound_time_s,"
            " outbound_count, cost_usd, cache_hits, cache_misses)"
            " VALUES ('shop', 'h', 1, ?, ?, ?, '/x', 'GET', 2, 4, 0, ?, 0, 0, 0, 0, 0, 0, 0)",
            (T0, T0 + 1, T0, _histogram(np.random.default_rng(1), 4).to_bytes()),
        )
        conn.commit()
    monkeypatch.undo()
    with open_store(str(path)) as store:
        (row,) = store.app_requests()
        assert (row.route, row.count, row.bytes_out, row.uncompressed) == ("/x", 4, 0, 0)


def test_sqlite_migrates_a_version_3_store_and_its_outbound_rows_read_no_repeats_across(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v3.db"
    monkeypatch.setattr("perfpilot.store.sqlite.MIGRATIONS", MIGRATIONS[:3])
    monkeypatch.setattr("perfpilot.store.sqlite.SCHEMA_VERSION", 3)
    with SQLiteStore(path) as old:
        conn = old._connection()
        conn.execute(
            "INSERT INTO app_outbound (service, host, pid, started_at, ended_at, minute,"
            " remote_host, template, method, status_class, route, count, errors, latency,"
            " bytes_in, bytes_out, retries, cost_usd, prompt_tokens, completion_tokens, model,"
            " repeated) VALUES ('shop', 'h', 1, ?, ?, ?, 'api', '/v1/x', 'GET', 2, '/r', 5, 0, ?,"
            " 0, 0, 0, 0, 0, 0, NULL, 2)",
            (T0, T0 + 1, T0, _histogram(np.random.default_rng(1), 5).to_bytes()),
        )
        conn.commit()
    monkeypatch.undo()
    with open_store(str(path)) as store:
        (row,) = store.app_outbound()
        assert (row.route, row.count, row.repeated, row.repeated_across) == ("/r", 5, 2, 0)
        assert store.app_profiles() == []


V4_REQUEST = (
    "INSERT INTO app_requests (service, host, pid, started_at, ended_at, minute, route, method,"
    " status_class, count, errors, latency, db_time_s, db_count, outbound_time_s, outbound_count,"
    " cost_usd, cache_hits, cache_misses, bytes_out, uncompressed)"
    " VALUES ('shop', 'h', 1, {p}, {p}, {p}, '/x', 'GET', 2, 4, 0, {p}, 0.5, 2, 0, 0, 0, 3, 1, 0, 0)"
)
V4_OUTBOUND = (
    "INSERT INTO app_outbound (service, host, pid, started_at, ended_at, minute, remote_host,"
    " template, method, status_class, route, count, errors, latency, bytes_in, bytes_out, retries,"
    " cost_usd, prompt_tokens, completion_tokens, model, repeated, repeated_across)"
    " VALUES ('shop', 'h', 1, {p}, {p}, {p}, 'api', '/v1/x', 'GET', 2, '/x', 5, 0, {p}, 0, 0, 0, 0,"
    " 0, 0, NULL, 2, 1)"
)


def write_v4_rows(conn: Any, mark: str) -> None:
    """One request row and one outbound row as schema version 4 wrote them."""
    hist = _histogram(np.random.default_rng(1), 4).to_bytes()
    conn.execute(V4_REQUEST.format(p=mark), (T0, T0 + 1, T0, hist))
    conn.execute(V4_OUTBOUND.format(p=mark), (T0, T0 + 1, T0, hist))
    conn.commit()


def check_v4_rows_read_as_untimed_and_without_call_sites(store: Store) -> None:
    (request,) = store.app_requests()
    assert (request.route, request.count, request.cache_hits, request.cache_time_s) == (
        "/x", 4, 3, 0.0,
    )  # fmt: skip
    (call,) = store.app_outbound()
    assert (call.route, call.count, call.repeated_across, call.call_site) == ("/x", 5, 1, None)
    snapshot = make_snapshot(2)  # seed 2: an outbound call site, cache time
    assert snapshot.outbound[0].call_site and snapshot.requests[0].cache_time_s
    store.save_app_snapshot(snapshot)
    sites = {row.call_site for row in store.app_outbound()}
    assert sites == {None, "app/llm.py:31 < app/views.py:88"}
    assert math.fsum(r.cache_time_s for r in store.app_requests()) == pytest.approx(
        math.fsum(r.cache_time_s for r in snapshot.requests)
    )


def test_sqlite_migrates_a_version_4_store_to_cache_time_and_outbound_call_sites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v4.db"
    monkeypatch.setattr("perfpilot.store.sqlite.MIGRATIONS", MIGRATIONS[:4])
    monkeypatch.setattr("perfpilot.store.sqlite.SCHEMA_VERSION", 4)
    with SQLiteStore(path) as old:
        write_v4_rows(old._connection(), "?")
    monkeypatch.undo()
    with open_store(str(path)) as store:
        check_v4_rows_read_as_untimed_and_without_call_sites(store)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()


def test_sqlite_retries_a_busy_database(tmp_path: Path) -> None:
    path = tmp_path / "perf.db"
    pauses: list[float] = []
    release_after = [2]  # pauses; 0 means never
    blocker = sqlite3.connect(path, isolation_level=None)

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == release_after[0]:
            blocker.execute("COMMIT")

    with SQLiteStore(path, busy_timeout_s=0, sleep=sleep) as store:
        blocker.execute("BEGIN IMMEDIATE")  # another process's write transaction
        snapshot = make_snapshot(1)
        store.save_app_snapshot(snapshot)
        assert pauses == [BUSY_BACKOFF_S, 2 * BUSY_BACKOFF_S]
        check_everything(store, [snapshot])

        pauses.clear()
        release_after[0] = 0
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="database is locked"):
            store.save_app_snapshot(make_snapshot(2))
        assert pauses == [BUSY_BACKOFF_S * 2**i for i in range(BUSY_RETRIES)]
        blocker.execute("ROLLBACK")
        check_everything(store, [snapshot])
    blocker.close()


def test_sqlite_reads_use_the_indexes(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "perf.db") as store:
        conn = store._connection()
        for where, index in (
            ({"service": "shop", "since": T0}, "app_requests_by_service"),
            ({"since": T0, "until": T0 + 60}, "app_requests_by_minute"),
        ):
            sql, params = app_rows.select_sql(app_rows.REQUESTS, mark="?", **where)
            plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert index in plan, plan
        sql, params = app_rows.select_sql(app_rows.QUERIES, mark="?", route="/x")
        plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "app_queries_by_route" in plan, plan


def test_span_of_the_intervals_that_recorded_requests(store: Store) -> None:
    assert store.app_span() is None
    snapshots = [make_snapshot(seed, pid=1000 + seed % 3) for seed in range(4)]
    for snapshot in snapshots:
        store.save_app_snapshot(snapshot)
    with_requests = [s for s in snapshots if s.requests]
    expected = (
        min(s.started_at for s in with_requests),
        max(s.ended_at for s in with_requests),
    )
    assert store.app_span() == pytest.approx(expected)
    assert store.app_span(service="no such service") is None
