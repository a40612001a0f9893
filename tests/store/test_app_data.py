from perfpilot.app_records import AppSnapshot, ProfileRow, RequestRow, ResourceSample
from perfpilot.stats.histogram import Histogram
from perfpilot.store import open_store
from perfpilot.store.app_data import read_app_data


def test_reads_every_kind_and_infers_the_window() -> None:
    h = Histogram()
    h.record(0.01)
    sample = ResourceSample(1_000_030.0, 1, 10, 1.0, 2, 3, 4.0, 5, 6, 0, 0, 0, 0)
    snap = AppSnapshot(
        service="svc",
        host="h",
        pid=1,
        started_at=1_000_020.0,
        ended_at=1_000_030.0,
        requests=(RequestRow("/x", "GET", 2, 1, 0, h),),
        resources=(sample,),
        profiles=(ProfileRow("/x", "app.py:3 view", "", 7),),
    )
    with open_store("sqlite://") as store:
        store.save_app_snapshot(snap)
        data = read_app_data(store, service="svc", until=1_000_100.0)
        other = read_app_data(store, service="nobody", until=1_000_100.0)
    assert data.request_count == 1 and data.resources == (sample,)
    assert data.profiles == (ProfileRow("/x", "app.py:3 view", "", 7),)
    # narrowed to the interval that recorded requests: rates are per second of traffic
    assert (data.since, data.until) == (1_000_020.0, 1_000_030.0)
    assert data.duration_s == 10.0
    assert not data.empty and other.empty


def test_an_hour_window_with_seconds_of_traffic_is_narrowed_to_them() -> None:
    h = Histogram()
    h.record(0.01)
    snaps = [
        AppSnapshot(
            service="svc",
            host="h",
            pid=1,
            started_at=t,
            ended_at=t + 5.0,
            requests=(RequestRow("/x", "GET", 2, 50, 0, h),),
        )
        for t in (2_000_000.0, 2_000_005.0)
    ]
    with open_store("sqlite://") as store:
        for snap in snaps:
            store.save_app_snapshot(snap)
        assert store.app_span(service="svc") == (2_000_000.0, 2_000_010.0)
        assert store.app_span(service="nobody") is None
        data = read_app_data(store, since=2_000_010.0 - 3600, until=2_000_050.0)
    assert (data.since, data.until) == (2_000_000.0, 2_000_010.0)
    assert data.request_count / data.duration_s == 10.0
