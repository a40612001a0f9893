"""WSGI bodies generated while the server iterates them belong to their request.

A Flask generator view (or Django's ``StreamingHttpResponse``) runs its code
after the view returned, while the server iterates the body: the queries and
outbound calls it makes then must be counted on its route, and the request
ends only when the server closes the body.
"""

from __future__ import annotations

import contextvars
import http.client
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import flask
import httpx
import pytest
from werkzeug.serving import make_server

import perfpilot.instrument
from perfpilot.instrument import outbound, sql
from perfpilot.instrument.context import RequestContext, active, current_request
from perfpilot.instrument.recorder import NO_ROUTE, Interval, Recorder
from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware
from tests.instrument.test_middleware import WSGIServer, environ
from tests.paid_api import PaidAPI

CHUNKS = 5
PRICES = """\
[[api]]
host = "{host}"
path = "/v1"
kind = "openai"
[api.models."gpt-4o-mini"]
input_per_1m = 1.0
output_per_1m = 2.0
"""


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """SQL hooks installed, reporting to a fresh recorder; undone afterwards."""
    installed_before = bool(sql._patches)
    sql.install()
    rec = Recorder("test", slow_s=60.0, sample_rate=0.0, seed=1)
    previous = active.recorder
    active.recorder = rec
    try:
        yield rec
    finally:
        active.recorder = previous
        outbound.state.prices = None
        if not installed_before:
            sql.uninstall()


def query_counts(interval: Interval) -> dict[tuple[str, str], int]:
    """(route, sql) → statements, for the interval."""
    return {(route, text): agg.count for (text, route, _db), agg in interval.queries.items()}


def request_counts(interval: Interval) -> dict[tuple[str, str, int], tuple[int, int]]:
    return {key: (agg.count, agg.db_count) for key, agg in interval.requests.items()}


# -- unit: the middleware alone ------------------------------------------------------


def middleware(app: Any, recorder: Recorder) -> PerfpilotWSGIMiddleware:
    return PerfpilotWSGIMiddleware(app, recorder, lambda env: "/stream/{n}")


def test_each_step_of_a_generator_body_runs_in_the_request(recorder: Recorder) -> None:
    seen: list[RequestContext | None] = []

    def body() -> Iterator[bytes]:
        for i in range(3):
            seen.append(current_request.get())
            yield b"%d" % i

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return body()

    assert WSGIServer().call(middleware(app, recorder)) == b"012"
    assert len(seen) == 3 and seen[0] is not None
    assert seen[0] is seen[1] is seen[2]
    assert seen[0].bytes_out == 3
    assert current_request.get() is None  # nothing left behind in the server's context


def test_close_runs_in_the_request_and_the_request_ends_after_it(recorder: Recorder) -> None:
    class StreamingResponse:  # as Django's: an iterable whose close() does work
        closed_in: ClassVar[list[RequestContext | None]] = []

        def __iter__(self) -> Iterator[bytes]:
            yield b"x"

        def close(self) -> None:
            self.closed_in.append(current_request.get())
            recorder.query("SELECT 1", 0.0, 0.001, 1, False, "sqlite")

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return StreamingResponse()

    WSGIServer().call(middleware(app, recorder))
    assert StreamingResponse.closed_in[0] is not None
    interval = recorder.collect()
    assert request_counts(interval) == {("/stream/{n}", "GET", 2): (1, 1)}
    assert query_counts(interval) == {("/stream/{n}", "SELECT 1"): 1}


def test_context_variables_set_by_the_body_stay_in_the_body(recorder: Recorder) -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("test_var", default=0)

    def body() -> Iterator[bytes]:
        var.set(1)
        yield b"a"
        assert var.get() == 1  # kept between steps, as in a plain generator
        yield b"b"

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return body()

    assert WSGIServer().call(middleware(app, recorder)) == b"ab"
    assert var.get() == 0


