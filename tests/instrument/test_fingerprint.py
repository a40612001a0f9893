"""SQL fingerprints: literals redacted, placeholders unified, spellings merged, never raising."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfpilot.instrument import fingerprint as fp
from perfpilot.instrument import sqlglot_quiet
from perfpilot.instrument.fingerprint import fingerprint, shape


def normalized(sql: str, db: str = "sqlite") -> str:
    return fingerprint(sql, db)[1]


def same(a: str, b: str, db: str = "sqlite") -> bool:
    return fingerprint(a, db)[0] == fingerprint(b, db)[0]


def test_literals_become_placeholders() -> None:
    assert (
        normalized("SELECT * FROM users WHERE name = 'bob' AND age > 42 AND score < 1.5e3")
        == "SELECT * FROM users WHERE name = ? AND age > ? AND score < ?"
    )


def test_null_true_and_false_are_kept() -> None:
    assert (
        normalized("SELECT a FROM t WHERE b IS NULL AND c = TRUE AND d = FALSE", "postgresql")
        == "SELECT a FROM t WHERE b IS NULL AND c = TRUE AND d = FALSE"
    )


def test_id_is_sixteen_hex_of_the_sha1_of_the_normalized_text() -> None:
    fid, text = fingerprint("SELECT 1", "sqlite")
    assert text == "SELECT ?"
    assert fid == hashlib.sha1(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("sql", "db"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "sqlite"),
        ("SELECT * FROM t WHERE a = ?1 AND b = ?2", "sqlite"),
        ("SELECT * FROM t WHERE a = :a AND b = :b", "sqlite"),
        ("SELECT * FROM t WHERE a = @a AND b = $b", "sqlite"),
        ("SELECT * FROM t WHERE a = %s AND b = %s", "postgresql"),
        ("SELECT * FROM t WHERE a = %(a)s AND b = %(b)s", "postgresql"),
        ("SELECT * FROM t WHERE a = $1 AND b = $2", "postgresql"),
        ("SELECT * FROM t WHERE a = :a AND b = :b", "postgresql"),
        ("SELECT * FROM t WHERE a = %b AND b = %t", "postgresql"),
        ("SELECT * FROM t WHERE a = 1 AND b = 'x'", "postgresql"),
    ],
)
def test_every_placeholder_style_comes_out_as_a_question_mark(sql: str, db: str) -> None:
    assert normalized(sql, db) == "SELECT * FROM t WHERE a = ? AND b = ?"


def test_placeholders_and_literals_share_a_fingerprint() -> None:
    assert same("SELECT * FROM t WHERE id = %s", "SELECT * FROM t WHERE id = 7", "postgresql")
    assert same("SELECT * FROM t WHERE id = :id", "SELECT * FROM t WHERE id = 7", "sqlite")


def test_escaped_percent_and_percent_s_inside_strings() -> None:
    assert (
        normalized("SELECT a %% 2 FROM t WHERE b LIKE 'x%%' AND c = '%s' AND d = %s", "postgresql")
        == "SELECT a % ? FROM t WHERE b LIKE ? AND c = ? AND d = ?"
    )


def test_postgres_jsonb_question_mark_operator_is_not_a_placeholder() -> None:
    text = normalized("SELECT * FROM t WHERE data ? 'key' AND id = %s", "postgresql")
    assert text == "SELECT * FROM t WHERE data ? ? AND id = ?"


def test_cast_shorthand_is_not_a_named_placeholder() -> None:
    assert "CAST(? AS INT)" in normalized("SELECT '1'::int", "postgresql")


def test_in_lists_of_any_length_share_a_fingerprint() -> None:
    assert same("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (4,5)")
    assert same("SELECT * FROM t WHERE id IN (?, ?)", "SELECT * FROM t WHERE id IN (?)")
    assert normalized("SELECT * FROM t WHERE id NOT IN (1, 2)") == (
        "SELECT * FROM t WHERE NOT id IN (?)"
    )


def test_row_lists_values_and_arrays_collapse() -> None:
    assert normalized("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')") == (
        "INSERT INTO t (a, b) VALUES (?, ?)"
    )
    assert same(
        "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
        "SELECT * FROM t WHERE (a, b) IN ((5, 6))",
        "postgresql",
    )
    assert normalized("SELECT * FROM t WHERE id = ANY(ARRAY[1, 2, 3])", "postgresql") == (
        "SELECT * FROM t WHERE id = ANY(ARRAY[?])"
    )


def test_function_arguments_are_not_collapsed() -> None:
    assert normalized("SELECT coalesce(?, 2) FROM t") == "SELECT COALESCE(?, ?) FROM t"
    assert normalized("SELECT (1), (2)") == "SELECT (?), (?)"


def test_whitespace_case_and_comments_do_not_split_fingerprints() -> None:
    a = "select  *\n from Users u where u.ID=1 -- first"
    b = "SELECT * FROM users AS u /* second */ WHERE u.id = 2"
    assert same(a, b)
    assert normalized(a) == "SELECT * FROM users AS u WHERE u.id = ?"


def test_negative_numbers_match_positive_ones() -> None:
    assert same("SELECT * FROM t WHERE a = -5", "SELECT * FROM t WHERE a = 5")


def test_quoted_identifiers_are_kept() -> None:
    assert normalized('SELECT "Name" FROM "Users" WHERE "Id" = 3', "postgresql") == (
        'SELECT "Name" FROM "Users" WHERE "Id" = ?'
    )


def test_postgres_string_forms_are_redacted() -> None:
    text = normalized(
        "SELECT E'a\\'b', $$dollar$$, $tag$tagged$tag$, B'0101', X'ff', U&'d', N'n', "
        "DATE '2024-01-01', INTERVAL '1 day' FROM t",
        "postgresql",
    )
    for secret in ("dollar", "tagged", "0101", "ff", "2024", "day", "a\\'b"):
        assert secret not in text
    assert text.startswith("SELECT ?, ?, ?, ?, ?, ?, ?")


def test_mysql_double_quotes_and_backslashes_are_strings() -> None:
    text = normalized("SELECT \"secret\", 'it\\'s', `col` FROM t # comment", "mysql")
    assert text == "SELECT ?, ?, `col` FROM t"


def test_several_statements() -> None:
    assert normalized("CREATE TABLE t (a INT); INSERT INTO t VALUES (1);") == (
        "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (?)"
    )


def test_unparsable_sql_falls_back_to_the_redacting_scanner() -> None:
    text = normalized("frobnicate ((( 'sk-SECRET123' 4111111111111111 select from", "sqlite")
    assert text == "frobnicate ((( ? ? SELECT FROM"


def test_vendor_commands_keep_their_words_and_lose_their_literals() -> None:
    assert normalized("VACUUM ANALYZE orders", "postgresql") == "VACUUM ANALYZE orders"
    assert normalized("LOCK TABLE t IN ACCESS EXCLUSIVE MODE NOWAIT", "postgresql").startswith(
        "LOCK TABLE t"
    )
    text = normalized("CLUSTER t USING idx_1; NOTIFY chan, 'sk-SECRET123'", "postgresql")
    assert "SECRET" not in text


def test_sqlite_string_alias_is_not_let_through() -> None:
    # SQLite reads a string after an expression as an alias; sqlglot agrees
    assert normalized("SELECT a 'sk-SECRET123' FROM t", "sqlite") == "SELECT a ? FROM t"


def test_unterminated_string_is_redacted_to_the_end() -> None:
    assert normalized("INSERT INTO t VALUES ('sk-SECRET123") == "INSERT INTO t VALUES (?"


def test_sqlglot_warnings_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fingerprint("VACUUM FULL some_table_for_the_log_test", "postgresql")
    assert not [r for r in caplog.records if r.name.startswith("sqlglot")]


def test_unknown_and_empty_dialects_use_generic_sql() -> None:
    assert normalized("SELECT a FROM t WHERE b = 'x'", "") == "SELECT a FROM t WHERE b = ?"
    assert normalized("SELECT a FROM t WHERE b = 'x'", "firebird") == "SELECT a FROM t WHERE b = ?"


@pytest.mark.parametrize("bad", [b"SELECT 'x'", None, 42, "", "   ", ";", "'", "$$", "/*"])
def test_never_raises(bad: object) -> None:
    fid, text = fingerprint(bad, "sqlite")  # type: ignore[arg-type]
    assert len(fid) == 16
    assert "x'" not in text


def test_results_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    sql = "SELECT * FROM cached_table WHERE id = 12345"
    first = fingerprint(sql, "sqlite")
    assert fingerprint(sql, "sqlite") is first

    calls: list[str] = []
    real = fp._parse_normalize

    def counting(sql: str, flavor: object) -> str | None:
        calls.append(sql)
        return real(sql, flavor)  # type: ignore[arg-type]

    monkeypatch.setattr(fp, "_parse_normalize", counting)
    for i in range(50):  # one shape: sqlglot runs once
        fingerprint(f"SELECT * FROM shape_cache_table WHERE id = {i} AND name = 'n{i}'", "sqlite")
    assert len(calls) == 1


def test_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "MAX_CACHE", 20)
    for i in range(100):
        fingerprint(f"SELECT col{i} FROM bounded_{i}", "sqlite")
        assert len(fp._by_text) <= 20
        assert len(fp._by_shape) <= 20


def test_huge_statements_skip_the_parser() -> None:
    rows = ", ".join(f"({i}, 'name-{i}')" for i in range(5000))
    started = time.perf_counter()
    text = normalized(f"INSERT INTO t (id, name) VALUES {rows}")
    assert time.perf_counter() - started < 2.0
    assert text == "INSERT INTO t (id, name) VALUES (?, ?)"


def test_without_sqlglot_the_scanner_still_redacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlglot_quiet._state, "module", False)
    monkeypatch.setattr(fp, "_by_text", {})
    monkeypatch.setattr(fp, "_by_shape", {})
    assert normalized("select * from t where a = 'x' and b in (1, 2)") == (
        "SELECT * FROM t WHERE a = ? AND b IN (?)"
    )


def test_shape_is_linear_and_literal_free() -> None:
    assert shape("select a from t where b = 'x' -- c", "sqlite") == "select a from t where b = ?"


# -- property: a literal never gets through ---------------------------------------
SECRETS = {
    "sqlite": ["'sk-SECRET123'", "4111111111111111", "'4111111111111111'", "'o''SECRET123'"],
    "postgresql": [
        "'sk-SECRET123'", "4111111111111111", "E'sk-\\'SECRET123'", "$$sk-SECRET123$$",
        "$q$sk-SECRET123$q$", "X'4111111111111111'", "-4111111111111111",
    ],
    "mysql": ["'sk-SECRET123'", '"sk-SECRET123"', "'it\\'s SECRET123'", "4111111111111111"],
    "": ["'sk-SECRET123'", "4111111111111111", "1.4111111111111111e5"],
}  # fmt: skip

TOKENS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "INSERT INTO",
    "VALUES", "UPDATE", "SET", "DELETE", "JOIN", "ON", "LIMIT", "ORDER BY", "GROUP BY", "AS",
    "(", ")", ",", "=", "<", ">", "*", "+", "-", "||", ";", "::int", ".", "users", "t1", "a.b",
    '"Quoted Name"', "`tick`", "?", "?1", "%s", "%(name)s", ":name", "$1", "%%", "1", "2.5",
    "'x'", "'it''s'", "''", "-- comment\n", "/* c */", "/*", "@@version", "#", "[", "]", "{",
    "}", "\\", "$$", "E", "N", "x", "CAST", "INTERVAL", "DATE", "VACUUM", "PRAGMA", "WITH",
    "RETURNING", "ARRAY[", "ANY(",
]  # fmt: skip


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, str]:
    db = draw(st.sampled_from(sorted(SECRETS)))
    before = draw(st.lists(st.sampled_from(TOKENS), max_size=12))
    after = draw(st.lists(st.sampled_from(TOKENS), max_size=12))
    secret = draw(st.sampled_from(SECRETS[db]))
    return " ".join([*before, secret, *after]), db


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements())
def test_no_literal_ever_gets_through(case: tuple[str, str]) -> None:
    sql, db = case
    fid, text = fingerprint(sql, db)
    assert len(fid) == 16
    assert "SECRET" not in text, (sql, text)
    assert "41111111" not in text, (sql, text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["sqlite", "postgresql", "mysql", "", "x"]))
def test_arbitrary_text_never_raises(sql: str, db: str) -> None:
    fid, text = fingerprint(sql, db)
    assert len(fid) == 16
    assert isinstance(text, str)
