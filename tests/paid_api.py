"""A loopback "paid API" for the outbound-call tests: OpenAI-shaped answers with usage.

Endpoints (HTTP/1.1 keep-alive, on ``127.0.0.1``):

    POST /v1/chat/completions  a chat completion; "model" echoed from the request
                               (with ``model_suffix`` appended), usage
                               ``prompt_tokens``/``completion_tokens`` from the
                               server's attributes; ``"stream": true`` answers
                               server-sent events instead
    POST /v1/responses         the Responses API shape (usage input/output_tokens)
    POST /v1/embeddings        a large body (``embedding_size`` floats per input)
    GET  /v1/places/<id>       {"id": ..., "name": "place"} (a per-call priced API);
                               404 for the id "missing"
    GET  /status/<code>        that status, a small JSON body
    GET  /redirect             302 to /v1/places/1

``requests`` counts the requests answered per path.
"""

from __future__ import annotations

import collections
import json
import threading
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
            events = b"".join(
                b"data: " + json.dumps({"model": model, "choices": [{"delta": {"content": w}}]}).encode()
                + b"\n\n"
                for w in ("hello", " world")
            ) + b"data: [DONE]\n\n"  # fmt: skip
            self._send(200, events, "text/event-stream")
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: PaidAPI


class PaidAPI:
    """The server; use as a context manager. ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        *,
        prompt_tokens: int = 1200,
        completion_tokens: int = 300,
        model_suffix: str = "",
        embedding_size: int = 8,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.model_suffix = model_suffix
        self.embedding_size = embedding_size
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
