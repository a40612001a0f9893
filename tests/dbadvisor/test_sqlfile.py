"""Splitting SQL files on ';' and reading them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.dbadvisor.sqlfile import read_sql_file, split_sql
from perfpilot.errors import ConfigError


def test_splits_on_semicolons_with_the_line_each_statement_starts_on() -> None:
    text = "select 1;\n\n  -- a comment\nselect 2\n  from t;\nselect 3"
    found = split_sql(text)
    assert [s.sql for s in found] == ["select 1", "-- a comment\nselect 2\n  from t", "select 3"]
    assert [s.line for s in found] == [1, 4, 6]


def test_semicolons_inside_quotes_comments_and_dollar_quotes_do_not_split() -> None:
    text = (
        "select ';' as a, \"x;y\" from t;\n"
        "select 1 /* ; /* nested ; */ still comment ; */;\n"
        "select $$;$$, $fn$ ; $$ ; $fn$;\n"
        "select E'it\\'s;' -- trailing ; comment\n;"
        "select 'it''s; fine'"
    )
    found = [s.sql for s in split_sql(text)]
    assert len(found) == 5
    assert found[0] == "select ';' as a, \"x;y\" from t"
    assert found[2] == "select $$;$$, $fn$ ; $$ ; $fn$"
    assert found[4] == "select 'it''s; fine'"


def test_pieces_holding_only_comments_or_blanks_are_not_statements() -> None:
    assert split_sql(" ; -- nothing\n ; /* none */ ;\n") == []


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("select 1;\nselect 'abc", 2, "unterminated string literal"),
        ('select 1;\n\nselect "abc', 3, "unterminated quoted identifier"),
        ("select 1 /* open", 1, "unterminated /* comment"),
        ("select 1;\nselect $tag$ body $$", 2, "unterminated dollar quote $tag$"),
        ("select 1;\nselect E'abc\\'", 2, "unterminated string literal"),
    ],
)
def test_unterminated_regions_are_config_errors_with_file_and_line(
    text: str, line: int, what: str
) -> None:
    with pytest.raises(ConfigError) as info:
        split_sql(text, path="q.sql")
    assert info.value.path == "q.sql"
    assert info.value.line == line
    assert str(info.value) == f"q.sql:{line}: {what}"


def test_read_sql_file_rejects_binary_non_utf8_and_empty_files(tmp_path: Path) -> None:
    binary = tmp_path / "bin.sql"
    binary.write_bytes(b"select 1;\nselect \x00;")
    latin = tmp_path / "latin.sql"
    latin.write_bytes(b"select 1;\nselect 'caf\xe9';")
    empty = tmp_path / "empty.sql"
    empty.write_text("-- nothing here\n")
    with pytest.raises(ConfigError, match=r"bin\.sql:2: not a text file"):
        read_sql_file(binary)
    with pytest.raises(ConfigError, match=r"latin\.sql:2: not UTF-8 text \(byte 0xe9\)"):
        read_sql_file(latin)
    with pytest.raises(ConfigError, match=r"empty\.sql:1: no SQL statement found"):
        read_sql_file(empty)
    with pytest.raises(ConfigError, match=r"missing\.sql: cannot read the file"):
        read_sql_file(tmp_path / "missing.sql")


_SQLISH = st.text(alphabet="ab ;'\"-/*$\\\nE1", max_size=60)


@settings(max_examples=400, deadline=None)
@given(_SQLISH)
def test_fuzz_split_sql_returns_statements_or_a_positioned_config_error(text: str) -> None:
    try:
        found = split_sql(text, path="fuzz.sql")
    except ConfigError as exc:
        assert exc.path == "fuzz.sql"
        assert exc.line is not None and 1 <= exc.line <= text.count("\n") + 1
        assert str(exc).startswith(f"fuzz.sql:{exc.line}: ")
        return
    for statement in found:
        assert statement.sql and statement.sql == statement.sql.strip()
        assert 1 <= statement.line <= text.count("\n") + 1
        assert statement.sql in text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="abc ,=()", min_size=1, max_size=15).filter(str.strip), max_size=6)
)
def test_fuzz_statements_joined_by_semicolons_split_back(parts: list[str]) -> None:
    text = ";\n".join(parts)
    assert [s.sql for s in split_sql(text)] == [p.strip() for p in parts]
