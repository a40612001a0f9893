"""Reading timed statements out of a PostgreSQL log."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.dbadvisor.pglog import parse_pg_log, read_pg_log
from perfpilot.errors import ConfigError

LOG = """\
2024-06-01 12:00:00.100 UTC [41] LOG:  database system is ready to accept connections
2024-06-01 12:00:01.123 UTC [42] LOG:  duration: 12.345 ms  statement: SELECT * FROM orders WHERE customer_id = 7
2024-06-01 12:00:02.000 UTC [42] LOG:  duration: 250.5 ms  statement: SELECT o.id
\tFROM orders o
\tWHERE o.status = 'pending'
\t  AND o.total_cents > 100
2024-06-01 12:00:03.000 UTC [43] LOG:  duration: 0.050 ms  parse <unnamed>: SELECT * FROM t WHERE a = $1
2024-06-01 12:00:03.001 UTC [43] LOG:  duration: 0.020 ms  bind <unnamed>: SELECT * FROM t WHERE a = $1
2024-06-01 12:00:03.001 UTC [43] DETAIL:  parameters: $1 = '5'
2024-06-01 12:00:03.010 UTC [43] LOG:  duration: 3.000 ms  execute <unnamed>: SELECT * FROM t WHERE a = $1 AND b = $2 AND c = '$1'
2024-06-01 12:00:03.010 UTC [43] DETAIL:  parameters: $1 = '5', $2 = 'it''s'
2024-06-01 12:00:04.000 UTC [44] LOG:  duration: 1.500 ms  execute S_1: SELECT * FROM t WHERE a = $1
2024-06-01 12:00:05.000 UTC [44] ERROR:  relation "nope" does not exist
2024-06-01 12:00:05.000 UTC [44] STATEMENT:  SELECT * FROM nope
2024-06-01 12:00:06.000 UTC [45] LOG:  duration: 9.000 ms
"""


def test_reads_statements_durations_multiline_and_execute_parameters() -> None:
    found = parse_pg_log(LOG, path="pg.log")
    assert [s.duration_ms for s in found] == [12.345, 250.5, 3.0, 1.5]
    assert [s.line for s in found] == [2, 3, 10, 12]
    assert found[0].sql == "SELECT * FROM orders WHERE customer_id = 7"
    assert found[1].sql == (
        "SELECT o.id\nFROM orders o\nWHERE o.status = 'pending'\n  AND o.total_cents > 100"
    )
    # values substituted outside quotes only
    assert found[2].sql == "SELECT * FROM t WHERE a = '5' AND b = 'it''s' AND c = '$1'"
    # an execute without a parameters line keeps its placeholders
    assert found[3].sql == "SELECT * FROM t WHERE a = $1"


def test_a_log_prefix_with_more_fields_and_null_parameters() -> None:
    log = (
        "2024-06-01 12:00:00 UTC:127.0.0.1(5432):app@shop:[7]: LOG:  duration: 4 ms  "
        "execute <unnamed>: SELECT * FROM t WHERE a = $1 AND b = $10\n"
        "2024-06-01 12:00:00 UTC:127.0.0.1(5432):app@shop:[7]: DETAIL:  parameters: "
        "$1 = NULL, $10 = 'x'\n"
    )
    (only,) = parse_pg_log(log)
    assert only.sql == "SELECT * FROM t WHERE a = NULL AND b = 'x'"
    assert only.duration_ms == 4.0


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = "x LOG:  duration: 1 ms  execute a: SELECT $1\nx DETAIL:  parameters: $1 = 'open\n"
    with pytest.raises(ConfigError) as info:
        parse_pg_log(bad, path="pg.log")
    assert (info.value.path, info.value.line) == ("pg.log", 2)
    assert "cannot read the parameter list" in str(info.value)
    with pytest.raises(ConfigError, match=r"^quiet\.log:1: no 'duration: \.\.\. ms  statement"):
        parse_pg_log("2024 LOG:  checkpoint starting\n", path="quiet.log")
    path = tmp_path / "bin.log"
    path.write_bytes(b"x LOG:  duration: 1 ms  statement: select 1\n\x00")
    with pytest.raises(ConfigError, match=r"bin\.log:2: not a text file"):
        read_pg_log(path)


_LINES = st.sampled_from(
    [
        "2024 UTC [1] LOG:  duration: 1.5 ms  statement: SELECT 1",
        "2024 UTC [1] LOG:  duration: 2 ms  execute <unnamed>: SELECT $1, '$2'",
        "2024 UTC [1] DETAIL:  parameters: $1 = 'a''b', $2 = NULL",
        "2024 UTC [1] DETAIL:  parameters: $1 = 'unterminated",
        "2024 UTC [1] DETAIL:  parameters: garbage",
        "\tAND x = 1",
        "2024 UTC [1] LOG:  checkpoint complete",
        "2024 UTC [1] ERROR:  syntax error",
        "",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_LINES, st.text(max_size=30)), max_size=12))
def test_fuzz_log_parser_returns_statements_or_a_positioned_config_error(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        found = parse_pg_log(text, path="fuzz.log")
    except ConfigError as exc:
        assert exc.path == "fuzz.log"
        assert exc.line is not None and exc.line >= 1
        assert str(exc).startswith(f"fuzz.log:{exc.line}: ")
        return
    assert found
    for statement in found:
        assert statement.line >= 1
        assert statement.duration_ms is not None and statement.duration_ms >= 0
        assert statement.sql
