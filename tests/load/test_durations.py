"""Tests for perfpilot.load.durations."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.errors import ConfigError
from perfpilot.load.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("4m30s", 270.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("10ns", 1e-8),
        ("2", 2.0),
        ("0.5", 0.5),
        (" 5 m ", 300.0),
        ("1m 30s", 90.0),
        ("0s", 0.0),
        (".5s", 0.5),
        ("1e3", 1000.0),
    ],
)
def test_parses_strings(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "seconds"), [(3, 3.0), (2.5, 2.5), (0, 0.0)])
def test_plain_numbers_are_seconds(value: float, seconds: float) -> None:
    result = parse_duration(value)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    ["", "  ", "s", "10x", "1min", "5 sec", "-1s", "-3", "ms10", "1.2.3s", "1e400", "abc"],
)
def test_rejects_bad_strings(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, field="executor.duration", path="s.toml", line=3)
    error = info.value
    assert error.field == "executor.duration"
    assert error.path == "s.toml"
    assert error.line == 3
    assert "expected a duration" in error.message


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, -1, math.inf, math.nan])
def test_rejects_bad_values(value: object) -> None:
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (270.0, "4m30s"),
        (3600.0, "1h"),
        (0.25, "250ms"),
        (1.5, "1.5s"),
        (3661, "1h1m1s"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_fuzz_only_config_errors(text: str) -> None:
    try:
        result = parse_duration(text)
    except ConfigError:
        return
    assert result >= 0
    assert math.isfinite(result)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-5, abs=1e-9)
