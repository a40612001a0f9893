"""Query hints from parsed SQL; rewrites are checked by running them on SQLite."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.hints import query_hints
from perfpilot.errors import UsageError

Schema = dict[str, dict[str, str]]


def kinds(sql: str, dialect: str = "postgres", schema: Schema | None = None) -> list[str]:
    return [f.kind for f in query_hints(sql, dialect, schema=schema)]


def only(sql: str, kind: str, dialect: str = "postgres", schema: Schema | None = None) -> Finding:
    found = [f for f in query_hints(sql, dialect, schema=schema) if f.kind == kind]
    assert len(found) == 1, kinds(sql, dialect, schema)
    return found[0]


@pytest.fixture
def shop() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, banned INTEGER);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL, created_at TEXT);
        CREATE TABLE refunds (id INTEGER PRIMARY KEY, user_id INTEGER);
        INSERT INTO users VALUES (1, 'A@x.io', '555', 0), (2, 'b@x.io', '556', 1), (3, 'c@x.io', '557', 0);
        INSERT INTO orders VALUES (10, 1, 5.0, '2024-01-01 10:00'), (11, 2, 7.5, '2024-01-02 11:00'),
                                  (12, 3, 1.0, '2024-01-01 23:00'), (13, 2, 2.0, '2024-01-03 08:00');
        INSERT INTO refunds VALUES (100, 2);
        """
    )
    return conn


# -- SELECT * --------------------------------------------------------------------------


def test_select_star_is_reported_with_its_table() -> None:
    finding = only("SELECT * FROM users WHERE id = 1", "select_star")
    assert finding.severity == "low"
    assert finding.evidence["tables"] == ["users"]
    assert "select_star" in kinds("SELECT u.* FROM users u WHERE u.id = 1")


def test_explicit_columns_count_star_and_exists_star_are_not_select_star() -> None:
    assert "select_star" not in kinds("SELECT id, email FROM users WHERE id = 1")
    assert "select_star" not in kinds("SELECT count(*) FROM users")
    assert "select_star" not in kinds(
        "SELECT id FROM orders o WHERE EXISTS (SELECT * FROM refunds r WHERE r.user_id = o.user_id)"
    )


# -- unbounded selects ------------------------------------------------------------------


def test_unbounded_select_suggests_a_limit_that_runs(shop: sqlite3.Connection) -> None:
    finding = only("SELECT id, email FROM users", "unbounded_select", "sqlite")
    assert finding.fix.code == "SELECT id, email FROM users LIMIT 100;"
    assert len(shop.execute(finding.fix.code).fetchall()) == 3


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM users WHERE banned = 0",
        "SELECT id FROM users LIMIT 10",
        "SELECT id FROM users FETCH FIRST 5 ROWS ONLY",
        "SELECT count(*) FROM users",
        "SELECT banned, count(*) FROM users GROUP BY banned",
        "SELECT 1",
        "UPDATE users SET banned = 0",
    ],
)
def test_bounded_or_aggregate_queries_are_not_unbounded(sql: str) -> None:
    assert "unbounded_select" not in kinds(sql)


# -- functions on columns ---------------------------------------------------------------


def test_function_on_column_gives_the_expression_index(shop: sqlite3.Connection) -> None:
    finding = only("SELECT id FROM users WHERE lower(email) = 'a@x.io'", "function_on_column")
    assert finding.fix.code == (
        "CREATE INDEX CONCURRENTLY users_lower_email_idx ON users ((lower(email)));"
    )
    sqlite_finding = only(
        "SELECT o.id FROM orders AS o WHERE date(o.created_at) = '2024-01-01'",
        "function_on_column",
        "sqlite",
    )
    assert sqlite_finding.evidence["table"] == "orders"
    # the index is valid SQLite, and the planner uses it for the original query
    shop.execute(sqlite_finding.fix.code)
    plan = shop.execute(
        "EXPLAIN QUERY PLAN SELECT o.id FROM orders AS o WHERE date(o.created_at) = '2024-01-01'"
    ).fetchall()
    assert "orders_date_created_at_idx" in " ".join(str(row) for row in plan)
    shop.execute(finding.fix.code.replace(" CONCURRENTLY", ""))


def test_function_on_column_without_a_known_table_has_no_code() -> None:
    finding = only(
        "SELECT 1 FROM users u JOIN orders o ON o.user_id = u.id WHERE lower(email) = 'x'",
        "function_on_column",
    )
    assert finding.fix.code == ""
    assert finding.evidence["expression"] == "lower(email)"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM users WHERE email = lower('A@X.IO')",  # the function is on the value
        "SELECT 1 FROM users u JOIN orders o ON true WHERE lower(u.email) = lower(o.created_at)",
        "SELECT banned, count(*) FROM users GROUP BY banned HAVING count(*) > 1",
        "SELECT id FROM users WHERE email = 'a'",
    ],
)
def test_no_function_on_column_hint(sql: str) -> None:
    assert "function_on_column" not in kinds(sql)


# -- OR across columns ------------------------------------------------------------------


def test_or_across_columns_union_returns_the_same_rows(shop: sqlite3.Connection) -> None:
    sql = "SELECT id FROM users WHERE email = 'b@x.io' OR phone = '557'"
    finding = only(sql, "or_across_columns", "sqlite")
    assert finding.evidence["columns"] == ["users.email", "users.phone"]
    assert "UNION" in finding.fix.code
    assert sorted(shop.execute(finding.fix.code).fetchall()) == sorted(shop.execute(sql).fetchall())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM users WHERE banned = 0 OR banned = 1",  # one column: an IN list
        "SELECT id FROM users WHERE $1 IS NULL OR email = $1",  # optional filter
        "SELECT id FROM users WHERE email = 'a' AND phone = 'b'",
    ],
)
def test_no_or_across_columns_hint(sql: str) -> None:
    assert "or_across_columns" not in kinds(sql)


