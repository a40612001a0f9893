"""SQLite what-if: trial indexes are created, measured and rolled back."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from perfpilot.dbadvisor.candidates import IndexCandidate
from perfpilot.dbadvisor.database import open_database
from perfpilot.dbadvisor.whatif import WhatIfError
from perfpilot.dbadvisor.whatif_sqlite import TRIAL_INDEX, SQLiteWhatIf


def make_db(path: Path, rows: int = 20_000) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", ((i, i % 5000, f"b{i % 7}") for i in range(rows))
    )
    conn.commit()
    conn.close()


def snapshot(path: Path) -> tuple[str, list[tuple[str, ...]]]:
    conn = sqlite3.connect(path)
    schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), schema


def test_trials_leave_the_file_exactly_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    make_db(path)
    before = snapshot(path)
    with open_database(str(path)) as db:
        engine = SQLiteWhatIf(db)
        base = engine.baseline("SELECT * FROM t WHERE a = 42")
        used, unused, failed = engine.with_index(
            IndexCandidate("t", ("a",)),
            [
                "SELECT * FROM t WHERE a = 42",
                "SELECT * FROM t WHERE b = 'b1'",
                "SELECT nope FROM t",
            ],
        )
        assert used is not None and used.uses_candidate and TRIAL_INDEX in used.indexes
        assert used.rows == base.rows == 4
        assert unused is not None and not unused.uses_candidate
        assert failed is None
        # a candidate that cannot be built fails every statement, and is rolled back too
        assert engine.with_index(IndexCandidate("t", ("zz",)), ["SELECT 1"]) == [None]
        engine.close()
        # the connection is back to read-only
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
            db.conn.execute("CREATE TABLE x (a)")
    assert snapshot(path) == before
    assert not (tmp_path / "db.sqlite-journal").exists()


def test_statement_timeout_interrupts_long_queries(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    make_db(path, rows=10)
    slow = (
        "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 100000000) "
        "SELECT count(*) FROM s"
    )
    with (
        open_database(str(path), statement_timeout_s=0.05) as db,
        pytest.raises(WhatIfError, match="timed out"),
    ):
        SQLiteWhatIf(db).baseline(slow)
