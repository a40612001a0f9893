"""What the SQL hooks share: reporting a statement, and suppressing recording."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from perfpilot.instrument.sql_record import SQLITE, is_suppressed, record, suppressed
from tests.instrument.test_sql import queries


def test_suppressed_nests_and_restores() -> None:
    assert not is_suppressed()
    with suppressed():
        assert is_suppressed()
        with suppressed():
            assert is_suppressed()
        assert is_suppressed()
    assert not is_suppressed()


def test_record_reports_text_duration_and_positive_rows() -> None:
    rec = Recorder("test", sample_rate=0.0, seed=1)
    record(rec, "SELECT 1", 10.0, 10.25, 3, False, SQLITE)
    record(rec, b"SELECT 1", 10.0, 10.5, 2, True, SQLITE)  # not text: named by its type
    record(rec, "SELECT 1", 10.0, 10.5, -1, False, SQLITE)  # DB-API "unknown"
    record(rec, "SELECT 1", 10.0, 10.5, None, False, SQLITE)
    assert rec.call_sites.keys() == {"SELECT 1", "<bytes>"}
    assert queries(rec) == {
        "SELECT 1": [(NO_ROUTE, "sqlite", 3, 0, 3)],
        "<bytes>": [(NO_ROUTE, "sqlite", 1, 1, 2)],
    }


def test_record_never_raises_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def query(self, *args: Any) -> None:
            raise RuntimeError("perfpilot bug")

    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        for _ in range(3):
            record(Broken(), "SELECT 1", 0.0, 1.0, 1, False, SQLITE)
    # one warning per process, whichever test triggered it first
    assert len([r for r in caplog.records if "not recorded" in r.message]) <= 1
