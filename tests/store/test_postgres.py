"""The PostgreSQL store: the same schema and answers as SQLite, safe URLs, migrations.

App-data reads on both backends are tested in ``test_app_store.py``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from perfpilot.clock import FakeClock
from perfpilot.errors import EXIT_USAGE, StoreError
from perfpilot.records import LoadResult, ThresholdResult
from perfpilot.store import open_store, rows
from perfpilot.store.dsn import display_dsn, redact_credentials, redact_dsn, secrets_of
from perfpilot.store.pg_schema import PG_MIGRATIONS, VERSION_TABLE
from perfpilot.store.postgres import MISSING_PSYCOPG, PostgresStore
from perfpilot.store.schema import MIGRATIONS, SCHEMA_VERSION
from perfpilot.store.sqlite import SQLiteStore
from tests.pg import PostgresServer
from tests.store.test_app_store import (
    check_everything,
    check_v4_rows_read_as_untimed_and_without_call_sites,
    make_snapshot,
    write_v4_rows,
)
from tests.store.test_sqlite import make_result

PASSWORD = "hunter2-Sekr1t"


def _fresh_database(server: PostgresServer, name: str) -> str:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn_for(name)


@pytest.fixture(scope="module")
def pg_dsn(postgres: PostgresServer) -> str:
    """A fresh database for this module."""
    return _fresh_database(postgres, "perfpilot_test_postgres")


@pytest.fixture
def empty_dsn(pg_dsn: str) -> str:
    """The module's database with its perfpilot tables emptied and ids restarted."""
    open_store(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != %s",
                (VERSION_TABLE,),
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    return pg_dsn


@pytest.fixture
def pg_store(empty_dsn: str) -> Iterator[PostgresStore]:
    with PostgresStore(empty_dsn, clock=FakeClock(start=1_800_000_000.0)) as store:
        yield store


# -- load runs: the same as SQLite --------------------------------------------------------


@pytest.mark.integration
def test_runs_match_sqlite_exactly(pg_store: PostgresStore, tmp_path: Path) -> None:
    results = [
        make_result("checkout"),
        LoadResult(name="nothing", started_at=1.5, ended_at=1.5),
        make_result("later ✓", started_at=1_700_000_100.5),
        make_result("tie", started_at=1_700_000_100.5),
    ]
    results[1].thresholds = [ThresholdResult("m", "p(95)<1", True, None)]
    with SQLiteStore(tmp_path / "perf.db", clock=FakeClock(start=1_800_000_000.0)) as lite:
        lite_ids = [lite.save_run(r, kind="load" if i else "probe") for i, r in enumerate(results)]
        pg_ids = [
            pg_store.save_run(r, kind="load" if i else "probe") for i, r in enumerate(results)
        ]
        assert pg_ids == lite_ids
        for run_id, result in zip(pg_ids, results, strict=True):
            assert pg_store.get_run(run_id).to_dict() == result.to_dict()
            assert pg_store.get_run(run_id).to_dict() == lite.get_run(run_id).to_dict()
        assert pg_store.list_runs() == lite.list_runs()
        assert pg_store.list_runs(limit=2) == lite.list_runs(limit=2)
        assert [s.name for s in pg_store.list_runs()] == ["tie", "later ✓", "checkout", "nothing"]
    summary = pg_store.list_runs()[2]
    assert (summary.kind, summary.passed, summary.p95_ms is not None) == ("probe", False, True)
    assert pg_store.list_runs(limit=0) == []
    with pytest.raises(StoreError, match="limit"):
        pg_store.list_runs(limit=-1)


@pytest.mark.integration
def test_missing_run_and_empty_kind(pg_store: PostgresStore) -> None:
    with pytest.raises(StoreError) as info:
        pg_store.get_run(7)
    assert str(info.value) == "no run with id 7"
    with pytest.raises(StoreError, match="kind"):
        pg_store.save_run(make_result(), kind="")


@pytest.mark.integration
def test_failure_mid_save_run_leaves_nothing(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = pg_store.save_run(make_result("kept"))
    real_series_rows = rows.series_rows

    def broken_series_rows(result: LoadResult) -> Iterator[rows.Row]:
        yield from list(real_series_rows(result))[:2]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rows, "series_rows", broken_series_rows)
    with pytest.raises(RuntimeError, match="disk on fire"):
        pg_store.save_run(make_result("lost"))
    monkeypatch.undo()

    bad = make_result("bad")
    bad.thresholds.append(ThresholdResult("m", "e", True, None))
    object.__setattr__(bad.thresholds[-1], "metric", None)  # NOT NULL, the last insert
    with pytest.raises(StoreError, match="cannot save the run"):
        pg_store.save_run(bad)

    assert [s.name for s in pg_store.list_runs()] == ["kept"]
    conn = pg_store._connection()
    for table in ("run_names", "run_series", "run_thresholds"):
        left = conn.execute(f"SELECT count(*) FROM {table} WHERE run_id != %s", (kept,))
        assert left.fetchone() == (0,), table
    assert pg_store.get_run(pg_store.save_run(make_result("next"))).name == "next"


# -- schema and migrations ------------------------------------------------------------------


@pytest.mark.integration
def test_schema_matches_sqlite(pg_store: PostgresStore, tmp_path: Path) -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS) == SCHEMA_VERSION
    conn = pg_store._connection()
    pg_columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name != %s ORDER BY table_name, ordinal_position",
        (VERSION_TABLE,),
    ):
        pg_columns.setdefault(table, []).append(column)
    pg_indexes = {
        r[0]
        for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
            "AND indexname NOT LIKE '%%_pkey'"
        )
    }
    assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_VERSION,)]

    with SQLiteStore(tmp_path / "perf.db") as lite:
        sqlite_conn = lite._connection()
        names = [
            r[0]
            for r in sqlite_conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence'"
            )
        ]
        sqlite_columns = {
            name: [r[1] for r in sqlite_conn.execute(f"PRAGMA table_info({name})")]
            for name in names
        }
        sqlite_indexes = {
            r[0]
            for r in sqlite_conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    assert pg_columns == sqlite_columns
    assert pg_indexes == sqlite_indexes
    assert "app_traces" in pg_columns


@pytest.mark.integration
def test_migrates_a_version_1_store_and_keeps_its_runs(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = _fresh_database(postgres, "perfpilot_test_v1")
    monkeypatch.setattr("perfpilot.store.postgres.SCHEMA_VERSION", 1)
    with PostgresStore(dsn) as old:
        run_id = old.save_run(make_result("old"))
        tables = {r[0] for r in old._connection().execute("SELECT tablename FROM pg_tables")}
        assert "runs" in tables
        assert "app_requests" not in tables
    monkeypatch.undo()
    with PostgresStore(dsn) as store:
        assert store.get_run(run_id).to_dict() == make_result("old").to_dict()
        snapshot = make_snapshot(1)
        store.save_app_snapshot(snapshot)
        check_everything(store, [snapshot])
        version = store._connection().execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        assert version == (SCHEMA_VERSION,)


@pytest.mark.integration
def test_migrates_a_version_4_store_to_cache_time_and_outbound_call_sites(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = _fresh_database(postgres, "perfpilot_test_v4")
    monkeypatch.setattr("perfpilot.store.postgres.SCHEMA_VERSION", 4)
    with PostgresStore(dsn) as old:
        write_v4_rows(old._connection(), "%s")
        version = old._connection().execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        assert version == (4,)
    monkeypatch.undo()
    with PostgresStore(dsn) as store:
        check_v4_rows_read_as_untimed_and_without_call_sites(store)
        version = store._connection().execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        assert version == (SCHEMA_VERSION,) == (5,)


@pytest.mark.integration
def test_many_hosts_opening_at_once_migrate_once(postgres: PostgresServer) -> None:
    dsn = _fresh_database(postgres, "perfpilot_test_race")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_and_save(i: int) -> None:
        try:
            start.wait()
            with open_store(dsn) as store:
                store.save_app_snapshot(make_snapshot(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_save, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with open_store(dsn) as store:
        check_everything(store, [make_snapshot(i) for i in range(8)])


@pytest.mark.integration
def test_newer_schema_is_refused(postgres: PostgresServer) -> None:
    dsn = _fresh_database(postgres, "perfpilot_test_newer")
    open_store(dsn).close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=r"schema version \d+, newer than this perfpilot"):
        open_store(dsn)


@pytest.mark.integration
def test_a_database_with_other_tables_of_the_same_name(postgres: PostgresServer) -> None:
    dsn = _fresh_database(postgres, "perfpilot_test_foreign")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (x int)")
    with pytest.raises(StoreError, match=r"cannot open store .*runs.* already exists"):
        open_store(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:  # nothing half-made
        assert conn.execute("SELECT to_regclass('run_names')").fetchone() == (None,)


# -- URLs, passwords and errors ------------------------------------------------------------


@pytest.mark.integration
def test_url_spellings(empty_dsn: str) -> None:
    rest = empty_dsn.partition("://")[2]
    for scheme in ("postgresql", "postgres", "postgresql+psycopg", "POSTGRESQL"):
        with open_store(f"{scheme}://{rest}") as store:
            assert isinstance(store, PostgresStore)
            assert store.list_runs() == []


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connect_error_names_the_store_without_its_password() -> None:
    port = _closed_port()
    with pytest.raises(StoreError) as info:
        open_store(f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/perf")
    message = str(info.value)
    assert message.startswith(f"cannot connect to postgresql://app@127.0.0.1:{port}/perf: ")
    assert "refused" in message
    assert PASSWORD not in message
    assert "\n" not in message
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.integration
def test_login_errors_never_show_the_password(postgres: PostgresServer) -> None:
    for dsn in (
        f"postgresql://nobody:{PASSWORD}@127.0.0.1:{postgres.port}/postgres",
        f"postgresql://perfpilot:{PASSWORD}@127.0.0.1:{postgres.port}/no_such_db",
        f"postgresql://perfpilot@127.0.0.1:{postgres.port}/postgres?password={PASSWORD}&x=1",
    ):
        with pytest.raises(StoreError) as info:
            open_store(dsn)
        assert PASSWORD not in str(info.value)
        assert str(info.value).startswith("cannot connect to postgresql://")


@pytest.mark.integration
def test_repr_and_location_mask_the_password(postgres: PostgresServer) -> None:
    # The fixture's server trusts every login, so a password is accepted and ignored.
    dsn = f"postgresql://perfpilot:{PASSWORD}@127.0.0.1:{postgres.port}/postgres"
    with PostgresStore(dsn) as store:
        assert PASSWORD not in repr(store)
        assert store.location == f"postgresql://perfpilot:***@127.0.0.1:{postgres.port}/postgres"
        store.close()
        with pytest.raises(StoreError, match="closed") as info:
            store.list_runs()
        assert PASSWORD not in str(info.value)


def test_dsn_helpers() -> None:
    dsn = f"postgresql://app:{PASSWORD}@db.internal:5432/perf?sslmode=require&password=q1"
    assert (
        redact_dsn(dsn) == "postgresql://app:***@db.internal:5432/perf?sslmode=require&password=***"
    )
    assert display_dsn(dsn) == "postgresql://app@db.internal:5432/perf?sslmode=require"
    assert set(secrets_of(dsn)) == {PASSWORD, "q1"}
    assert display_dsn("postgres://db/perf") == "postgres://db/perf"
    assert redact_dsn("postgresql://u:p%40ss@[::1]:5/x") == "postgresql://u:***@[::1]:5/x"
    assert "p@ss" in secrets_of("postgresql://u:p%40ss@h/x")
    assert redact_dsn("postgresql://u:pw@h:notaport/x") == "postgresql://u:***@h:notaport/x"
    assert redact_credentials("a redis://:pw@h/0 and mysql://u:pw@h/db") == (
        "a redis://:***@h/0 and mysql://u:***@h/db"
    )
    assert redact_credentials("no secrets here: http://h/x") == "no secrets here: http://h/x"


# -- psycopg is optional ---------------------------------------------------------------------


def test_missing_psycopg_is_a_clear_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(StoreError) as info:
        open_store(f"postgresql://app:{PASSWORD}@127.0.0.1:1/perf")
    assert str(info.value) == MISSING_PSYCOPG
    assert str(info.value) == "PostgreSQL store needs psycopg: pip install 'perfpilot[postgres]'"


def test_importing_the_store_does_not_import_psycopg() -> None:
    code = (
        "import sys, perfpilot.store, perfpilot.store.postgres, perfpilot.store.sqlite\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
