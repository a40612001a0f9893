"""ASGI and WSGI middleware with raw apps, and ``instrument()`` on bad input (no servers)."""

from __future__ import annotations

import asyncio
import atexit
import io
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perfpilot import instrument as instrument_package
from perfpilot.instrument import context, instrument
from perfpilot.instrument.asgi import PerfpilotASGIMiddleware
from perfpilot.instrument.context import current_request
from perfpilot.instrument.recorder import UNMATCHED, Interval, Recorder
from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware

LOGGER = "perfpilot"
Message = dict[str, Any]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fresh warn-once keys, no recorder left active, no settings files read."""
    monkeypatch.setattr(context, "_warned", set())
    monkeypatch.setattr(context.active, "recorder", None)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder("svc", sample_rate=0.0)


def requests_of(interval: Interval) -> dict[tuple[str, str, int], tuple[int, int]]:
    return {key: (agg.count, agg.errors) for key, agg in interval.requests.items()}


def perfpilot_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING
    ]


# -- ASGI ------------------------------------------------------------------------


class ASGIServer:
    """Drives one ASGI call the way a server does and keeps what was sent."""

    def __init__(self, body: bytes = b"") -> None:
        self.sent: list[Message] = []
        self._body = body

    async def receive(self) -> Message:
        return {"type": "http.request", "body": self._body, "more_body": False}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def call(self, app: Any, path: str = "/orders/42", method: str = "GET") -> None:
        scope = {"type": "http", "method": method, "path": path, "headers": []}
        asyncio.run(app(scope, self.receive, self.send))

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0].get("headers", []))

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def asgi_app(status: int = 200, body: bytes = b"hello") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    return app


def asgi(app: Any, recorder: Recorder, **kwargs: Any) -> PerfpilotASGIMiddleware:
    return PerfpilotASGIMiddleware(app, recorder, lambda scope: "/orders/{id}", **kwargs)


def test_asgi_records_status_and_route(recorder: Recorder) -> None:
    server = ASGIServer()
    server.call(asgi(asgi_app(201), recorder))
    assert server.status == 201
    assert server.body == b"hello"
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 2): (1, 0)}


def test_asgi_5xx_response_is_an_error(recorder: Recorder) -> None:
    server = ASGIServer()
    server.call(asgi(asgi_app(503), recorder), method="POST")
    assert requests_of(recorder.collect()) == {("/orders/{id}", "POST", 5): (1, 1)}


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_asgi_non_http_scopes_pass_through_untouched(recorder: Recorder, scope_type: str) -> None:
    # (without a shutdown hook: see the lifespan tests below)
    seen: list[tuple[Any, ...]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send, current_request.get()))

    async def receive() -> Message:
        return {"type": f"{scope_type}.startup"}

    async def send(message: Message) -> None:
        pass

    scope = {"type": scope_type, "path": "/ws"}
    asyncio.run(asgi(app, recorder)(scope, receive, send))
    ((got_scope, got_receive, got_send, ctx),) = seen
    assert got_scope is scope
    assert got_receive is receive
    assert got_send is send  # not wrapped
    assert ctx is None
    assert recorder.collect().requests == {}


def run_lifespan(app: Any) -> list[str]:
    """Drive startup then shutdown like a server; returns what the server was sent."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)  # pragma: no cover - a server never sends more
        return {}

    async def send(message: Message) -> None:
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    return sent


