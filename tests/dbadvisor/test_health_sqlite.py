"""SQLite health checks on real database files."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor import health_sqlite
from perfpilot.dbadvisor.health import HealthOptions, check_health
from perfpilot.errors import ConfigError, UsageError

Make = Callable[[str], Path]


@pytest.fixture
def make_db(tmp_path: Path) -> Make:
    def make(script: str) -> Path:
        path = tmp_path / "app.db"
        conn = sqlite3.connect(path)
        conn.executescript(script)
        conn.commit()
        conn.close()
        return path

    return make


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def apply(path: Path, code: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(code)
    conn.commit()
    conn.close()


SHOP = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), total REAL);
INSERT INTO users (email) VALUES ('a'), ('b');
INSERT INTO orders (user_id, total) VALUES (1, 2.0);
"""


# -- unindexed foreign keys -------------------------------------------------------------


def test_unindexed_foreign_key_and_its_fix(make_db: Make) -> None:
    path = make_db(SHOP)
    [finding] = of_kind(check_health(str(path)), "unindexed_foreign_key")
    assert finding.subject == "orders(user_id)"
    assert finding.evidence["references"] == "users"
    assert finding.fix.code == "CREATE INDEX orders_user_id_idx ON orders (user_id);"
    apply(path, finding.fix.code)
    assert of_kind(check_health(str(path)), "unindexed_foreign_key") == []


