"""The stack sampler, in-process: route attribution, stacks, bounds, errors, the flusher.

Threads here serve requests through perfpilot's real middleware (or run an
endpoint function directly, as a thread pool's worker does) and block at a
known place, so each pass of the sampler sees a known stack: no timing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from perfpilot.app_records import NO_APP_FRAME, ProfileRow
from perfpilot.instrument import context
from perfpilot.instrument.asgi import PerfpilotASGIMiddleware
from perfpilot.instrument.context import current_request
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.profiler import Profiler
from perfpilot.instrument.recorder import OTHER, Recorder
from perfpilot.instrument.routes import StarletteRoutes, endpoint_routes
from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware

HERE = os.path.abspath(__file__)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_warned", set())


class Blocked:
    """Threads parked at a known place until the test ends."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, target: Callable[[], Any], ready: threading.Event) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self.threads.append(thread)
        thread.start()
        assert ready.wait(10)

    def close(self) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(10)


@pytest.fixture
def blocked() -> Iterator[Blocked]:
    parked = Blocked()
    yield parked
    parked.close()


def park_in_hot_function(release: threading.Event, ready: threading.Event) -> None:
    ready.set()
    release.wait()  # the innermost frame is threading's, called from here


def serve_wsgi(
    blocked: Blocked, *, route: str | None, resolve: Any = None, path: str = "/orders/7"
) -> None:
    """One WSGI request in a thread, parked in the app's ``park_in_hot_function``."""
    ready = threading.Event()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        ctx = current_request.get()
        if route is not None and ctx is not None:
            ctx.route = route  # as Flask's before_request hook does
        park_in_hot_function(blocked.release, ready)
        start_response("200 OK", [])
        return [b"ok"]

    middleware = PerfpilotWSGIMiddleware(app, Recorder(), resolve)

    def request() -> None:
        body = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda *a: None)
        list(body)
        body.close()  # type: ignore[attr-defined]

    blocked.start(request, ready)


def rows_of(profiler: Profiler) -> list[ProfileRow]:
    rows, _drops = profiler.collect()
    return list(rows)


def test_a_wsgi_request_thread_is_counted_under_its_route(blocked: Blocked) -> None:
    serve_wsgi(blocked, route="/hot")
    profiler = Profiler(endpoints=dict)
    assert profiler.sample() == 1
    assert profiler.sample() == 1  # the same stack, again
    (row,) = rows_of(profiler)
    assert row.route == "/hot"
    inner, caller = row.stack.split(" < ")[:2]
    assert inner.startswith(f"{HERE}:") and inner.endswith(" park_in_hot_function")
    assert caller.endswith(" serve_wsgi.<locals>.app")
    assert row.via.startswith("threading.py:")  # the library frame executing, made short
    assert row.via.endswith(" Condition.wait")
    assert row.samples == 2


def test_a_request_not_routed_yet_uses_the_middleware_resolver(blocked: Blocked) -> None:
    serve_wsgi(blocked, route=None, resolve=lambda environ: "/orders/{id}")
    serve_wsgi(blocked, route=None)  # no resolver (Flask before its hook ran): skipped
    profiler = Profiler(endpoints=dict)
    assert profiler.sample() == 1
    assert [r.route for r in rows_of(profiler)] == ["/orders/{id}"]


def test_threads_outside_requests_are_not_counted(blocked: Blocked) -> None:
    ready = threading.Event()
    blocked.start(lambda: park_in_hot_function(blocked.release, ready), ready)
    profiler = Profiler(endpoints=dict)
    assert profiler.sample() == 0
    assert rows_of(profiler) == []


def sync_endpoint(request: Any) -> None:
    park_in_hot_function(request.release, request.ready)