def lifespan_app(events: list[str]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                events.append("app shutdown handlers")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def test_asgi_flushes_at_lifespan_shutdown(recorder: Recorder) -> None:
    events: list[str] = []
    middleware = PerfpilotASGIMiddleware(
        lifespan_app(events), recorder, lambda s: None, on_shutdown=lambda: events.append("flush")
    )
    sent = run_lifespan(middleware)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    # after the app's own shutdown handlers (which may still query), before the server exits
    assert events == ["app shutdown handlers", "flush"]


@pytest.mark.parametrize("behaviour", ["raises", "returns"])
def test_asgi_answers_lifespan_for_an_app_that_does_not_speak_it(
    recorder: Recorder, behaviour: str
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if behaviour == "raises":  # as Django's ASGIHandler does
                raise ValueError("Django can only handle ASGI/HTTP connections, not lifespan.")
            return

    flushed: list[bool] = []
    middleware = PerfpilotASGIMiddleware(
        app, recorder, lambda s: None, on_shutdown=lambda: flushed.append(True)
    )
    assert run_lifespan(middleware) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert flushed == [True]


def test_asgi_lifespan_failure_of_the_app_is_reraised(recorder: Recorder) -> None:
    boom = RuntimeError("startup failed")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise boom

    middleware = PerfpilotASGIMiddleware(app, recorder, lambda s: None, on_shutdown=lambda: None)
    with pytest.raises(RuntimeError) as info:
        run_lifespan(middleware)
    assert info.value is boom


def test_asgi_a_failing_shutdown_hook_is_logged_not_raised(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise OSError("store gone")

    middleware = PerfpilotASGIMiddleware(lifespan_app([]), recorder, lambda s: None,
                                         on_shutdown=broken)  # fmt: skip
    with caplog.at_level(logging.WARNING, LOGGER):
        sent = run_lifespan(middleware)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert len(perfpilot_warnings(caplog)) == 1


def test_asgi_app_exception_is_reraised_unchanged_and_recorded(recorder: Recorder) -> None:
    boom = ValueError("app bug")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise boom

    with pytest.raises(ValueError) as info:
        ASGIServer().call(asgi(app, recorder))
    assert info.value is boom
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 5): (1, 1)}


def test_asgi_exception_after_the_response_started_is_an_error(recorder: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-body")

    server = ASGIServer()
    with pytest.raises(RuntimeError):
        server.call(asgi(app, recorder))
    assert server.status == 200
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 5): (1, 1)}


def test_asgi_perfpilot_failure_never_reaches_the_app(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: Any, duration: float) -> None:
        raise RuntimeError("perfpilot bug")

    monkeypatch.setattr(recorder, "finish", broken)
    server = ASGIServer()
    with caplog.at_level(logging.WARNING, LOGGER):
        server.call(asgi(asgi_app(200, b"intact"), recorder))
        server.call(asgi(asgi_app(200, b"intact"), recorder))
    assert server.status == 200
    assert server.body == b"intact" * 2
    assert len(perfpilot_warnings(caplog)) == 1


