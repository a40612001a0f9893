"""Tests of the SQLite store and open_store."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perfpilot.clock import FakeClock
from perfpilot.errors import StoreError
from perfpilot.records import LoadResult, NameStats, SecondStats, ThresholdResult
from perfpilot.stats.histogram import Histogram
from perfpilot.store import Store, open_store, rows
from perfpilot.store.schema import MIGRATIONS, SCHEMA_VERSION, statements
from perfpilot.store.sqlite import SQLiteStore


def _histogram(seed: int, n: int) -> Histogram:
    values = np.random.default_rng(seed).lognormal(mean=-4.0, sigma=0.8, size=n)
    histogram = Histogram()
    histogram.record_many(values)
    return histogram


def make_result(name: str = "checkout", started_at: float = 1_700_000_000.25) -> LoadResult:
    """A run with several names and seconds, real histograms, checks and thresholds."""
    result = LoadResult(
        name=name,
        started_at=started_at,
        ended_at=started_at + 3.5,
        config={"executor": "constant-arrival-rate", "rate": 50.0, "stages": [[1, 2.5]]},
        counters={"iterations": 150, "dropped_iterations": 3, "vus_max": 8},
        vus={0: 4, 1: 8, 2: 8},
    )
    for i, request in enumerate(("login", "cart", "pay ✓")):
        stats = NameStats(
            name=request,
            tags={"group": "shop", "name": request},
            checks={"status is 200": [40 + i, i]},
        )
        for second in range(3):
            seed = 10 * i + second
            stats.seconds[second] = SecondStats(
                latency=_histogram(seed, 40 + second),
                service=_histogram(seed + 1000, 40 + second),
                requests=40 + second,
                errors={"status_5xx": second, "timeout": 1} if second else {},
            )
        result.names[request] = stats
    result.names["never-sent"] = NameStats(name="never-sent")
    result.thresholds = [
        ThresholdResult("http_req_duration", "p(95)<500", True, 123.456),
        ThresholdResult("http_req_failed", "rate<0.01", False, 0.02, aborted=True),
        ThresholdResult("http_req_duration{name:x}", "p(99)<1", True, None),
    ]
    result.aborted = "threshold http_req_failed rate<0.01 failed"
    return result


def test_round_trip_is_exact(tmp_path: Path) -> None:
    result = make_result()
    with open_store(str(tmp_path / "perf.db")) as store:
        run_id = store.save_run(result)
        back = store.get_run(run_id)
    assert back.to_dict() == result.to_dict()
    assert back.names["login"].seconds[2].latency.count == 42


def test_round_trip_of_an_empty_run(tmp_path: Path) -> None:
    result = LoadResult(name="nothing", started_at=1.5, ended_at=1.5)
    with open_store(str(tmp_path / "perf.db")) as store:
        back = store.get_run(store.save_run(result))
        [summary] = store.list_runs()
    assert back.to_dict() == result.to_dict()
    assert summary.requests == 0
    assert summary.passed is None
    assert summary.p95_ms is None


def test_summary_columns(tmp_path: Path) -> None:
    result = make_result()
    clock = FakeClock(start=1_800_000_000.0)
    with SQLiteStore(tmp_path / "perf.db", clock=clock) as store:
        run_id = store.save_run(result, kind="probe")
        [summary] = store.list_runs()
    totals = result.totals()
    assert summary.id == run_id
    assert summary.kind == "probe"
    assert summary.name == "checkout"
    assert summary.started_at == result.started_at
    assert summary.ended_at == result.ended_at
    assert summary.requests == totals.requests == 3 * (40 + 41 + 42)
    assert summary.errors == totals.error_count
    assert summary.passed is False
    assert summary.aborted == result.aborted
    assert summary.p95_ms == pytest.approx(totals.latency.percentile(95) * 1000)
    assert summary.duration_s == 3.5
    assert summary.error_rate == pytest.approx(summary.errors / summary.requests)


def test_wal_mode_version_and_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "perf.db"
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {"runs", "run_names", "run_series", "run_thresholds"} <= tables
    store = SQLiteStore(path)
    try:
        assert store._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    finally:
        store.close()


def test_migrates_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # a zero-byte file: a valid, empty SQLite database
    with open_store(str(path)) as store:
        assert store.list_runs() == []
        store.save_run(make_result())
    with open_store(str(path)) as store:  # reopening applies nothing and keeps the run
        assert len(store.list_runs()) == 1


def test_migration_scripts_split_into_statements() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    parts = statements("CREATE TABLE a (x TEXT DEFAULT ';');\nCREATE TABLE b (y INT);\n")
    assert parts == ["CREATE TABLE a (x TEXT DEFAULT ';');", "CREATE TABLE b (y INT);"]
    assert all(sqlite3.complete_statement(s) for s in statements(MIGRATIONS[0]))


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "perf.db"
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=r"schema version \d+, newer than this perfpilot"):
        open_store(str(path))


def test_failure_mid_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "perf.db")
    kept = store.save_run(make_result("kept"))
    real_series_rows = rows.series_rows

    def broken_series_rows(result: LoadResult) -> Iterator[rows.Row]:
        yield from list(real_series_rows(result))[:2]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rows, "series_rows", broken_series_rows)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save_run(make_result("lost"))
    monkeypatch.undo()

    assert [s.name for s in store.list_runs()] == ["kept"]
    conn = store._connection()
    for table, key in (
        ("runs", "id"),
        ("run_names", "run_id"),
        ("run_series", "run_id"),
        ("run_thresholds", "run_id"),
    ):
        left = conn.execute(f"SELECT count(*) FROM {table} WHERE {key} != ?", (kept,))
        assert left.fetchone()[0] == 0, table
    # The store is still usable after the rollback.
    assert store.get_run(store.save_run(make_result("next"))).name == "next"
    store.close()


def test_sqlite_error_mid_save_is_a_store_error(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "perf.db")) as store:
        store.save_run(make_result())
        bad = make_result("bad")
        bad.thresholds.append(ThresholdResult("m", "e", True, None))
        object.__setattr__(bad.thresholds[-1], "metric", None)  # violates NOT NULL, last insert
        with pytest.raises(StoreError, match="cannot save the run"):
            store.save_run(bad)
        assert [s.name for s in store.list_runs()] == ["checkout"]


def test_list_order_and_limit(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "perf.db")) as store:
        ids = {}
        for name, started in (("b", 200.0), ("a", 100.0), ("c", 300.0), ("c2", 300.0)):
            ids[name] = store.save_run(LoadResult(name=name, started_at=started, ended_at=started))
        assert [s.name for s in store.list_runs()] == ["c2", "c", "b", "a"]
        assert [s.name for s in store.list_runs(limit=2)] == ["c2", "c"]
        assert store.list_runs(limit=0) == []
        assert [s.id for s in store.list_runs()] == [ids[n] for n in ("c2", "c", "b", "a")]
        with pytest.raises(StoreError, match="limit"):
            store.list_runs(limit=-1)


def test_missing_run_id(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "perf.db")) as store, pytest.raises(StoreError) as info:
        store.get_run(7)
    assert str(info.value) == "no run with id 7"


def test_closed_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "perf.db"))
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()


def test_empty_kind_is_refused() -> None:
    with open_store("sqlite://") as store, pytest.raises(StoreError, match="kind"):
        store.save_run(make_result(), kind="")


# -- open_store locations -------------------------------------------------------------


def test_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "perf.db"
    with open_store(str(path)) as store:
        assert isinstance(store, Store)
    assert path.is_file()


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "abs.db"
    with open_store(f"sqlite:///{absolute}") as store:  # sqlite:////tmp/... is absolute
        store.save_run(make_result())
    assert absolute.is_file()
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///rel/perf.db").close()
    assert (tmp_path / "rel" / "perf.db").is_file()
    for memory in ("sqlite://", ":memory:", "sqlite:///:memory:"):
        with open_store(memory) as store:
            store.save_run(make_result())
            assert len(store.list_runs()) == 1


def test_default_location_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    open_store(".perfpilot/perfpilot.db").close()
    assert (tmp_path / ".perfpilot" / "perfpilot.db").is_file()


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("mysql://user:secret@db/perf", "unknown store URL scheme 'mysql'"),
        ("sqlite:/x.db", None),  # a plain relative path; fine
        ("sqlite://host/x.db", "malformed SQLite URL"),
        ("   ", "empty"),
    ],
)
def test_bad_locations(
    location: str, message: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if message is None:
        open_store(location).close()
        return
    with pytest.raises(StoreError, match=message) as info:
        open_store(location)
    assert "secret" not in str(info.value)


def test_unusable_paths(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        open_store(str(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store directory"):
        open_store(str(blocker / "sub" / "perf.db"))
    text = tmp_path / "notes.txt"
    text.write_text("these are not the bytes you are looking for\n" * 200)
    with pytest.raises(StoreError, match="not a perfpilot store"):
        open_store(str(text))
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE mine (x)")
    conn.close()
    with pytest.raises(StoreError, match="SQLite database but not a perfpilot store"):
        open_store(str(other))
    with pytest.raises(StoreError, match="no store at"):
        open_store(str(tmp_path / "missing.db"), create=False)
    assert not (tmp_path / "missing.db").exists()


def test_damaged_rows_are_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "perf.db"
    with open_store(str(path)) as store:
        run_id = store.save_run(make_result())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET counters_json = '[1' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    with open_store(str(path)) as store, pytest.raises(StoreError, match="damaged"):
        store.get_run(run_id)


# -- several processes ------------------------------------------------------------------


def _save_many(path: str, label: str, count: int) -> list[int]:
    with open_store(path) as store:
        return [store.save_run(make_result(f"{label}-{i}")) for i in range(count)]


@pytest.mark.integration
def test_two_processes_save_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "shared" / "perf.db")
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        first, second = pool.starmap(_save_many, [(path, "a", 40), (path, "b", 40)])
    assert len(set(first) | set(second)) == 80
    with open_store(path) as store:
        names = {s.name for s in store.list_runs(limit=100)}
        assert names == {f"{x}-{i}" for x in "ab" for i in range(40)}
        assert store.get_run(second[-1]).to_dict() == make_result("b-39").to_dict()


def _open_fresh_stores(directory: str, count: int, barrier: Any) -> list[str]:
    """Open ``count`` new stores, each at the same moment as the other processes."""
    errors = []
    for i in range(count):
        barrier.wait(timeout=60)
        try:
            open_store(f"{directory}/s{i}.db").close()
        except StoreError as exc:
            errors.append(str(exc))
    return errors


@pytest.mark.integration
def test_processes_creating_one_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Workers starting together each create the store: the switch to WAL
    (which SQLite refuses at once while another connection is there) is
    retried, and a store another process is creating is never taken for some
    other program's database."""
    context = multiprocessing.get_context("spawn")
    processes = 3
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            results = pool.starmap(_open_fresh_stores, [(str(tmp_path), 15, barrier)] * processes)
    assert [e for errors in results for e in errors] == []
    for i in range(15):
        with open_store(str(tmp_path / f"s{i}.db")) as store:
            assert store.list_runs() == []
