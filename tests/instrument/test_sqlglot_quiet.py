"""sqlglot's warnings never reach the log (or standard error) while perfpilot parses."""

from __future__ import annotations

import logging

import pytest

from perfpilot.dbadvisor.hints import query_hints
from perfpilot.dbadvisor.shape import analyze_query, parse
from perfpilot.instrument.fingerprint import fingerprint
from perfpilot.instrument.sqlglot_quiet import quiet_parse, quiet_sqlglot

UNSUPPORTED = "ALTER USER postgres PASSWORD ?"


def sqlglot_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("sqlglot")]


def test_parsing_unsupported_syntax_writes_nothing(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        trees = quiet_parse(UNSUPPORTED, "postgres")
        assert [type(t).__name__ for t in trees] == ["Command"]
        assert type(parse(UNSUPPORTED, "postgresql")).__name__ == "Command"  # dbadvisor.shape
        analyze_query(UNSUPPORTED, "postgresql", {})
        assert query_hints(UNSUPPORTED, "postgres") == []  # dbadvisor.hints
        fingerprint(UNSUPPORTED, "postgresql")  # instrument.fingerprint
    assert sqlglot_records(caplog) == []
    assert capsys.readouterr().err == ""


def test_other_threads_and_later_calls_keep_sqlglot_s_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sqlglot

    with caplog.at_level(logging.WARNING):
        with quiet_sqlglot(), quiet_sqlglot():  # nested
            sqlglot.parse(UNSUPPORTED, read="postgres")
        assert sqlglot_records(caplog) == []
        sqlglot.parse(UNSUPPORTED, read="postgres")  # outside: sqlglot's warning as usual
    assert len(sqlglot_records(caplog)) == 1
