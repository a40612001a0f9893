"""A small, fast HTTP/1.1 server on 127.0.0.1 for load-engine tests.

It runs its own event loop in a background thread and counts every request it
answers, so tests can compare the client's counts with the server's exactly.

Endpoints:
    /                 200 "ok"
    /delay?ms=N       200 after N ms
    /cycle            200 after 10, 20, ..., 100 ms in turn (a known distribution)
    /status?code=N    status N
    /json             {"status": "ok", "items": [{"id": 1}]}
    /redirect         302 to /; ?to=URL&code=N redirects to URL with status N
    /nested/redirect  the same, one level down (for relative locations)
    /close            200 and Connection: close
    /hang             never answers
    /pause            200, held back while the server is paused (see pause())
    /echo (POST)      the request body
    /login (POST)     JSON {"user": U} -> {"token": "t-U"}
    /me               200 with Authorization "Bearer t-..." else 401
    /headers          the request headers as a JSON list of [name, value] (duplicates kept)

With ``ssl_context`` (a server-side :class:`ssl.SSLContext`) it speaks HTTPS
and ``url`` is ``https://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import ssl
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httptools


class _Request:
    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.raw_headers: list[tuple[str, str]] = []
        self.body = b""
        self.method = ""


class _Protocol(asyncio.Protocol):
    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current = _Request()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.current = _Request()

    def on_url(self, url: bytes) -> None:
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers[name.decode().lower()] = value.decode()
        self.current.raw_headers.append((name.decode(), value.decode()))

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        request = self.current
        request.method = self.parser.get_method().decode()
        task = asyncio.ensure_future(self.server.handle(self, request))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    def respond(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        if (headers or {}).get("Connection") == "close":
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class LoopbackServer:
    """The server; use as a context manager. ``url`` is its base URL.

    Args:
        ssl_context: Serve HTTPS with this server-side TLS context.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.counts: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.paused_until = 0.0
        self._cycle = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=10)
        return self

    async def _start(self) -> None:
        self._server = await self._loop.create_server(
            lambda: _Protocol(self), "127.0.0.1", 0, backlog=1024, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def pause(self, seconds: float) -> None:
        """Hold back /pause responses for ``seconds`` from now."""
        self.paused_until = time.monotonic() + seconds

    def total(self) -> int:
        return sum(self.counts.values())

    async def handle(self, proto: _Protocol, request: _Request) -> None:
        parts = urlsplit(request.url.decode())
        path = parts.path
        query = parse_qs(parts.query)
        status, body, headers = 200, b"ok", {}
        if path == "/delay":
            await asyncio.sleep(int(query.get("ms", ["0"])[0]) / 1000)
        elif path == "/cycle":
            self._cycle = self._cycle % 10 + 1
            await asyncio.sleep(self._cycle / 100)
        elif path == "/status":
            status = int(query.get("code", ["200"])[0])
        elif path == "/json":
            body = b'{"status": "ok", "items": [{"id": 1}]}'
        elif path in ("/redirect", "/nested/redirect"):
            status = int(query.get("code", ["302"])[0])
            headers = {"Location": query.get("to", ["/"])[0]}
        elif path == "/close":
            headers = {"Connection": "close"}
        elif path == "/hang":
            self.counts[path] += 1
            return
        elif path == "/pause":
            wait = self.paused_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        elif path == "/echo":
            body = request.body
        elif path == "/login":
            user = json.loads(request.body or b"{}").get("user", "")
            body = json.dumps({"token": f"t-{user}"}).encode()
        elif path == "/headers":
            body = json.dumps(request.raw_headers).encode()
        elif path == "/me":
            auth = request.headers.get("authorization", "")
            status = 200 if auth.startswith("Bearer t-") else 401
        self.counts[path] += 1
        proto.respond(status, body, headers)
