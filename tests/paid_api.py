"""A loopback "paid API" for the outbound-call tests: OpenAI-shaped answers with usage.

Endpoints (HTTP/1.1 keep-alive, on ``127.0.0.1``):

    POST /v1/chat/completions  a chat completion; "model" echoed from the request
                               (with ``model_suffix`` appended), usage
                               ``prompt_tokens``/``completion_tokens`` from the
                               server's attributes; ``"stream": true`` answers
                               server-sent events instead (see below)
    POST /v1/responses         the Responses API shape (usage input/output_tokens)
    POST /v1/embeddings        a large body (``embedding_size`` floats per input)
    GET  /v1/places/<id>       {"id": ..., "name": "place"} (a per-call priced API);
                               404 for the id "missing"
    GET  /status/<code>        that status, a small JSON body
    GET  /redirect             302 to /v1/places/1

``requests`` counts the requests answered per path.

Streamed chat completions are sent with chunked transfer encoding, one
``data: {...}`` event per chunk: ``stream_chunks`` content deltas, then, when
the request has ``"stream_options": {"include_usage": true}``, a chunk with
``choices: []`` and the usage, then ``data: [DONE]``. With ``stream_gzip`` the
events are gzip-compressed (``Content-Encoding: gzip``, flushed per event).
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        api = self.server.api
        path = self.path.split("?", 1)[0]
        api.count(path)
        if path == "/v1/places/missing":
            self._json(404, {"error": "no such place"})
        elif path.startswith("/v1/places/"):
            self._json(200, {"id": path.rsplit("/", 1)[1], "name": "place"})
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._json(code, {"status": code})
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/v1/places/1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        api = self.server.api
        path = self.path.split("?", 1)[0]
        raw = self._body()
        api.count(path)
        try:
            request = json.loads(raw) if raw else {}
        except ValueError:
            self._json(400, {"error": "not JSON"})
            return
        model = str(request.get("model", "gpt-4o-mini")) + api.model_suffix
        if path == "/v1/chat/completions" and request.get("stream"):
            self._stream(model, request)
        elif path == "/v1/chat/completions":
            self._json(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": 'hi "usage": {}'},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": api.prompt_tokens,
                        "completion_tokens": api.completion_tokens,
                        "total_tokens": api.prompt_tokens + api.completion_tokens,
                        "prompt_tokens_details": {"cached_tokens": 0},
                    },
                },
            )
        elif path == "/v1/responses":
            self._json(
                200,
                {
                    "id": "resp-1",
                    "object": "response",
                    "model": model,
                    "output": [{"type": "message", "content": [{"text": "hi"}]}],
                    "usage": {
                        "input_tokens": api.prompt_tokens,
                        "output_tokens": api.completion_tokens,
                        "total_tokens": api.prompt_tokens + api.completion_tokens,
                    },
                },
            )
        elif path == "/v1/embeddings":
            inputs = request.get("input", [""])
            count = len(inputs) if isinstance(inputs, list) else 1
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i,
                         "embedding": [0.0123456789] * api.embedding_size}
                        for i in range(count)
                    ],
                    "model": model,
                    "usage": {"prompt_tokens": api.prompt_tokens, "total_tokens": api.prompt_tokens},
                },
            )  # fmt: skip
        else:
            self._json(404, {"error": "not found"})

    def _stream(self, model: str, request: dict[str, Any]) -> None:
        api = self.server.api
        options = request.get("stream_options") or {}
        events = [
            {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
             "choices": [{"index": 0, "delta": {"content": f"word{i} "}}], "usage": None}
            for i in range(api.stream_chunks)
        ]  # fmt: skip
        if options.get("include_usage"):
            events.append(
                {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
                 "choices": [], "usage": {"prompt_tokens": api.prompt_tokens,
                                          "completion_tokens": api.completion_tokens,
                                          "total_tokens": api.prompt_tokens + api.completion_tokens}}
            )  # fmt: skip
        lines = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        lines.append(b"data: [DONE]\n\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        compressor = None
        if api.stream_gzip:
            self.send_header("Content-Encoding", "gzip")
            compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
        self.end_headers()
        try:
            for line in lines:
                data = line
                if compressor is not None:
                    data = compressor.compress(line) + compressor.flush(zlib.Z_SYNC_FLUSH)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            if compressor is not None:
                tail = compressor.flush()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client hung up: a stream it stopped reading
            self.close_connection = True
            return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: PaidAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that hung up (a stream it stopped reading)
        super().handle_error(request, client_address)


class PaidAPI:
    """The server; use as a context manager. ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        *,
        prompt_tokens: int = 1200,
        completion_tokens: int = 300,
        model_suffix: str = "",
        embedding_size: int = 8,
        stream_chunks: int = 2,
        stream_gzip: bool = False,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.model_suffix = model_suffix
        self.embedding_size = embedding_size
        self.stream_chunks = stream_chunks
        self.stream_gzip = stream_gzip
        self.requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self.port = int(self._server.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def __enter__(self) -> PaidAPI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
