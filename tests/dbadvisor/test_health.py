"""The health-check entry point: dialects, options, ordering."""

from __future__ import annotations

import sqlite3

import pytest

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.health import (
    HealthOptions,
    detect_dialect,
    failed_check,
    health_finding,
    sort_findings,
)
from perfpilot.errors import UsageError


@pytest.mark.parametrize(
    ("target", "dialect"),
    [
        ("postgresql://u:pw@db/app", "postgres"),
        ("postgres://db/app", "postgres"),
        ("postgresql+psycopg://db/app", "postgres"),
        ("sqlite:///app.db", "sqlite"),
        ("app.db", "sqlite"),
        (sqlite3.connect(":memory:"), "sqlite"),
    ],
)
def test_detect_dialect(target: object, dialect: str) -> None:
    assert detect_dialect(target) == dialect


def test_detect_dialect_rejects_other_objects() -> None:
    with pytest.raises(UsageError, match="cannot check the health of a int"):
        detect_dialect(42)


def test_options_round_trip_and_reject_unknown_keys() -> None:
    options = HealthOptions(long_running_s=5, bloat_bytes_min=1024)
    assert HealthOptions.from_dict(options.to_dict()) == options
    assert HealthOptions.from_dict({"cache_blocks_min": "10"}).cache_blocks_min == 10
    with pytest.raises(UsageError, match="unknown health option"):
        HealthOptions.from_dict({"long_runing_s": 5})


def test_findings_sort_by_severity_then_kind_and_round_trip() -> None:
    low = health_finding("unused_index", "low", "t", "public.b", {"size_bytes": 1}, "drop", "DROP;")
    high = health_finding("invalid_index", "high", "t", "public.a", {}, "rebuild")
    info = failed_check("cache_hit_ratio", "permission denied")
    assert [f.kind for f in sort_findings([info, low, high])] == [
        "invalid_index",
        "unused_index",
        "health_check_failed",
    ]
    assert Finding.from_dict(low.to_dict()) == low
    assert low.fix.language == "sql" and high.fix.language == "text"
    assert low.id != health_finding("unused_index", "low", "t", "public.c", {}, "drop").id