def test_asgi_route_resolver_failure_never_reaches_the_app(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def resolver(scope: Any) -> str:
        raise KeyError("route")

    server = ASGIServer()
    with caplog.at_level(logging.WARNING, LOGGER):
        server.call(PerfpilotASGIMiddleware(asgi_app(), recorder, resolver))
    assert server.body == b"hello"
    assert len(perfpilot_warnings(caplog)) == 1


def test_asgi_no_timing_headers_unless_asked(recorder: Recorder) -> None:
    server = ASGIServer()
    server.call(asgi(asgi_app(), recorder))
    assert server.headers == {b"content-type": b"text/plain"}


def test_asgi_timing_headers_when_asked(recorder: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        ctx = current_request.get()
        assert ctx is not None  # hooks find the request here
        ctx.db_count, ctx.db_time = 2, 0.004
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    server = ASGIServer()
    server.call(asgi(app, recorder, server_timing=True))
    timing = server.headers[b"server-timing"].decode()
    assert timing.startswith("app;dur=")
    assert "db;dur=4.00" in timing
    assert server.headers[b"x-response-time"].endswith(b"ms")


def test_asgi_streams_bodies_without_buffering(recorder: Recorder) -> None:
    server = ASGIServer()
    chunks = [b"one", b"two", b"three"]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": i < len(chunks) - 1})  # fmt: skip
            # the server already has this chunk: nothing holds it back
            assert server.sent[-1]["body"] == chunk
            await asyncio.sleep(0)

    server.call(asgi(app, recorder))
    assert [m.get("body") for m in server.sent[1:]] == chunks
    assert sum(a.count for a in recorder.collect().requests.values()) == 1


def test_asgi_duration_covers_the_streamed_body(recorder: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"b"})

    ASGIServer().call(asgi(app, recorder))
    (agg,) = recorder.collect().requests.values()
    assert agg.latency.max_s >= 0.05


def test_asgi_context_is_reset_after_the_request(recorder: Recorder) -> None:
    outer: list[Any] = []

    async def main() -> None:
        server = ASGIServer()
        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        await asgi(asgi_app(), recorder)(scope, server.receive, server.send)
        outer.append(current_request.get())

    asyncio.run(main())
    assert outer == [None]


# -- WSGI ------------------------------------------------------------------------


class WSGIServer:
    """Calls a WSGI app the way a server does: iterate, then close."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.exc_info: Any = None

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:  # fmt: skip
        self.status, self.headers, self.exc_info = status, headers, exc_info
        return lambda data: None

    def call(self, app: Any, path: str = "/orders/42", method: str = "GET") -> bytes:
        result = app(environ(path, method), self.start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def environ(path: str = "/orders/42", method: str = "GET") -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
    }


def wsgi_app(status: str = "200 OK", body: Iterable[bytes] = (b"hello",)) -> Any:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return body

    return app


def wsgi(app: Any, recorder: Recorder, **kwargs: Any) -> PerfpilotWSGIMiddleware:
    return PerfpilotWSGIMiddleware(app, recorder, lambda env: "/orders/{id}", **kwargs)


def test_wsgi_records_status_and_route(recorder: Recorder) -> None:
    server = WSGIServer()
    assert server.call(wsgi(wsgi_app("404 Not Found"), recorder)) == b"hello"
    assert server.status == "404 Not Found"
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 4): (1, 0)}


def test_wsgi_5xx_response_is_an_error(recorder: Recorder) -> None:
    WSGIServer().call(wsgi(wsgi_app("500 Internal Server Error"), recorder))
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 5): (1, 1)}


def test_wsgi_without_resolver_is_unmatched(recorder: Recorder) -> None:
    WSGIServer().call(PerfpilotWSGIMiddleware(wsgi_app(), recorder))
    assert requests_of(recorder.collect()) == {(UNMATCHED, "GET", 2): (1, 0)}


def test_wsgi_app_exception_is_reraised_unchanged_and_recorded(recorder: Recorder) -> None:
    boom = ValueError("app bug")

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise boom

    with pytest.raises(ValueError) as info:
        WSGIServer().call(wsgi(app, recorder))
    assert info.value is boom
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 5): (1, 1)}
    assert current_request.get() is None


def test_wsgi_exception_in_the_body_is_reraised_and_recorded(recorder: Recorder) -> None:
    boom = ValueError("body bug")

    def body() -> Iterator[bytes]:
        yield b"part"
        raise boom

    server = WSGIServer()
    with pytest.raises(ValueError) as info:
        server.call(wsgi(wsgi_app(body=body()), recorder))
    assert info.value is boom
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 5): (1, 1)}


def test_wsgi_exc_info_passes_through(recorder: Recorder) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        try:
            raise KeyError("handled")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"sorry"]

    server = WSGIServer()
    assert server.call(wsgi(app, recorder)) == b"sorry"
    assert server.exc_info is not None
    assert server.exc_info[0] is KeyError
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 5): (1, 1)}


def test_wsgi_request_finishes_only_when_the_iterable_is_closed(recorder: Recorder) -> None:
    produced: list[bytes] = []
    closed: list[bool] = []

    def body() -> Iterator[bytes]:
        try:
            for chunk in (b"a", b"b", b"c"):
                produced.append(chunk)
                yield chunk
                time.sleep(0.02)
        finally:
            closed.append(True)

    result = wsgi(wsgi_app(body=body()), recorder)(environ(), WSGIServer().start_response)
    assert produced == []  # nothing read ahead
    iterator = iter(result)
    assert next(iterator) == b"a"
    assert produced == [b"a"]  # streamed: one chunk at a time
    assert list(iterator) == [b"b", b"c"]
    assert recorder.collect().requests == {}  # not closed yet: not finished
    result.close()  # type: ignore[attr-defined]
    assert closed == [True]
    interval = recorder.collect()
    (agg,) = interval.requests.values()
    assert agg.count == 1
    assert agg.latency.max_s >= 0.06  # the body's time counts
    result.close()  # type: ignore[attr-defined]  # a second close records nothing more
    assert recorder.collect().requests == {}


@pytest.mark.parametrize("body", [[b"ab", b"", b"cde"], (b"ab", b"", b"cde")])
def test_wsgi_a_list_or_tuple_body_is_served_as_a_list_closed_once(
    recorder: Recorder, body: Any
) -> None:
    result = wsgi(wsgi_app(body=body), recorder)(environ(), WSGIServer().start_response)
    assert isinstance(result, list)  # the server iterates (and may size) it natively
    assert list(result) == [b"ab", b"", b"cde"]
    assert recorder.collect().requests == {}  # not closed yet: not finished
    result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]  # a second close records nothing more
    (agg,) = recorder.collect().requests.values()
    assert (agg.count, agg.bytes_out) == (1, 5)


def test_wsgi_a_list_body_of_other_things_goes_to_the_server_as_it_is(
    recorder: Recorder,
) -> None:
    result = wsgi(wsgi_app(body=[b"ok", 3]), recorder)(environ(), WSGIServer().start_response)
    assert list(result) == [b"ok", 3]  # the server's to refuse
    result.close()  # type: ignore[attr-defined]
    (agg,) = recorder.collect().requests.values()
    assert agg.count == 1


def test_wsgi_close_of_the_app_iterable_is_called(recorder: Recorder) -> None:
    class Body:
        closed = False

        def __iter__(self) -> Iterator[bytes]:
            yield b"x"

        def close(self) -> None:
            Body.closed = True

    WSGIServer().call(wsgi(wsgi_app(body=Body()), recorder))
    assert Body.closed


def test_wsgi_perfpilot_failure_never_reaches_the_app(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: Any, duration: float) -> None:
        raise RuntimeError("perfpilot bug")

    monkeypatch.setattr(recorder, "finish", broken)
    server = WSGIServer()
    with caplog.at_level(logging.WARNING, LOGGER):
        assert server.call(wsgi(wsgi_app(body=[b"intact"]), recorder)) == b"intact"
        assert server.call(wsgi(wsgi_app(body=[b"intact"]), recorder)) == b"intact"
    assert server.status == "200 OK"
    assert len(perfpilot_warnings(caplog)) == 1


def test_wsgi_timing_headers_only_when_asked(recorder: Recorder) -> None:
    server = WSGIServer()
    server.call(wsgi(wsgi_app(), recorder))
    assert [name for name, _ in server.headers] == ["Content-Type"]
    server.call(wsgi(wsgi_app(), recorder, server_timing=True))
    headers = dict(server.headers)
    assert headers["Server-Timing"].startswith("app;dur=")
    assert headers["X-Response-Time"].endswith("ms")


def test_wsgi_context_set_during_the_app_and_reset_after(recorder: Recorder) -> None:
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        seen.append(current_request.get())
        start_response("200 OK", [])
        return [b""]

    WSGIServer().call(wsgi(app, recorder))
    assert seen[0] is not None
    assert current_request.get() is None


# -- instrument() ----------------------------------------------------------------


def test_instrument_wraps_a_raw_wsgi_callable_with_path_templates(recorder: Recorder) -> None:
    app = instrument(wsgi_app(), recorder=recorder, hooks=False, flush=False, environ={})
    assert isinstance(app, PerfpilotWSGIMiddleware)
    WSGIServer().call(app, "/v1/users/42/orders")
    assert requests_of(recorder.collect()) == {("/v1/users/{id}/orders", "GET", 2): (1, 0)}
    assert context.active.recorder is recorder


def test_instrument_wraps_a_raw_asgi_callable_with_path_templates(recorder: Recorder) -> None:
    app = instrument(asgi_app(), recorder=recorder, hooks=False, flush=False, environ={})
    assert isinstance(app, PerfpilotASGIMiddleware)
    ASGIServer().call(app, "/orders/42")
    assert requests_of(recorder.collect()) == {("/orders/{id}", "GET", 2): (1, 0)}


def test_the_package_is_callable(recorder: Recorder) -> None:
    app = instrument_package(wsgi_app(), recorder=recorder, hooks=False, flush=False, environ={})  # type: ignore[operator]
    assert isinstance(app, PerfpilotWSGIMiddleware)


def test_starlette_templates_keep_the_mount_prefix(recorder: Recorder) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def user(request: Any) -> PlainTextResponse:
        return PlainTextResponse("user")

    star = Starlette(routes=[Route("/orders/{order_id:int}", ok),
                             Mount("/api/{version}", routes=[Route("/users/{user_id:int}", user)])])  # fmt: skip
    app = instrument(star, recorder=recorder, hooks=False, flush=False, environ={})
    server = ASGIServer()
    for path in ("/orders/1", "/api/v2/users/7", "/api/v2/users/8", "/api/v2/nope", "/nope"):
        server.call(app, path)
    assert requests_of(recorder.collect()) == {
        ("/orders/{order_id}", "GET", 2): (1, 0),
        ("/api/{version}/users/{user_id}", "GET", 2): (2, 0),
        (UNMATCHED, "GET", 4): (2, 0),
    }


@pytest.mark.parametrize("thing", [42, object(), "app", None], ids=repr)
def test_instrument_an_unknown_object_returns_it_with_one_warning(
    thing: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        assert instrument(thing, hooks=False, flush=False, environ={}) is thing
        assert instrument(thing, hooks=False, flush=False, environ={}) is thing
    (message,) = perfpilot_warnings(caplog)
    assert "cannot instrument" in message
    assert type(thing).__name__ in message
    assert context.active.recorder is None  # nothing was switched on


def test_bad_settings_fall_back_to_defaults(caplog: pytest.LogCaptureFixture,
                                            recorder: Recorder) -> None:  # fmt: skip
    with caplog.at_level(logging.WARNING, LOGGER):
        app = instrument(wsgi_app(), recorder=recorder, hooks=False, flush=False,
                         environ={"PERFPILOT_FLUSH_INTERVAL_S": "soon"})  # fmt: skip
    assert isinstance(app, PerfpilotWSGIMiddleware)
    (message,) = perfpilot_warnings(caplog)
    assert "bad settings" in message


def test_a_price_table_that_does_not_parse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, recorder: Recorder
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[[api]\nhost = 'api.example'\n")
    with caplog.at_level(logging.WARNING, LOGGER):
        app = instrument(wsgi_app(body=[b"serving"]), recorder=recorder, prices=str(prices),
                         flush=False, environ={})  # fmt: skip
        assert WSGIServer().call(app) == b"serving"
        instrument(wsgi_app(), recorder=recorder, prices=str(prices), flush=False, environ={})
    about_prices = [m for m in perfpilot_warnings(caplog) if "price" in m]
    assert len(about_prices) == 1, perfpilot_warnings(caplog)
    assert "prices.toml" in about_prices[0]
    assert sum(a.count for a in recorder.collect().requests.values()) == 1


@pytest.mark.parametrize(
    "store",
    ["/proc/forbidden/x.db", "postgresql://perfpilot@127.0.0.1:1/perfpilot?connect_timeout=2"],
    ids=["sqlite-forbidden", "postgresql-closed-port"],
)
def test_an_unreachable_store_logs_once_and_the_app_keeps_serving(
    store: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    recorder: Recorder,
) -> None:
    flushers: list[Any] = []
    start = instrument_package.start_flusher

    def capture(*args: Any, **kwargs: Any) -> Any:
        flusher = start(*args, **kwargs)
        flushers.append(flusher)
        return flusher

    monkeypatch.setattr(instrument_package, "start_flusher", capture)
    try:
        with caplog.at_level(logging.WARNING, LOGGER):
            app = instrument(wsgi_app(body=[b"serving"]), recorder=recorder, store=store,
                             flush_interval_s=0.02, hooks=False, environ={})  # fmt: skip
            (flusher,) = flushers
            assert WSGIServer().call(app) == b"serving"
            deadline = time.monotonic() + 10
            while not perfpilot_warnings(caplog) and time.monotonic() < deadline:
                time.sleep(0.01)
            for _ in range(10):  # more flush attempts, more requests
                assert WSGIServer().call(app) == b"serving"
                time.sleep(0.02)
            assert flusher.written == 0
            assert flusher.pending  # held for a retry, not lost
    finally:
        for flusher in flushers:
            flusher.stop(timeout_s=5)
            atexit.unregister(flusher.stop)
    about_store = [m for m in perfpilot_warnings(caplog) if "store" in m]
    assert len(about_store) == 1, perfpilot_warnings(caplog)
    assert "cannot write to the store" in about_store[0]