def test_a_list_body_is_passed_through_without_a_context_copy(recorder: Recorder) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"plain"]

    result = middleware(app, recorder)(environ(), WSGIServer().start_response)
    assert not hasattr(result, "_run")
    assert b"".join(result) == b"plain"
    result.close()  # type: ignore[attr-defined]
    assert request_counts(recorder.collect()) == {("/stream/{n}", "GET", 2): (1, 0)}


def test_an_error_while_generating_is_reraised_and_recorded(recorder: Recorder) -> None:
    def body() -> Iterator[bytes]:
        yield b"a"
        raise KeyError("boom")

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return body()

    with pytest.raises(KeyError, match="boom"):
        WSGIServer().call(middleware(app, recorder))
    interval = recorder.collect()
    ((key, agg),) = interval.requests.items()
    assert (key[2], agg.errors) == (5, 1)


# -- integration: Flask under a real server ---------------------------------------------


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(10)])
    conn.close()
    return path


def flask_app(app_db: Path, llm_url: str = "") -> flask.Flask:
    app = flask.Flask("streaming")

    @app.get("/items/stream/<int:count>")
    def stream_items(count: int) -> flask.Response:
        def generate() -> Iterator[str]:
            conn = sqlite3.connect(app_db)
            try:
                for i in range(count):
                    (name,) = conn.execute("SELECT name FROM items WHERE id = ?", (i,)).fetchone()
                    yield name + "\n"
            finally:
                conn.close()

        return flask.Response(generate(), mimetype="text/plain")

    @app.get("/chat")
    def chat() -> flask.Response:
        def relay() -> Iterator[bytes]:  # streams the LLM's answer on to the client
            body = {
                "model": "gpt-4o-mini",
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            with httpx.Client() as client, client.stream("POST", llm_url, json=body) as r:
                yield from r.iter_bytes()

        return flask.Response(relay(), mimetype="text/event-stream")

    return app


class Served:
    """A WSGI app under werkzeug's server on 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=False)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@pytest.mark.integration
def test_flask_streaming_view_queries_are_counted_on_its_route(
    recorder: Recorder, app_db: Path
) -> None:
    app = perfpilot.instrument(
        flask_app(app_db), recorder=recorder, hooks=False, flush=False, environ={}
    )
    recorder.collect()  # the set-up's statements
    with Served(app.wsgi_app) as served:
        for _ in range(2):
            status, body = served.get(f"/items/stream/{CHUNKS}")
            assert status == 200
            assert body.decode().splitlines() == [f"item {i}" for i in range(CHUNKS)]
    interval = recorder.collect()
    route = "/items/stream/{count}"
    assert request_counts(interval) == {(route, "GET", 2): (2, 2 * CHUNKS)}
    assert query_counts(interval) == {(route, "SELECT name FROM items WHERE id = ?"): 2 * CHUNKS}
    assert all(r != NO_ROUTE for r, _ in query_counts(interval))


@pytest.mark.integration
def test_flask_view_relaying_a_streamed_llm_answer_is_charged_to_its_route(
    recorder: Recorder, app_db: Path, tmp_path: Path
) -> None:
    with PaidAPI() as api:
        prices = tmp_path / "prices.toml"
        prices.write_text(PRICES.format(host=api.host))
        outbound.install(str(prices))
        app = flask_app(app_db, f"{api.url}/v1/chat/completions")
        app = perfpilot.instrument(app, recorder=recorder, hooks=False, flush=False, environ={})
        with Served(app.wsgi_app) as served:
            status, body = served.get("/chat")
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    interval = recorder.collect()
    ((key, agg),) = interval.requests.items()
    assert key == ("/chat", "GET", 2)
    assert agg.out_count == 1
    assert agg.cost == pytest.approx((1200 * 1.0 + 300 * 2.0) / 1e6)
    ((call_key, call),) = interval.outbound.items()
    assert call_key[4] == "/chat"
    assert (call.prompt_tokens, call.completion_tokens) == (1200, 300)
