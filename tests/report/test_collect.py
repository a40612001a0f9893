"""Reports read from a store: one load run, or a window back from now."""

from __future__ import annotations

import pytest

from perfpilot.app_records import AppSnapshot, QueryRow, RequestRow
from perfpilot.clock import FakeClock
from perfpilot.errors import StoreError, UsageError
from perfpilot.report.collect import collect_report, window_report
from perfpilot.store import Store, open_store
from tests.report.sample import T0, hist, sample_load


def fill(store: Store) -> int:
    """A load run from T0 to T0+10 and the app's view of it, plus older app data."""
    for started, route in ((T0 - 600, "/old"), (T0, "/orders")):
        store.save_app_snapshot(
            AppSnapshot(
                service="shop",
                host="h",
                pid=1,
                started_at=started,
                ended_at=started + 5,
                requests=(
                    RequestRow(
                        route, "GET", 2, 40, 0, hist(*[0.05] * 40), db_time_s=1.0, db_count=40
                    ),
                ),
                queries=(
                    QueryRow(
                        "f1",
                        "SELECT * FROM items WHERE id = ?",
                        "sqlite",
                        route,
                        40,
                        0,
                        hist(*[0.025] * 40),
                    ),
                ),
            )
        )
    return store.save_run(sample_load())


def test_a_run_report_covers_the_run_and_the_app_data_recorded_during_it() -> None:
    with open_store("sqlite://") as store:
        run_id = fill(store)
        report = collect_report(store, run_id=run_id, clock=FakeClock(T0 + 3600))
    assert report.run_name == "shop <smoke>"
    assert report.assessment.source == "load"
    assert [r.route for r in report.bottlenecks.routes] == ["/orders"]  # not /old
    assert report.generated_at == T0 + 3600
    assert (report.since, report.until) == (T0, T0 + 10)


def test_a_window_report_reads_back_from_now() -> None:
    with open_store("sqlite://") as store:
        fill(store)
        recent = collect_report(store, since=60, clock=FakeClock(T0 + 30))
        both = collect_report(store, since=3600, service="shop", clock=FakeClock(T0 + 30))
    assert recent.run_name is None and recent.assessment.source == "app"
    assert [r.route for r in recent.bottlenecks.routes] == ["/orders"]
    assert {r.route for r in both.bottlenecks.routes} == {"/orders", "/old"}


def test_nothing_recorded_and_bad_arguments_are_usage_errors() -> None:
    with open_store("sqlite://") as store:
        fill(store)
        with pytest.raises(UsageError, match="nothing was recorded for service 'other'"):
            collect_report(store, since=3600, service="other", clock=FakeClock(T0 + 30))
        with pytest.raises(UsageError, match="nothing was recorded"):
            window_report(store, start=0.0, end=100.0)
        with pytest.raises(UsageError, match="not both or neither"):
            collect_report(store, run_id=1, since=60)
        with pytest.raises(UsageError, match="not both or neither"):
            collect_report(store)
        with pytest.raises(StoreError):
            collect_report(store, run_id=99)
