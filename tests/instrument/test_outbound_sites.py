"""Outbound calls carry the application's call site: found at the call, once per endpoint."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
import wsgiref.simple_server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import flask
import httpx
import pytest
import requests

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.diagnose import diagnose
from perfpilot.app_records import AppSnapshot
from perfpilot.instrument import outbound
from perfpilot.instrument.callsite import find_call_site
from perfpilot.instrument.context import RequestContext, active, current_request, perf
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware
from tests.paid_api import PaidAPI

pytestmark = pytest.mark.integration

CLIENTS = ("httpx", "httpx-async", "requests", "aiohttp")
_SOURCE = Path(__file__).read_text().splitlines()


def lines_marked(marker: str) -> set[str]:
    """``file:line`` of each line of this file ending with ``marker``."""
    return {f"{__file__}:{i}" for i, text in enumerate(_SOURCE, 1) if text.endswith(marker)}


@pytest.fixture
def api() -> Iterator[PaidAPI]:
    with PaidAPI() as server:
        yield server


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    assert outbound.install() == ["httpx", "requests", "aiohttp"]
    rec = Recorder("svc", slow_s=10.0, sample_rate=0.0, seed=1)
    active.recorder = rec
    try:
        yield rec
    finally:
        active.recorder = None
        outbound.state.prices = None


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every stack walk the recorder makes for a call site, with its answer."""
    found: list[str | None] = []

    def counted(skip: int = 2, depth: int = 3) -> str | None:
        site = find_call_site(skip + 1, depth)  # + this frame
        found.append(site)
        return site

    monkeypatch.setattr("perfpilot.instrument.recorder.find_call_site", counted)
    return found


def snapshot(rec: Recorder) -> AppSnapshot:
    out: list[AppSnapshot] = []
    Flusher(rec, out.append, lambda sql, db: (sql, sql)).flush()
    assert len(out) == 1
    return out[0]


def call(client: str, url: str) -> None:
    """One GET of ``url`` made by application code (this file)."""
    if client == "httpx":
        with httpx.Client(trust_env=False) as c:
            c.get(url)  # the call
    elif client == "httpx-async":

        async def run_httpx() -> None:
            async with httpx.AsyncClient(trust_env=False) as c:
                await c.get(url)  # the call

        asyncio.run(run_httpx())
    elif client == "requests":
        requests.get(url, timeout=10)  # the call
    else:

        async def run_aiohttp() -> None:
            async with aiohttp.ClientSession() as s, s.get(url) as r:  # the call
                await r.read()

        asyncio.run(run_aiohttp())


def in_request(route: str, work: Any, *, duration: float = 0.01) -> None:
    rec = active.recorder
    assert rec is not None
    ctx = RequestContext("GET", perf())
    ctx.route = route
    token = current_request.set(ctx)
    try:
        work()
        ctx.status = 200
    finally:
        current_request.reset(token)
    rec.finish(ctx, duration)


@pytest.mark.parametrize("client", CLIENTS)
def test_calls_carry_the_line_of_the_app_that_made_them_found_once(
    client: str, api: PaidAPI, recorder: Recorder, walks: list[str | None]
) -> None:
    def work() -> None:
        for _ in range(3):
            call(client, f"{api.url}/v1/places/7")

    in_request("/listing", work, duration=11.0)  # slow: traced
    snap = snapshot(recorder)
    (row,) = snap.outbound
    assert row.count == 3
    assert row.call_site is not None
    frames = row.call_site.split(" < ")
    assert frames[0] in lines_marked("# the call")
    if client in ("httpx", "requests"):  # sync: the app's callers follow, up to three frames
        assert len(frames) == 3 and all(f.startswith(f"{__file__}:") for f in frames)
    assert len(walks) == 1  # the stack is walked once per endpoint, not per call
    (trace,) = snap.traces
    assert [s.detail["call_site"] for s in trace.spans if s.kind == "http"] == [row.call_site] * 3


@pytest.mark.parametrize("library_call", [requests.get, httpx.get])
def test_a_call_with_no_application_frame_has_no_call_site(
    library_call: Any, api: PaidAPI, recorder: Recorder
) -> None:
    kwargs = {"timeout": 10} if library_call is requests.get else {"trust_env": False}
    thread = threading.Thread(
        target=library_call, args=(f"{api.url}/v1/places/7",), kwargs=kwargs
    )  # the thread runs the library function itself: no frame of this file is on its stack
    thread.start()
    thread.join(30)
    (row,) = snapshot(recorder).outbound
    assert (row.count, row.call_site) == (1, None)


def test_a_streamed_call_ending_elsewhere_keeps_the_call_site_of_the_call(
    api: PaidAPI, recorder: Recorder
) -> None:
    with httpx.Client(trust_env=False) as c:
        response = c.send(c.build_request("GET", f"{api.url}/v1/places/7"), stream=True)  # here
        closer = threading.Thread(target=response.close)
        closer.start()
        closer.join(30)
    (row,) = snapshot(recorder).outbound
    assert row.call_site is not None
    assert row.call_site.split(" < ")[0] in lines_marked("# here")


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_findings_from_a_live_app_name_the_line_making_the_repeated_call(
    api: PaidAPI, recorder: Recorder
) -> None:
    app = flask.Flask("listing")

    @app.get("/listing")
    def listing() -> str:
        for _ in range(3):  # the same call three times per request: a cache would serve two
            requests.get(f"{api.url}/v1/places/7", timeout=10)  # the view's call
        return "ok"

    middleware = PerfpilotWSGIMiddleware(app.wsgi_app, recorder, lambda environ: "/listing")
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, middleware, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    started = perf()
    try:
        for _ in range(4):
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/listing") as r:
                assert r.read() == b"ok"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)
    snap = snapshot(recorder)
    data = AppData(
        since=snap.started_at,
        until=snap.started_at + max(1.0, perf() - started),
        requests=snap.requests,
        outbound=snap.outbound,
        traces=snap.traces,
    )
    (finding,) = [f for f in diagnose(data) if f.kind == "repeated_outbound"]
    site = finding.fix.location
    assert site is not None and site == finding.evidence["call_site"]
    assert site.split(" < ")[0] in lines_marked("# the view's call")
