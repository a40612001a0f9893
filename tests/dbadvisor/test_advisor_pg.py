"""The index advisor on a real PostgreSQL 15 with hypopg: evaluation, safety, sources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfpilot.cli.main import main
from perfpilot.dbadvisor.advice_findings import advice_findings
from perfpilot.dbadvisor.advisor import advise
from perfpilot.dbadvisor.database import open_database
from perfpilot.dbadvisor.sqlfile import split_sql
from perfpilot.dbadvisor.workload import database_statements_workload, group_statements
from perfpilot.errors import UsageError
from tests.dbadvisor.workload import shop
from tests.pg import PostgresServer

pytestmark = pytest.mark.integration


def shop_workload() -> object:
    return group_statements(split_sql(shop.workload_sql()), dialect="postgresql", source="sql")


def state(dsn: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        extensions = conn.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall()
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return extensions, indexes


def test_precision_and_recall_on_the_shop_workload_postgres(shop_postgres: str) -> None:
    before = state(shop_postgres)
    with open_database(shop_postgres) as db:
        advice = advise(db, shop_workload())
    # read-only: hypopg was created inside the rolled-back transaction, no index was made
    assert state(shop_postgres) == before
    assert ("hypopg",) not in before[0]
    result = shop.score(advice, "postgresql")
    assert result.precision >= 0.9, result.mistakes
    assert result.recall >= 0.9, result.mistakes
    assert advice.unit == "plan cost"
    findings = advice_findings(advice)
    missing = [f for f in findings if f.kind == "missing_index"]
    assert missing and all(f.fix.code.startswith("CREATE INDEX CONCURRENTLY ") for f in missing)
    for finding in missing:
        assert finding.evidence["table_writes_per_s"] > 0
        assert finding.evidence["index_size_bytes"] > 0
        assert "row writes/s" in finding.evidence["write_overhead"]
    trigram = [f for f in findings if f.evidence.get("remedy") == "trigram"]
    assert trigram and "gin_trgm_ops" in trigram[0].fix.code


def test_the_session_is_read_only_and_the_advisor_cannot_write(shop_postgres: str) -> None:
    import psycopg

    with open_database(shop_postgres) as db:
        assert db.conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            db.conn.execute("CREATE TABLE nope (a int)")


def test_workload_from_pg_stat_statements_uses_sampled_values(shop_postgres: str) -> None:
    import psycopg

    with psycopg.connect(shop_postgres, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        for customer in (5, 6, 7):
            conn.execute("SELECT id, total_cents FROM orders WHERE customer_id = %s", (customer,))
    with open_database(shop_postgres) as db:
        workload = database_statements_workload(db)
        target = [q for q in workload.queries if "customer_id = ?" in q.sql]
        assert target and target[0].calls == 3 and target[0].example is None
        assert workload.window_s is not None
        advice = advise(db, workload)
    outcome = next(o for o in advice.outcomes if o.query.fingerprint == target[0].fingerprint)
    assert outcome.status == "recommended" and outcome.values == "sampled"
    assert outcome.index is not None and outcome.index.startswith("orders(customer_id")


def test_workload_from_a_log_with_parameters(
    shop_postgres: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text(
        "2024-06-01 12:00:00 UTC [9] LOG:  duration: 35.2 ms  execute <unnamed>: "
        "SELECT * FROM events WHERE path = $1\n"
        "2024-06-01 12:00:00 UTC [9] DETAIL:  parameters: $1 = '/product/77'\n"
    )
    assert main(["db", "advise", shop_postgres, "--from-log", str(log), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (query,) = document["queries"]
    assert query["values"] == "real" and query["status"] == "recommended"
    assert query["index"] == "events(path)"
    assert document["findings"][0]["fix"]["code"].startswith(
        "CREATE INDEX CONCURRENTLY idx_events_path ON events (path)"
    )


@pytest.fixture
def small_postgres(postgres: PostgresServer) -> Iterator[str]:
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS perfpilot_apply")
        conn.execute("CREATE DATABASE perfpilot_apply")
    dsn = postgres.dsn_for("perfpilot_apply")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, b text)")
        conn.execute("INSERT INTO t SELECT g, g % 20000, 'x' FROM generate_series(1, 100000) g")
        conn.execute("VACUUM ANALYZE t")
    yield dsn


def test_apply_creates_the_index_concurrently_and_the_password_never_shows(
    small_postgres: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    sql = tmp_path / "q.sql"
    sql.write_text("SELECT * FROM t WHERE a = 17;\n")
    # the server trusts local connections, so any password is accepted and must be hidden
    secret_dsn = small_postgres.replace("perfpilot@", "perfpilot:s3cr3t-pw@")
    code = main(["db", "advise", secret_dsn, "--sql", str(sql), "--apply", "--yes"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "s3cr3t-pw" not in out + err
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t (a)" in out
    with psycopg.connect(small_postgres) as conn:
        (valid,) = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'idx_t_a'"
        ).fetchone()
        # hypopg was installed before the run: it stays, and no hypothetical index remains
        assert conn.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone()[0] == 0
    assert valid
    # now served: advising again recommends nothing
    assert main(["db", "advise", small_postgres, "--sql", str(sql), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["queries"][0]["status"] == "below_floor"


def test_connection_errors_hide_the_password(postgres: PostgresServer) -> None:
    dsn = f"postgresql://perfpilot:hunter2@127.0.0.1:{postgres.port}/no_such_db"
    with pytest.raises(UsageError) as info:
        open_database(dsn)
    assert "hunter2" not in str(info.value)
    assert "no_such_db" in str(info.value)
