"""PostgreSQL health checks against a real PostgreSQL 15 (one fresh database per test)."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor import health_pg
from perfpilot.dbadvisor.health import HealthOptions, check_health
from perfpilot.dbadvisor.health_pg import PgSession
from perfpilot.errors import ConnectError, UsageError
from tests.pg import PostgresServer

pytestmark = pytest.mark.integration

LOW = HealthOptions(bloat_bytes_min=1024 * 1024, cache_blocks_min=500)


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database (its own statistics), dropped afterwards."""
    name = f"health_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres.dsn_for(name)
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def run(dsn: str, *statements: str) -> None:
    """Run statements in autocommit mode, then make their statistics visible."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        # the backend flushes its pending statistics when it goes idle after this
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def subjects(dsn: str, kind: str, options: HealthOptions = LOW) -> list[str]:
    return [f.subject for f in of_kind(check_health(dsn, options=options), kind)]


# -- indexes ----------------------------------------------------------------------------


def test_unused_index_until_it_is_scanned(db: str) -> None:
    run(
        db,
        "CREATE TABLE t (id int PRIMARY KEY, v int, code text UNIQUE)",
        "INSERT INTO t SELECT g, g % 100, 'c' || g FROM generate_series(1, 5000) g",
        "CREATE INDEX t_v ON t (v)",
    )
    findings = of_kind(check_health(db), "unused_index")
    # primary key and unique indexes are never reported
    assert [f.subject for f in findings] == ["public.t_v"]
    assert findings[0].fix.code == "DROP INDEX CONCURRENTLY public.t_v;"
    assert findings[0].evidence["scans"] == 0
    run(db, "SET enable_seqscan = off", "SELECT count(*) FROM t WHERE v = 7")
    assert subjects(db, "unused_index") == []


def test_duplicate_and_redundant_indexes(db: str) -> None:
    run(
        db,
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, name text)",
        "CREATE INDEX t_a ON t (a)",
        "CREATE INDEX t_a_again ON t (a)",
        "CREATE INDEX t_name ON t (name)",
        "CREATE INDEX t_name_b ON t (name, b)",
        "CREATE INDEX t_b ON t (b)",  # not a prefix of (name, b)
        "CREATE INDEX t_name_pattern ON t (name text_pattern_ops)",  # another operator class
        "CREATE UNIQUE INDEX t_id_a ON t (id, a)",
        "CREATE INDEX t_id ON t (id)",  # duplicates the primary key
    )
    findings = check_health(db)
    duplicates = {f.subject: f for f in of_kind(findings, "duplicate_index")}
    redundant = {f.subject: f for f in of_kind(findings, "redundant_index")}
    assert set(duplicates) == {"public.t_a_again", "public.t_id"}
    assert duplicates["public.t_a_again"].evidence["covered_by"] == "public.t_a"
    assert duplicates["public.t_id"].evidence["covered_by"] == "public.t_pkey"
    assert set(redundant) == {"public.t_name"}
    assert redundant["public.t_name"].evidence["covered_by"] == "public.t_name_b"
    for finding in [*duplicates.values(), *redundant.values()]:
        run(db, finding.fix.code)
    findings = check_health(db)
    assert of_kind(findings, "duplicate_index") + of_kind(findings, "redundant_index") == []


def test_invalid_index_from_a_failed_concurrent_build(db: str) -> None:
    run(db, "CREATE TABLE t (id int, email text)", "INSERT INTO t VALUES (1, 'a'), (2, 'a')")
    with (
        psycopg.connect(db, autocommit=True) as conn,
        pytest.raises(psycopg.errors.UniqueViolation),
    ):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY t_email ON t (email)")
    [finding] = of_kind(check_health(db), "invalid_index")
    assert finding.subject == "public.t_email" and finding.severity == "high"
    assert "DROP INDEX CONCURRENTLY public.t_email;" in finding.fix.code
    run(
        db,
        "DROP INDEX CONCURRENTLY public.t_email",
        "CREATE INDEX CONCURRENTLY t_email ON t (email)",
    )
    assert subjects(db, "invalid_index") == []


def test_unindexed_foreign_key_and_its_fix(db: str) -> None:
    run(
        db,
        "CREATE TABLE parent (id int PRIMARY KEY, a int, b int, UNIQUE (a, b))",
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent, x int, y int,"
        " FOREIGN KEY (x, y) REFERENCES parent (a, b))",
        "CREATE INDEX child_y_x ON child (y, x)",  # the composite key, in another order
        'CREATE TABLE "Odd Name" (id int PRIMARY KEY, "Parent" int REFERENCES parent)',
    )
    found = {f.subject: f for f in of_kind(check_health(db), "unindexed_foreign_key")}
    assert set(found) == {"public.child(parent_id)", 'public."Odd Name"("Parent")'}
    fix = found["public.child(parent_id)"].fix.code
    assert fix == "CREATE INDEX CONCURRENTLY ON public.child (parent_id);"
    run(db, fix, found['public."Odd Name"("Parent")'].fix.code)
    assert subjects(db, "unindexed_foreign_key") == []


# -- tables -----------------------------------------------------------------------------


def test_table_and_index_bloat_estimates(db: str) -> None:
    fill = "INSERT INTO {} SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g"
    run(
        db,
        "CREATE TABLE bloated (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)",
        fill.format("bloated"),
        "DELETE FROM bloated WHERE id % 10 <> 0",
        "VACUUM ANALYZE bloated",
        "CREATE TABLE fresh (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)",
        fill.format("fresh"),
        "ANALYZE fresh",
    )
    findings = check_health(db, options=LOW)
    [table] = of_kind(findings, "table_bloat")
    assert table.subject == "public.bloated"
    assert 0.8 <= table.evidence["bloat_ratio"] <= 0.95  # 90% of the rows are gone
    [index] = of_kind(findings, "index_bloat")
    assert index.subject == "public.bloated_pkey"
    assert index.evidence["bloat_ratio"] >= 0.8
    assert index.fix.code == "REINDEX INDEX CONCURRENTLY public.bloated_pkey;"
    run(db, index.fix.code, "VACUUM FULL bloated", "ANALYZE bloated")
    findings = check_health(db, options=LOW)
    assert of_kind(findings, "table_bloat") + of_kind(findings, "index_bloat") == []


def test_vacuum_overdue_until_vacuumed(db: str) -> None:
    run(
        db,
        "CREATE TABLE t (id int, v text) WITH (autovacuum_enabled = false)",
        "INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10000) g",
        "ANALYZE t",
        "DELETE FROM t WHERE id <= 5000",
    )
    [finding] = of_kind(check_health(db), "vacuum_overdue")
    assert finding.subject == "public.t"
    assert finding.evidence["dead_rows"] == 5000
    assert finding.evidence["autovacuum_enabled"] is False
    assert finding.fix.code.splitlines() == [
        "ALTER TABLE public.t RESET (autovacuum_enabled);",
        "VACUUM (ANALYZE) public.t;",
    ]
    run(db, "VACUUM (ANALYZE) public.t")
    findings = check_health(db)
    assert of_kind(findings, "vacuum_overdue") + of_kind(findings, "analyze_overdue") == []


def test_analyze_overdue_for_a_table_never_analyzed(db: str) -> None:
    run(
        db,
        "CREATE TABLE never (id int) WITH (autovacuum_enabled = false)",
        "INSERT INTO never SELECT generate_series(1, 2000)",
        "CREATE TABLE tiny (id int) WITH (autovacuum_enabled = false)",
        "INSERT INTO tiny VALUES (1)",  # under dead_tuples_min: not worth a finding
    )
    [finding] = of_kind(check_health(db), "analyze_overdue")
    assert finding.subject == "public.never" and finding.severity == "medium"
    assert finding.evidence["since_analyze_s"] is None
    assert finding.fix.code.endswith("ANALYZE public.never;")
    run(db, "ANALYZE never")
    assert subjects(db, "analyze_overdue") == []


def test_sequences_near_their_limit(db: str) -> None:
    run(
        db,
        "CREATE TABLE a (id serial PRIMARY KEY)",
        "SELECT setval('a_id_seq', 2000000000)",
        "CREATE TABLE b (id int)",  # a bigint sequence feeding an integer column
        "CREATE SEQUENCE b_seq AS bigint OWNED BY b.id",
        "SELECT setval('b_seq', 2100000000)",
        "CREATE TABLE c (id bigserial PRIMARY KEY)",
        "SELECT setval('c_id_seq', 2100000000)",
        "CREATE TABLE d (id serial PRIMARY KEY)",
        "SELECT setval('d_id_seq', 1000)",
    )
    found = {f.subject: f for f in of_kind(check_health(db), "sequence_near_limit")}
    assert set(found) == {"public.a_id_seq", "public.b_seq"}
    a = found["public.a_id_seq"]
    assert a.severity == "high" and a.evidence["limit"] == 2**31 - 1
    assert a.fix.code.splitlines() == [
        "ALTER TABLE public.a ALTER COLUMN id TYPE bigint;  -- rewrites the table under an exclusive lock",
        "ALTER SEQUENCE public.a_id_seq AS bigint;",
    ]
    b = found["public.b_seq"]
    assert b.severity == "critical" and b.evidence["sequence_type"] == "bigint"
    assert "ALTER SEQUENCE" not in b.fix.code and "ALTER TABLE public.b" in b.fix.code
    run(db, *a.fix.code.splitlines())
    assert "public.a_id_seq" not in subjects(db, "sequence_near_limit")


# -- activity ---------------------------------------------------------------------------


def test_cache_hit_ratio_of_a_table_and_index_read_from_disk(db: str) -> None:
    # larger than a quarter of shared_buffers (128 MB): scans use a small ring
    # buffer, and the index build writes its pages around the cache
    run(
        db,
        "CREATE TABLE big AS SELECT g AS id, repeat('x', 120) AS pad"
        " FROM generate_series(1, 300000) g",
        "CREATE INDEX big_id ON big (id)",
        "SELECT count(*) FROM big",
        "SELECT count(*) FROM big",
        "SET enable_seqscan = off",
        "SELECT count(id) FROM big WHERE id > 0",
    )
    found = {f.subject: f for f in of_kind(check_health(db, options=LOW), "cache_hit_ratio")}
    assert set(found) == {"tables", "indexes"}
    assert found["tables"].evidence["hit_ratio"] < 0.5
    assert found["tables"].evidence["blocks_read"] > 5000


def test_cache_hit_ratio_of_hot_data_is_fine(db: str) -> None:
    run(
        db,
        "CREATE TABLE hot (id int PRIMARY KEY)",
        "INSERT INTO hot SELECT generate_series(1, 1000)",
    )
    run(db, *["SELECT count(*) FROM hot"] * 300)
    assert subjects(db, "cache_hit_ratio") == []


def test_connections_against_max_connections(db: str) -> None:
    extra = [psycopg.connect(db, autocommit=True) for _ in range(12)]
    try:
        options = HealthOptions(connections_used_max=10 / 197)
        [finding] = of_kind(check_health(db, options=options), "connections")
        assert finding.evidence["connections"] >= 12
        assert finding.evidence["max_connections"] == 200
        assert subjects(db, "connections", HealthOptions()) == []
    finally:
        for conn in extra:
            conn.close()


def test_long_running_query(db: str) -> None:
    sleeper = psycopg.connect(db, autocommit=True)
    pid = sleeper.info.backend_pid
    failed: list[BaseException] = []

    def sleep() -> None:
        try:
            sleeper.execute("SELECT pg_sleep(60)")
        except psycopg.errors.QueryCanceled:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            failed.append(exc)

    thread = threading.Thread(target=sleep)
    thread.start()
    try:
        with psycopg.connect(db, autocommit=True) as watcher:
            for _ in range(500):  # wait until the server shows it running
                state = watcher.execute(
                    "SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if state == ("active",):
                    break
                threading.Event().wait(0.01)
            found = of_kind(
                check_health(db, options=HealthOptions(long_running_s=0)), "long_running_query"
            )
            assert [f.subject for f in found] == [f"pid {pid}"]
            assert found[0].evidence["query"] == "SELECT PG_SLEEP(?)"
            assert f"pg_cancel_backend({pid})" in found[0].fix.code
            assert subjects(db, "long_running_query", HealthOptions()) == []
            watcher.execute("SELECT pg_cancel_backend(%s)", (pid,))
    finally:
        thread.join()
        sleeper.close()
    assert failed == []


def test_idle_in_transaction_session(db: str) -> None:
    idle = psycopg.connect(db)  # not autocommit: the first query opens a transaction
    try:
        idle.execute("SELECT 'hunter2' AS password")
        options = HealthOptions(idle_in_transaction_s=0)
        [finding] = of_kind(check_health(db, options=options), "idle_in_transaction")
        assert finding.subject == f"pid {idle.info.backend_pid}"
        assert finding.evidence["query"] == "SELECT ? AS password"  # literals redacted
        assert "hunter2" not in json.dumps(finding.to_dict())
        assert "idle_in_transaction_session_timeout" in finding.fix.code
        assert subjects(db, "idle_in_transaction", HealthOptions()) == []  # not yet 60 s
        idle.commit()
        assert subjects(db, "idle_in_transaction", options) == []
    finally:
        idle.close()


def test_slowest_statements_from_pg_stat_statements(db: str) -> None:
    run(db, "CREATE EXTENSION pg_stat_statements")
    run(db, *["SELECT pg_sleep(0.05)"] * 4, "SELECT 1")
    options = HealthOptions(slow_statement_total_ms_min=150)
    check_health(db, options=options)  # the checks' own statements are never listed
    found = of_kind(check_health(db, options=options), "slow_statement")
    assert [f.evidence["query"] for f in found] == ["SELECT PG_SLEEP(?)"]
    assert found[0].evidence["calls"] == 4
    assert found[0].evidence["total_ms"] >= 200
    assert found[0].impact.time_per_request_s >= 0.05
    assert found[0].impact.requests_per_s > 0


def test_pg_stat_statements_not_installed_is_said(db: str) -> None:
    findings = check_health(db)
    [missing] = of_kind(findings, "pg_stat_statements_missing")
    assert missing.severity == "info"
    assert "CREATE EXTENSION pg_stat_statements;" in missing.fix.code
    assert of_kind(findings, "slow_statement") == []


# -- safety -----------------------------------------------------------------------------


def test_checks_run_read_only_with_a_statement_timeout(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str] = {}

    def probe(session: PgSession) -> list[Finding]:
        row = session.rows(
            "SELECT current_setting('transaction_read_only') AS ro,"
            " current_setting('statement_timeout') AS timeout"
        )[0]
        seen.update(row)
        return []

    def writer(session: PgSession) -> list[Finding]:
        session.rows("CREATE TABLE sneaky (id int)")
        return []

    def sleeper(session: PgSession) -> list[Finding]:
        session.rows("SELECT pg_sleep(5)")
        return []

    checks = [("probe", probe), ("writer", writer), ("sleeper", sleeper), ("probe", probe)]
    monkeypatch.setattr(health_pg, "pg_checks", lambda: checks)
    findings = check_health(db, options=HealthOptions(statement_timeout_s=0.2))
    assert seen == {"ro": "on", "timeout": "200ms"}
    failed = {f.subject: f.evidence["error"] for f in findings}
    assert set(failed) == {"writer", "sleeper"}
    assert "read-only transaction" in failed["writer"]
    assert "statement timeout" in failed["sleeper"]
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT to_regclass('sneaky')").fetchone() == (None,)


def test_passwords_never_appear(postgres: PostgresServer, db: str) -> None:
    secret_dsn = db.replace("perfpilot@", "perfpilot:s3cret-pw@")
    findings = check_health(secret_dsn, options=LOW)  # trust auth ignores the password
    assert "s3cret-pw" not in json.dumps([f.to_dict() for f in findings])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError) as caught:
        check_health(f"postgresql://app:s3cret-pw@127.0.0.1:{port}/x")
    assert "s3cret-pw" not in str(caught.value)
    assert f"postgresql://app@127.0.0.1:{port}/x" in str(caught.value)


def test_a_connection_given_is_left_as_found(db: str) -> None:
    run(db, "CREATE TABLE t (id int PRIMARY KEY, v int)", "CREATE INDEX t_v ON t (v)")
    with psycopg.connect(db) as conn:
        by_conn = check_health(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert [f.id for f in by_conn] == [f.id for f in check_health(db)]
        conn.execute("SELECT 1")
        with pytest.raises(UsageError, match="inside a transaction"):
            check_health(conn)