def test_or_with_order_by_is_reported_without_a_union() -> None:
    finding = only(
        "SELECT id FROM users WHERE email = 'a' OR phone = 'b' ORDER BY id", "or_across_columns"
    )
    assert finding.fix.code == ""


# -- IN (subquery) ----------------------------------------------------------------------


def test_in_subquery_rewrite_as_exists_returns_the_same_rows(shop: sqlite3.Connection) -> None:
    sql = "SELECT id FROM orders WHERE user_id IN (SELECT id FROM users WHERE banned = 1)"
    finding = only(sql, "in_subquery", "sqlite")
    assert finding.severity == "info"
    assert "EXISTS" in finding.fix.code and "users.id = orders.user_id" in finding.fix.code
    assert sorted(shop.execute(finding.fix.code).fetchall()) == sorted(shop.execute(sql).fetchall())


def test_not_in_subquery_is_worse_and_rewritten_as_not_exists(shop: sqlite3.Connection) -> None:
    sql = "SELECT o.id FROM orders o WHERE o.user_id NOT IN (SELECT r.user_id FROM refunds r)"
    finding = only(sql, "not_in_subquery", "sqlite")
    assert finding.severity == "medium"
    assert "NOT EXISTS" in finding.fix.code
    assert sorted(shop.execute(finding.fix.code).fetchall()) == sorted(shop.execute(sql).fetchall())
    # and with a NULL in the subquery NOT IN finds nothing while NOT EXISTS is right
    shop.execute("INSERT INTO refunds VALUES (101, NULL)")
    assert shop.execute(sql).fetchall() == []
    assert len(shop.execute(finding.fix.code).fetchall()) == 2


def test_ambiguous_in_subquery_gets_no_rewrite() -> None:
    # the same table inside and outside: the correlation cannot be spelled safely
    finding = only(
        "SELECT id FROM users WHERE id IN (SELECT id FROM users WHERE banned = 1)", "in_subquery"
    )
    assert finding.fix.code == ""


def test_in_list_is_not_a_subquery_hint() -> None:
    assert not {"in_subquery", "not_in_subquery"} & set(
        kinds("SELECT id FROM users WHERE id IN (1, 2, 3)")
    )


# -- implicit casts ---------------------------------------------------------------------

SCHEMA = {"users": {"id": "integer", "phone": "varchar(20)", "email": "text"}}


def test_implicit_cast_with_the_schema() -> None:
    text_vs_number = only(
        "SELECT id FROM users WHERE phone = 5551234", "implicit_cast", schema=SCHEMA
    )
    assert text_vs_number.severity == "medium"
    assert text_vs_number.evidence["column_type"] == "varchar(20)"
    int_vs_decimal = only(
        "SELECT email FROM users u WHERE u.id = 10.0", "implicit_cast", schema=SCHEMA
    )
    assert int_vs_decimal.evidence["column"] == "users.id"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM users WHERE phone = '5551234'",
        "SELECT email FROM users WHERE id = 10",
        "SELECT email FROM users WHERE id = '10'",  # an unknown-typed literal: fine in PostgreSQL
    ],
)
def test_no_implicit_cast_when_types_match(sql: str) -> None:
    assert "implicit_cast" not in kinds(sql, schema=SCHEMA)


def test_implicit_cast_heuristics_without_a_schema_are_conservative() -> None:
    assert only("SELECT id FROM orders WHERE user_id = 42.0", "implicit_cast").confidence < 0.5
    mixed = only("SELECT id FROM orders WHERE code = 5 OR code = '5'", "implicit_cast")
    assert mixed.severity == "info"
    for sql in (
        "SELECT id FROM orders WHERE total = 42.5",
        "SELECT id FROM orders WHERE user_id = 42",
        "SELECT id FROM orders WHERE user_id = '42'",
    ):
        assert "implicit_cast" not in kinds(sql), sql


# -- ids, subjects, robustness ----------------------------------------------------------


def test_ids_are_stable_and_subjects_hold_no_literals() -> None:
    a = query_hints("SELECT * FROM users WHERE lower(email) = 'secret@x.io'")
    b = query_hints("SELECT * FROM users WHERE lower(email) = 'other@x.io'")
    assert [f.id for f in a] == [f.id for f in b]
    assert all("secret" not in f.subject for f in a)
    assert len({f.id for f in a}) == len(a)


def test_several_statements_and_unparsable_text() -> None:
    assert kinds("SELECT * FROM users WHERE id = 1; SELECT id FROM users") == [
        "select_star",
        "unbounded_select",
    ]
    assert query_hints("this is not SQL ((") == []
    assert query_hints("") == []


def test_unknown_dialect_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown SQL dialect"):
        query_hints("SELECT 1", "cobol")


SQL_WORDS = st.sampled_from(
    [
        "SELECT",
        "*",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "EXISTS",
        "(",
        ")",
        ",",
        "=",
        "<",
        ">",
        "'x'",
        "1",
        "2.5",
        "$1",
        "?",
        "t",
        "u",
        "a",
        "b",
        "lower",
        "LIMIT",
        "ORDER",
        "BY",
        "GROUP",
        "JOIN",
        "ON",
        "UNION",
        ";",
        "--",
        "/*",
        "*/",
        '"',
        "NULL",
        "IS",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_query_hints_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(query_hints(text), list)
    assert isinstance(query_hints(text, "sqlite"), list)


@settings(max_examples=300, deadline=None)
@given(st.lists(SQL_WORDS, max_size=30).map(" ".join))
def test_query_hints_never_raises_on_sql_like_text(text: str) -> None:
    for finding in query_hints(text):
        assert finding.fix.summary
