"""Response body sizes and uncompressed responses, through the ASGI and WSGI middleware,
the flusher and the store."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perfpilot.app_records import UNCOMPRESSED_MIN_BYTES
from perfpilot.instrument.asgi import PerfpilotASGIMiddleware
from perfpilot.instrument.context import compressible_type
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware
from perfpilot.store import open_store

BIG = b"x" * 5000
SMALL = b"x" * (UNCOMPRESSED_MIN_BYTES - 1)


def asgi_call(recorder: Recorder, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    wrapped = PerfpilotASGIMiddleware(app, recorder, lambda scope: "/x")
    asyncio.run(wrapped({"type": "http", "method": "GET", "path": "/x"}, receive, send))


def wsgi_call(recorder: Recorder, body: Iterable[bytes], headers: list[tuple[str, str]]) -> bytes:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", headers)
        return body

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    result = PerfpilotWSGIMiddleware(app, recorder, lambda env: "/x")(environ, lambda *a: None)
    try:
        return b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]


def sizes(recorder: Recorder) -> tuple[int, int, int]:
    (agg,) = recorder.collect().requests.values()
    return agg.count, agg.bytes_out, agg.uncompressed


def test_asgi_counts_body_bytes_and_uncompressed_json() -> None:
    recorder = Recorder(sample_rate=0.0)
    asgi_call(recorder, [BIG[:3000], BIG[3000:]], [(b"content-type", b"application/json")])
    asgi_call(recorder, [SMALL], [(b"content-type", b"application/json")])
    assert sizes(recorder) == (2, len(BIG) + len(SMALL), 1)


def test_asgi_compressed_or_binary_responses_are_not_uncompressed() -> None:
    recorder = Recorder(sample_rate=0.0)
    asgi_call(recorder, [BIG], [(b"content-type", b"text/html"), (b"content-encoding", b"gzip")])
    asgi_call(recorder, [BIG], [(b"content-type", b"image/png")])
    assert sizes(recorder) == (2, 2 * len(BIG), 0)


def test_asgi_malformed_headers_never_reach_the_app() -> None:
    recorder = Recorder(sample_rate=0.0)
    asgi_call(recorder, [BIG], [(b"content-type", "text/plain")])  # type: ignore[list-item]
    assert sizes(recorder) == (1, len(BIG), 0)


def test_wsgi_counts_iterated_chunks() -> None:
    recorder = Recorder(sample_rate=0.0)

    def chunks() -> Iterator[bytes]:
        yield BIG[:10]
        yield BIG[10:]

    assert wsgi_call(recorder, chunks(), [("Content-Type", "text/plain")]) == BIG
    assert sizes(recorder) == (1, len(BIG), 1)


def test_wsgi_uses_content_length_when_the_server_does_not_iterate() -> None:
    recorder = Recorder(sample_rate=0.0)

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "5000")])
        return [BIG]

    result = PerfpilotWSGIMiddleware(app, recorder, lambda env: "/x")(
        {"REQUEST_METHOD": "GET"}, lambda *a: None
    )
    result.close()  # type: ignore[attr-defined]  # e.g. sent with sendfile, never iterated
    assert sizes(recorder) == (1, 5000, 1)


def test_wsgi_content_encoding_means_compressed() -> None:
    recorder = Recorder(sample_rate=0.0)
    wsgi_call(recorder, [BIG], [("Content-Type", "text/plain"), ("Content-Encoding", "br")])
    assert sizes(recorder) == (1, len(BIG), 0)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (b"application/json", True),
        (b"Text/HTML; charset=utf-8", True),
        (b"application/problem+json", True),
        (b"application/vnd.api+json; charset=utf-8", True),
        (b"image/png", False),
        (b"application/octet-stream", False),
    ],
)
def test_compressible_types(content_type: bytes, expected: bool) -> None:
    assert compressible_type(content_type) is expected


def test_sizes_survive_the_flusher_and_the_store(tmp_path: Path) -> None:
    recorder = Recorder(sample_rate=0.0)
    asgi_call(recorder, [BIG], [(b"content-type", b"application/json")])
    location = str(tmp_path / "pp.db")
    with open_store(location) as store:
        flusher = Flusher(recorder, store.save_app_snapshot, lambda sql, db: (sql, sql))
        flusher.flush()
        asgi_call(recorder, [BIG], [(b"content-type", b"application/json")])
        flusher.flush()
        (row,) = store.app_requests()
    assert (row.count, row.bytes_out, row.uncompressed) == (2, 2 * len(BIG), 2)
