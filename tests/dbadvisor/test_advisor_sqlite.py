"""The index advisor end to end on SQLite: recommendations, verdicts, findings, evaluation."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from perfpilot.analyze.appdata import AppData
from perfpilot.app_records import QueryRow
from perfpilot.dbadvisor.advice_findings import advice_findings
from perfpilot.dbadvisor.advisor import AdviceOptions, advise
from perfpilot.dbadvisor.database import open_database
from perfpilot.dbadvisor.sqlfile import split_sql
from perfpilot.dbadvisor.workload import app_data_workload, group_statements
from perfpilot.stats.histogram import Histogram
from tests.dbadvisor.workload import shop


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("advisor") / "small.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, plan TEXT NOT NULL);"
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT, "
        "created_at TEXT NOT NULL);"
    )
    conn.executemany(
        "INSERT INTO users VALUES (?, ?, ?)",
        ((i, f"u{i}@example.com", "free" if i % 10 else "pro") for i in range(1, 40_001)),
    )
    conn.executemany(
        "INSERT INTO posts VALUES (?, ?, ?, ?)",
        (
            (i, (i * 7919) % 40_000 + 1, f"post {i}", f"2024-01-01 00:{i % 60:02d}:00")
            for i in range(1, 120_001)
        ),
    )
    conn.commit()
    conn.close()
    return path


def workload(*sqls: str) -> object:
    return group_statements(
        split_sql(";\n".join(sqls)), dialect="sqlite", source="sql", path="w.sql"
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_recommends_an_index_with_measured_times_and_leaves_the_file_unchanged(
    small_db: Path,
) -> None:
    before = digest(small_db)
    with open_database(str(small_db)) as db:
        advice = advise(
            db,
            workload(
                "SELECT * FROM posts WHERE user_id = 42",
                "SELECT title FROM posts WHERE user_id = 7 ORDER BY created_at LIMIT 3",
                "SELECT * FROM users WHERE email LIKE '%@example.org'",
                "SELECT * FROM users WHERE plan = 'free'",
                "SELECT * FROM users WHERE id = 3",
                "UPDATE users SET plan = 'pro' WHERE id = 1",
                "SELECT * FROM missing_table WHERE a = 1",
                "SELEC oops",
            ),
        )
    assert digest(small_db) == before
    assert advice.unit == "ms" and advice.kind == "sqlite"
    # one index serves both posts queries (timings on a busy machine may split them)
    assert 1 <= len(advice.recommendations) <= 2
    for rec in advice.recommendations:
        assert rec.candidate.table == "posts" and rec.candidate.columns[0] == "user_id"
        assert all(t.gain >= 0.5 for t in rec.trials)
    assert sum(len(r.trials) for r in advice.recommendations) == 2
    rec = advice.recommendations[0]
    status = {o.query.example: (o.status, o.remedy) for o in advice.outcomes}
    assert status["SELECT * FROM users WHERE email LIKE '%@example.org'"] == (
        "no_index_helps",
        "trigram",
    )
    assert status["SELECT * FROM users WHERE plan = 'free'"] == ("no_index_helps", "selectivity")
    assert status["SELECT * FROM users WHERE id = 3"][0] == "below_floor"
    assert status["UPDATE users SET plan = 'pro' WHERE id = 1"][0] == "skipped"
    assert status["SELECT * FROM missing_table WHERE a = 1"][0] == "skipped"
    assert status["SELEC oops"][0] == "skipped"

    findings = advice_findings(advice)
    missing = [f for f in findings if f.kind == "missing_index"]
    helpless = [f for f in findings if f.kind == "no_index_helps"]
    assert len(missing) == len(advice.recommendations) and len(helpless) == 2
    fix = missing[0].fix
    assert fix.language == "sql"
    assert fix.code.startswith("CREATE INDEX idx_posts_user_id")
    assert fix.code.endswith(f"ANALYZE {rec.candidate.name};")
    evidence = missing[0].evidence
    assert evidence["cost_unit"] == "ms"
    assert {q["values"] for q in evidence["queries"]} == {"real"}
    assert all(q["cost_after"] < q["cost_before"] for q in evidence["queries"])
    assert "unknown" in evidence["write_overhead"]
    assert missing[0].impact.time_per_request_s > 0
    trigram = next(f for f in helpless if "wildcard" in f.title)
    assert "fts5" in trigram.fix.code.lower()


def test_store_queries_without_values_get_sampled_ones(small_db: Path) -> None:
    latency = Histogram()
    latency.record(0.02)
    app = AppData(
        since=0.0,
        until=60.0,
        queries=(
            QueryRow("f1", "SELECT * FROM posts WHERE user_id = ?", "sqlite", "/p", 30, 0, latency),
            QueryRow(
                "f2", "SELECT * FROM posts WHERE lower(title) = ?", "sqlite", "/p", 1, 0, latency
            ),
        ),
    )
    with open_database(str(small_db)) as db:
        advice = advise(db, app_data_workload(app, dialect="sqlite"))
    first, second = advice.outcomes
    assert first.status == "recommended" and first.values == "sampled"
    assert first.sql_run is not None and "?" not in first.sql_run
    assert second.status == "skipped" and "placeholders" in second.reason
    (finding,) = [f for f in advice_findings(advice) if f.kind == "missing_index"]
    assert finding.evidence["queries"][0]["values"] == "sampled"
    assert finding.impact.requests_per_s == pytest.approx(30 / 60.0)


def test_store_rows_per_call_set_the_limit_and_a_slow_app_figure_is_said(small_db: Path) -> None:
    slow = Histogram()
    slow.record(0.350)  # the app measured 350 ms per call...
    app = AppData(
        since=0.0,
        until=60.0,
        queries=(
            QueryRow("f3", "SELECT id FROM posts ORDER BY id LIMIT ?", "sqlite", "/export", 1, 0,
                     slow, rows=7),
        ),
    )  # fmt: skip
    workload_ = app_data_workload(app, dialect="sqlite")
    assert workload_.queries[0].rows_per_call == 7
    with open_database(str(small_db)) as db:
        (outcome,) = advise(db, workload_).outcomes
    assert outcome.sql_run is not None and outcome.sql_run.endswith("LIMIT 7")
    # ...which a PK-ordered read of 7 rows is not here: the reason says so
    assert outcome.status == "below_floor"
    assert "the app measured 350 ms per call" in outcome.reason


def test_min_gain_and_min_cost_are_honoured(small_db: Path) -> None:
    with open_database(str(small_db)) as db:
        strict = advise(
            db, workload("SELECT * FROM posts WHERE user_id = 42"), AdviceOptions(min_cost=1e9)
        )
    assert strict.recommendations == ()
    assert strict.outcomes[0].status == "below_floor"


@pytest.mark.integration
def test_precision_and_recall_on_the_shop_workload_sqlite(shop_sqlite: Path) -> None:
    statements = split_sql(shop.workload_sql())
    with open_database(str(shop_sqlite)) as db:
        advice = advise(db, group_statements(statements, dialect="sqlite", source="sql"))
    result = shop.score(advice, "sqlite")
    assert result.precision >= 0.9, result.mistakes
    assert result.recall >= 0.9, result.mistakes
    # whole-table aggregates and wildcards are said to need something else
    remedies = {o.remedy for o in advice.outcomes if o.status == "no_index_helps"}
    assert {"trigram", "summary", "keyset", "selectivity"} <= remedies
