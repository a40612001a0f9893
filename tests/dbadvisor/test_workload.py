"""Workloads from SQL files, logs, pg_stat_statements rows and the store."""

from __future__ import annotations

from pathlib import Path

from perfpilot.analyze.appdata import AppData
from perfpilot.app_records import QueryRow
from perfpilot.dbadvisor.sqlfile import SourceStatement
from perfpilot.dbadvisor.workload import (
    Query,
    app_data_workload,
    group_statements,
    log_workload,
    sql_file_workload,
    statements_workload,
)
from perfpilot.stats.histogram import Histogram


def test_statements_group_by_fingerprint_keeping_the_first_as_example() -> None:
    workload = group_statements(
        [
            SourceStatement("select * from t where a = 1", 1, 2.0),
            SourceStatement("select * from t where a = 2", 3, 4.0),
            SourceStatement("select * from u", 5, None),
        ],
        dialect="sqlite",
        source="log",
        path="x.log",
    )
    first, second = workload.queries
    assert first.sql == "SELECT * FROM t WHERE a = ?"
    assert first.example == "select * from t where a = 1"
    assert (first.calls, first.total_time_ms, first.mean_time_ms) == (2, 6.0, 3.0)
    assert first.location == "x.log:1"
    assert second.total_time_ms is None and second.mean_time_ms is None
    assert Query.from_dict(first.to_dict()) == first


def test_files_and_logs(tmp_path: Path) -> None:
    sql = tmp_path / "q.sql"
    sql.write_text("select 1 from t where a = 1;\nselect 1 from t where a = 2;\n")
    assert [q.calls for q in sql_file_workload(sql, dialect="sqlite").queries] == [2]
    log = tmp_path / "pg.log"
    log.write_text("2024 UTC [1] LOG:  duration: 5 ms  statement: select * from t where a = 3\n")
    (query,) = log_workload(log).queries
    assert query.total_time_ms == 5.0 and query.example == "select * from t where a = 3"


def test_pg_stat_statements_rows_merge_and_skip_the_catalog() -> None:
    workload = statements_workload(
        [
            ("SELECT * FROM t WHERE a = $1", 10, 50.0),
            ("select * from t where a = $1", 5, 25.0),
            ("SELECT * FROM pg_catalog.pg_class", 3, 1.0),
            ("SELECT * FROM hypopg_create_index($1)", 3, 1.0),
        ],
        window_s=60.0,
    )
    (query,) = workload.queries
    assert (query.calls, query.total_time_ms, query.example) == (15, 75.0, None)
    assert query.sql == "SELECT * FROM t WHERE a = ?"
    assert workload.window_s == 60.0


def _row(fingerprint: str, db: str, route: str, count: int, seconds: float) -> QueryRow:
    latency = Histogram()
    for _ in range(count):
        latency.record(seconds)
    return QueryRow(fingerprint, "SELECT * FROM t WHERE a = ?", db, route, count, 0, latency)


def test_store_rows_of_the_database_kind_merge_across_routes() -> None:
    app = AppData(
        since=0.0,
        until=100.0,
        queries=(
            _row("f1", "sqlite", "/a", 4, 0.01),
            _row("f1", "sqlite", "/b", 6, 0.01),
            _row("f2", "postgresql", "/a", 1, 0.01),
        ),
    )
    workload = app_data_workload(app, dialect="sqlite")
    (query,) = workload.queries
    assert query.calls == 10 and query.example is None
    assert abs((query.total_time_ms or 0) - 100.0) < 2.0
    assert workload.window_s == 100.0 and workload.source == "store"