def test_foreign_keys_served_by_rowid_or_a_composite_index_in_any_order(make_db: Make) -> None:
    path = make_db(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, x INTEGER, y INTEGER, UNIQUE (x, y));
        CREATE TABLE b (id INTEGER PRIMARY KEY REFERENCES a(id));
        CREATE TABLE c (id INTEGER PRIMARY KEY, x INTEGER, y INTEGER, z INTEGER,
                        FOREIGN KEY (x, y) REFERENCES a(x, y));
        CREATE INDEX c_yxz ON c (y, x, z);
        CREATE TABLE d (id INTEGER PRIMARY KEY, x INTEGER, y INTEGER,
                        FOREIGN KEY (x, y) REFERENCES a(x, y));
        CREATE INDEX d_x ON d (x);
        """
    )
    found = of_kind(check_health(str(path)), "unindexed_foreign_key")
    # d(x) covers only part of the key (x, y)
    assert [f.subject for f in found] == ["d(x, y)"]
    assert found[0].fix.code == "CREATE INDEX d_x_y_idx ON d (x, y);"


# -- duplicate and redundant indexes ----------------------------------------------------


def test_duplicate_index_and_its_fix(make_db: Make) -> None:
    path = make_db(SHOP + "CREATE INDEX o1 ON orders (total); CREATE INDEX o2 ON orders (total);")
    [finding] = of_kind(check_health(str(path)), "duplicate_index")
    assert finding.evidence["index"] == "o2" and finding.evidence["covered_by"] == "o1"
    assert finding.fix.code == "DROP INDEX o2;"
    apply(path, finding.fix.code)
    assert of_kind(check_health(str(path)), "duplicate_index") == []


def test_redundant_prefix_index(make_db: Make) -> None:
    path = make_db(
        SHOP
        + "CREATE INDEX o_total ON orders (total); CREATE INDEX o_total_user ON orders (total, user_id);"
    )
    [finding] = of_kind(check_health(str(path)), "redundant_index")
    assert finding.evidence["index"] == "o_total"
    assert finding.evidence["covered_by"] == "o_total_user"


def test_index_repeating_the_rowid_or_a_unique_constraint(make_db: Make) -> None:
    path = make_db(
        SHOP + "CREATE INDEX users_id ON users (id); CREATE INDEX users_email ON users (email);"
    )
    found = {f.evidence["index"]: f for f in of_kind(check_health(str(path)), "duplicate_index")}
    assert set(found) == {"users_id", "users_email"}
    assert found["users_id"].evidence["covered_by"] == "the INTEGER PRIMARY KEY id"
    assert found["users_email"].evidence["covered_by"].startswith("sqlite_autoindex_users")


@pytest.mark.parametrize(
    "indexes",
    [
        # order matters: (total, user_id) does not serve (user_id) lookups
        "CREATE INDEX a ON orders (user_id); CREATE INDEX b ON orders (total, user_id);",
        # a unique index enforces something a longer index does not
        "CREATE UNIQUE INDEX a ON orders (total); CREATE INDEX b ON orders (total, user_id);",
        # different sort order
        "CREATE INDEX a ON orders (total DESC); CREATE INDEX b ON orders (total, user_id);",
        # partial indexes are not compared
        "CREATE INDEX a ON orders (total) WHERE total > 0; CREATE INDEX b ON orders (total);",
        # an expression index
        "CREATE INDEX a ON orders (abs(total)); CREATE INDEX b ON orders (abs(total), id);",
    ],
)
def test_indexes_that_are_not_redundant(make_db: Make, indexes: str) -> None:
    findings = check_health(str(make_db(SHOP + indexes)))
    assert of_kind(findings, "duplicate_index") + of_kind(findings, "redundant_index") == []


# -- statistics -------------------------------------------------------------------------


def test_tables_without_statistics_until_analyze(make_db: Make) -> None:
    path = make_db(
        SHOP + "CREATE INDEX orders_user ON orders (user_id); CREATE TABLE empty (x UNIQUE);"
    )
    [finding] = of_kind(check_health(str(path)), "missing_statistics")
    # users has its UNIQUE index, orders its index; the empty table does not count
    assert finding.evidence["tables"] == ["orders", "users"]
    assert finding.fix.code == "ANALYZE;"
    apply(path, finding.fix.code)
    assert of_kind(check_health(str(path)), "missing_statistics") == []


def test_a_table_added_after_analyze_is_named(make_db: Make) -> None:
    path = make_db(SHOP + "ANALYZE; CREATE TABLE later (x UNIQUE); INSERT INTO later VALUES (1);")
    [finding] = of_kind(check_health(str(path)), "missing_statistics")
    assert finding.evidence["tables"] == ["later"]
    assert finding.fix.code == "ANALYZE later;"


# -- read-only, targets, errors ---------------------------------------------------------


def test_checks_leave_the_file_untouched_and_accept_urls(make_db: Make) -> None:
    path = make_db(SHOP)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    by_path = check_health(str(path))
    by_url = check_health(f"sqlite:///{path}")
    assert [f.id for f in by_path] == [f.id for f in by_url]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not Path(f"{path}-wal").exists()


def test_a_check_that_writes_is_refused(make_db: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    def writer(conn: sqlite3.Connection, options: HealthOptions) -> list[Finding]:
        conn.execute("CREATE TABLE sneaky (x)")
        return []

    monkeypatch.setattr(health_sqlite, "CHECKS", [("writer", writer)])
    path = make_db(SHOP)
    [finding] = check_health(str(path))
    assert finding.kind == "health_check_failed" and finding.severity == "info"
    assert "readonly" in finding.evidence["error"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sneaky'").fetchone() == (
        0,
    )
    # a connection given is switched to query_only for the checks, then restored
    [again] = check_health(conn)
    assert again.kind == "health_check_failed"
    assert conn.execute("PRAGMA query_only").fetchone() == (0,)
    conn.execute("CREATE TABLE allowed_after (x)")
    conn.close()


def test_a_connection_is_checked_like_a_file(make_db: Make) -> None:
    path = make_db(SHOP)
    conn = sqlite3.connect(path)
    assert [f.id for f in check_health(conn)] == [f.id for f in check_health(str(path))]
    conn.execute("INSERT INTO users (email) VALUES ('c')")
    assert conn.in_transaction
    with pytest.raises(UsageError, match="inside a transaction"):
        check_health(conn)
    conn.close()


def test_missing_or_invalid_files(tmp_path: Path) -> None:
    # the advisor's own opener: the same messages as `perfpilot db advise`
    with pytest.raises(ConfigError, match=r"nope\.db: no such SQLite database file"):
        check_health(str(tmp_path / "nope.db"))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(ConfigError, match="not a SQLite database"):
        check_health(str(junk))
    with pytest.raises(UsageError, match="unsupported database URL 'mysql://app@db/x'"):
        check_health("mysql://app:pw@db/x", dialect="sqlite")
    with pytest.raises(UsageError, match="unknown dialect"):
        check_health(str(junk), dialect="oracle")