def test_a_thread_pool_worker_is_counted_by_its_endpoint_function(blocked: Blocked) -> None:
    """No middleware frame on a worker thread's stack: the endpoint's code gives the route."""
    request = type("R", (), {"release": blocked.release, "ready": threading.Event()})()
    blocked.start(lambda: sync_endpoint(request), request.ready)
    profiler = Profiler(endpoints=lambda: {sync_endpoint.__code__: "/sync/{id}"})
    assert profiler.sample() == 1
    (row,) = rows_of(profiler)
    assert row.route == "/sync/{id}"
    assert row.stack.split(" < ")[1].endswith(" sync_endpoint")


def test_an_ambiguous_endpoint_code_is_no_route(blocked: Blocked) -> None:
    request = type("R", (), {"release": blocked.release, "ready": threading.Event()})()
    blocked.start(lambda: sync_endpoint(request), request.ready)
    profiler = Profiler(endpoints=lambda: {sync_endpoint.__code__: None})
    assert profiler.sample() == 0


def test_an_asgi_request_is_counted_while_its_coroutine_runs(blocked: Blocked) -> None:
    """The middleware's coroutine frame is on the stack while the request's code
    runs; Starlette routes at the end, so the route comes from the scope."""
    ready = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["endpoint"] = sync_endpoint  # what Starlette's router sets
        park_in_hot_function(blocked.release, ready)  # blocking: a CPU-bound handler
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    routes = Starlette(routes=[Route("/items/{item_id:int}", sync_endpoint)])
    middleware = PerfpilotASGIMiddleware(app, Recorder(), StarletteRoutes(routes))

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            return None

        await middleware({"type": "http", "method": "GET", "path": "/items/3"}, receive, send)

    import asyncio

    blocked.start(lambda: asyncio.run(call()), ready)
    profiler = Profiler(endpoints=dict)
    assert profiler.sample() == 1
    (row,) = rows_of(profiler)
    assert row.route == "/items/{item_id}"
    assert row.stack.split(" < ")[1].endswith("<locals>.app")


def test_starlette_routes_map_endpoint_code_to_templates() -> None:
    async def listing(request: Request) -> JSONResponse:
        return JSONResponse([])

    def detail(request: Request) -> JSONResponse:
        return JSONResponse({})

    class Things(HTTPEndpoint):
        def get(self, request: Request) -> JSONResponse:
            return JSONResponse({})

    app = Starlette(
        routes=[
            Route("/things", listing),
            Route("/things/{thing_id:int}", detail),
            Route("/also/{thing_id:int}", detail),  # the same function under two paths
            Mount("/api", routes=[Route("/things/{name}", Things)]),
        ]
    )
    resolver = StarletteRoutes(app)
    codes = resolver.endpoint_codes()
    assert codes[listing.__code__] == "/things"
    assert codes[detail.__code__] is None  # ambiguous
    assert codes[Things.get.__code__] == "/api/things/{name}"
    assert endpoint_routes()[listing.__code__] == "/things"  # every live resolver


def test_leaf_in_application_code_has_no_via() -> None:
    profiler = Profiler(endpoints=dict)
    stop = [False]
    route_ready = threading.Event()

    def busy() -> None:
        ctx = current_request.get()
        assert ctx is not None
        ctx.route = "/busy"
        route_ready.set()
        x = 0
        while not stop[0]:  # no call: the loop's own frame is always the innermost
            x += 1

    def app(environ: Any, start_response: Any) -> list[bytes]:
        busy()
        start_response("200 OK", [])
        return [b""]

    middleware = PerfpilotWSGIMiddleware(app, Recorder())
    thread = threading.Thread(
        target=lambda: list(middleware({"REQUEST_METHOD": "GET"}, lambda *a: None)), daemon=True
    )
    thread.start()
    assert route_ready.wait(10)
    counted = 0
    try:
        while counted < 20:
            counted += profiler.sample()
    finally:
        stop[0] = True
        thread.join(10)
    rows = rows_of(profiler)
    assert sum(r.samples for r in rows) == counted
    assert all(r.route == "/busy" for r in rows)
    busy_rows = [r for r in rows if r.stack.split(" < ")[0].endswith(".busy")]
    assert busy_rows
    assert all(r.via == "" for r in busy_rows)


