"""The stack sampler in a real app under uvicorn: CPU-bound routes, in the thread
pool and on the event loop, are attributed to their routes and hot function."""

from __future__ import annotations

import concurrent.futures

import pytest

from perfpilot.analyze.hotframes import hot_frames, route_samples
from perfpilot.store import open_store
from tests.instrument import test_frameworks as frameworks
from tests.netutil import get

pytestmark = pytest.mark.integration

serve = frameworks.serve


@pytest.mark.parametrize("route", ["/sync/{n}", "/async/{n}"])
def test_cpu_bound_route_samples_name_the_hot_function(serve: frameworks.Serve, route: str) -> None:
    server = serve(frameworks.uvicorn("tests.instrument.apps.profile_app:app"))
    path = route.replace("{n}", "300000")  # about 20-40 ms of pure Python per request
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = [status for status, _ in pool.map(lambda _: get(server.url + path), range(40))]
    assert statuses == [200] * 40
    server.stop()
    with open_store(str(server.store)) as db:
        profiles = db.app_profiles()
    assert {row.route for row in profiles} == {route}, server.output()
    assert route_samples(profiles, route) >= 20
    top = hot_frames(profiles, route)[0]
    assert top.function == "crunch"
    assert top.file.endswith("tests/instrument/apps/profile_app.py")
    assert top.self_share >= 0.5
    assert top.via is None
