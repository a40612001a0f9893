import pytest

from perfpilot.analyze.hotframes import HotFrame, hot_frames, parse_frame, route_samples
from perfpilot.app_records import NO_APP_FRAME, ProfileRow


def test_parse_frame() -> None:
    assert parse_frame("/srv/app.py:12 Cls.method") == ("/srv/app.py", 12, "Cls.method")
    assert parse_frame("C:\\app\\views.py:3 <listcomp>") == ("C:\\app\\views.py", 3, "<listcomp>")
    with pytest.raises(ValueError):
        parse_frame("nonsense")


def test_self_and_total_shares_per_function() -> None:
    rows = [
        ProfileRow("/r", "a.py:5 helper < a.py:20 view", "", 30),
        ProfileRow("/r", "a.py:6 helper < a.py:21 view", "re/__init__.py:1 match", 50),
        ProfileRow("/r", "a.py:22 view", "", 10),
        ProfileRow("/r", "<other>", "", 5),
        ProfileRow("/r", NO_APP_FRAME, "starlette/routing.py:9 run", 5),
        ProfileRow("/r", "broken entry", "", 1),  # not a frame: counted in the total only
        ProfileRow("/elsewhere", "b.py:1 other", "", 1000),
    ]
    assert route_samples(rows, "/r") == 101
    helper, view, library = hot_frames(rows, "/r")
    assert helper == HotFrame("helper", "a.py", 6, 80 / 101, 80 / 101, "re/__init__.py:1 match")
    assert (view.line, view.self_share, view.total_share, view.via) == (
        22,
        10 / 101,
        90 / 101,
        None,
    )
    assert (library.frame, library.location, library.via) == (
        NO_APP_FRAME,
        None,
        "starlette/routing.py:9 run",
    )
    assert helper.to_dict()["frame"] == "a.py:6 helper"
    assert hot_frames(rows, "/r", limit=1) == [helper]
    assert hot_frames(rows, "/missing") == []