def test_keys_past_the_bound_fold_into_other_and_are_counted(blocked: Blocked) -> None:
    for route in ("/a", "/b", "/c"):
        serve_wsgi(blocked, route=route)
    profiler = Profiler(endpoints=dict, max_keys=2)
    assert profiler.sample() == 3
    rows, drops = profiler.collect()
    assert sum(r.samples for r in rows) == 3
    assert drops == {"profile_keys": 1}
    assert sum(1 for r in rows if r.stack == OTHER) == 1


def test_collect_keeps_the_top_keys_per_route() -> None:
    profiler = Profiler(endpoints=dict, top_per_route=2)
    profiler._counts = {
        ("/r", "a.py:1 f", ""): 5,
        ("/r", "a.py:2 g", ""): 3,
        ("/r", "a.py:3 h", ""): 1,
        ("/r", OTHER, ""): 2,
        ("/s", NO_APP_FRAME, "json/encoder.py:1 x"): 4,
    }
    rows, drops = profiler.collect()
    assert rows == (
        ProfileRow("/r", "a.py:1 f", "", 5),
        ProfileRow("/r", "a.py:2 g", "", 3),
        ProfileRow("/r", OTHER, "", 3),
        ProfileRow("/s", NO_APP_FRAME, "json/encoder.py:1 x", 4),
    )
    assert drops == {"profile_frames": 1}
    assert profiler.collect() == ((), {})  # swapped out


def test_a_failing_pass_is_logged_once_and_the_thread_keeps_sampling(
    blocked: Blocked, caplog: pytest.LogCaptureFixture
) -> None:
    serve_wsgi(blocked, route="/hot")
    calls = []

    def broken() -> dict[Any, Any]:
        calls.append(1)
        raise RuntimeError("no routes today")

    profiler = Profiler(0.001, endpoints=broken)
    profiler.start()
    try:
        deadline = threading.Event()
        while profiler.passes < 5:
            deadline.wait(0.01)
    finally:
        profiler.stop()
    assert profiler._thread is not None and not profiler._thread.is_alive()
    assert calls  # the endpoint source failed...
    assert sum(r.samples for r in rows_of(profiler)) >= 5  # ...and samples were still taken
    assert [r.message for r in caplog.records].count(
        "perfpilot: endpoints not read: RuntimeError('no routes today')"
    ) == 1


def test_the_flusher_runs_the_profiler_and_writes_its_rows(blocked: Blocked) -> None:
    serve_wsgi(blocked, route="/hot")
    written: list[Any] = []
    profiler = Profiler(0.001, endpoints=dict)
    flusher = Flusher(
        Recorder(), written.append, lambda sql, db: (sql, sql), interval_s=60, profiler=profiler
    )
    flusher.start()
    try:
        assert profiler._thread is not None and profiler._thread.is_alive()
        while profiler.passes < 3:
            threading.Event().wait(0.01)
    finally:
        flusher.stop()
    assert profiler._thread is not None and not profiler._thread.is_alive()
    (snapshot,) = written  # the sampler stops first: its last samples are in the last flush
    assert {r.route for r in snapshot.profiles} == {"/hot"}
    assert sum(r.samples for r in snapshot.profiles) >= 3


def test_after_fork_the_profiler_forgets_and_restarts(blocked: Blocked) -> None:
    serve_wsgi(blocked, route="/hot")
    profiler = Profiler(60.0, endpoints=dict)
    profiler.sample()
    flusher = Flusher(Recorder(), [].append, lambda sql, db: (sql, sql), profiler=profiler)
    flusher._after_fork()  # what os.register_at_fork calls in a child
    try:
        assert profiler.collect() == ((), {})
        assert profiler._thread is not None and profiler._thread.is_alive()
    finally:
        flusher.stop()
