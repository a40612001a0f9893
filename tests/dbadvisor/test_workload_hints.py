"""Query hints over a workload: one per (kind, fingerprint), tied to the statement."""

from __future__ import annotations

from perfpilot.dbadvisor.workload import Query, Workload
from perfpilot.dbadvisor.workload_hints import workload_hints


def query(
    fp: str, sql: str, example: str | None = None, calls: int = 1, total: float | None = None
) -> Query:
    return Query(fp, sql, example, calls, total, f"q.sql:{fp}")


def test_one_finding_per_kind_and_statement_with_the_workload_fingerprint() -> None:
    q = query(
        "aaaaaaaaaaaaaaaa",
        "SELECT * FROM t WHERE lower(a) = ? AND upper(b) = ?",
        "SELECT * FROM t WHERE lower(a) = 'x' AND upper(b) = 'Y'",
        calls=7,
        total=70.0,
    )
    found = workload_hints(Workload("log", (q,)), "postgresql")
    assert sorted(f.kind for f in found) == ["function_on_column", "select_star"]
    functions = next(f for f in found if f.kind == "function_on_column")
    assert functions.evidence["fingerprint"] == "aaaaaaaaaaaaaaaa"  # not the hint's own
    assert (functions.evidence["calls"], functions.evidence["total_time_ms"]) == (7, 70.0)
    assert functions.evidence["mean_time_ms"] == 10.0
    assert functions.evidence["location"] == "q.sql:aaaaaaaaaaaaaaaa"
    assert functions.subject == q.sql  # normalized: the example's literals stay out
    assert functions.fix.code.count("CREATE INDEX") == 2 and functions.fix.language == "sql"
    assert functions.title.endswith("(and 1 more)") and len(functions.evidence["also"]) == 1
    assert functions.impact.time_s_per_hour == 0.0  # a text's saving is unknown
    again = workload_hints(Workload("log", (q,)), "postgresql")
    assert [f.id for f in again] == [f.id for f in found]  # stable ids


def test_costliest_statement_first_then_severity() -> None:
    cheap = query("1111111111111111", "SELECT * FROM t WHERE a = ?", total=1.0)
    costly = query("2222222222222222", "SELECT * FROM u WHERE lower(e) = ?", total=500.0)
    unmeasured = query("3333333333333333", "SELECT * FROM v", calls=3)
    found = workload_hints(Workload("store", (cheap, unmeasured, costly)), "sqlite")
    assert [(f.evidence["fingerprint"][0], f.kind) for f in found] == [
        ("2", "function_on_column"),
        ("2", "select_star"),
        ("1", "select_star"),
        ("3", "select_star"),
        ("3", "unbounded_select"),
    ]


def test_the_schema_makes_implicit_casts_exact_and_bad_text_gives_nothing() -> None:
    q = query(
        "4444444444444444",
        "SELECT id FROM users WHERE phone = ?",
        "SELECT id FROM users WHERE phone = 5551234",
    )
    assert workload_hints(Workload("sql", (q,)), "postgresql") == []
    (cast,) = workload_hints(
        Workload("sql", (q,)), "postgresql", schema={"users": {"phone": "text"}}
    )
    assert (cast.kind, cast.severity, cast.evidence["column_type"]) == (
        "implicit_cast",
        "medium",
        "text",
    )
    broken = query("5555555555555555", "SELEC oops")
    assert workload_hints(Workload("sql", (broken,)), "postgresql") == []
