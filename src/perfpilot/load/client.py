"""A lean HTTP/1.1 keep-alive client on raw asyncio transports.

Why not httpx or aiohttp: a load generator spends its whole life on the path
"write request bytes, parse response, record the time", and those libraries
spend an order of magnitude more per request than that path needs. Here a
request is a pre-encoded ``bytes`` object, responses are parsed by httptools
(llhttp) in callbacks, and the connection tells its owner when a response is
complete. No coroutine, future or allocation sits on the fast path.

The owner of a connection (a virtual user) implements :class:`ResponseHandler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Iterable
from typing import NamedTuple, Protocol, cast
from urllib.parse import urlsplit

import httptools

from perfpilot import __version__
from perfpilot.errors import ConfigError

USER_AGENT = f"perfpilot/{__version__}"

perf = time.perf_counter


class Origin(NamedTuple):
    """Where requests go: scheme, host and port."""

    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (port omitted when it is the default)."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def split_url(url: str) -> tuple[Origin, str]:
    """Split an absolute URL into its origin and request target.

    Raises:
        ConfigError: the URL is not ``http(s)://host[:port][/path][?query]``.
    """
    expected = "expected http://host[:port]/path or https://..."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid URL {url!r}: {exc}; {expected}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"invalid URL {url!r}: scheme must be http or https; {expected}")
    if not parts.hostname:
        raise ConfigError(f"invalid URL {url!r}: no host; {expected}")
    if any(c.isspace() for c in url):
        raise ConfigError(f"invalid URL {url!r}: contains white space; {expected}")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Origin(parts.scheme, parts.hostname, port), target


def encode_request(
    method: str,
    origin: Origin,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """Encode one HTTP/1.1 request, ready to write on a keep-alive connection.

    ``Host``, ``User-Agent`` and ``Content-Length`` are added unless given.
    """
    lines = [f"{method} {target} HTTP/1.1"]
    seen = set()
    for name, value in headers:
        seen.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in seen:
        lines.insert(1, f"Host: {origin.host_header}")
    if "user-agent" not in seen:
        lines.append(f"User-Agent: {USER_AGENT}")
    if body is not None and "content-length" not in seen:
        lines.append(f"Content-Length: {len(body)}")
    elif body is None and method in ("POST", "PUT", "PATCH") and "content-length" not in seen:
        lines.append("Content-Length: 0")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class ResponseHandler(Protocol):
    """What a connection tells its owner."""

    def on_response(
        self, conn: HTTPConnection, status: int, headers: dict[str, str] | None, body: bytes | None
    ) -> None:
        """A complete response arrived on ``conn``."""
        ...

    def on_error(self, conn: HTTPConnection, kind: str) -> None:
        """The request in flight on ``conn`` failed (``reset``, ``timeout``, ``protocol``...)."""
        ...


class HTTPConnection(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time.

    Args:
        handler: Told when a response completes or the request fails.
        want_headers: Collect response headers (for flows, redirects, HEAD requests).
        want_body: Collect the response body (for checks, flows).
    """

    def __init__(self, handler: ResponseHandler, want_headers: bool, want_body: bool) -> None:
        self.handler = handler
        self.want_headers = want_headers
        self.want_body = want_body
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.busy = False
        self.closed = False
        self.head_only = False
        self._headers: dict[str, str] | None = None
        self._body: list[bytes] | None = None
        self._parser = self._new_parser()

    def _new_parser(self) -> httptools.HttpResponseParser:
        return httptools.HttpResponseParser(_CALLBACKS[self.want_headers, self.want_body](self))

    # asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not TCP
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            # Bytes nobody asked for: the server is confused; drop the connection.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("protocol")
        except httptools.HttpParserError:
            self._fail("protocol")

    def eof_received(self) -> bool | None:
        return None  # let connection_lost report it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.busy:
            self._fail(error_kind(exc) if exc is not None else "reset")

    # requests --------------------------------------------------------------
    def send(self, data: bytes, head_only: bool = False) -> None:
        """Write one request; the handler hears of its outcome."""
        transport = self.transport
        if transport is None or self.closed:
            self.busy = True
            self._fail("reset")
            return
        self.busy = True
        self.head_only = head_only
        if self.want_headers:
            self._headers = {}
        if self.want_body:
            self._body = []
        self.sent_at = perf()
        transport.write(data)

    def abort(self, kind: str) -> None:
        """Fail the request in flight (e.g. on timeout) and drop the connection."""
        if self.busy:
            self._fail(kind)
        else:
            self.close()

    def close(self) -> None:
        """Drop the connection without notifying anyone."""
        self.busy = False
        self.closed = True
        transport = self.transport
        if transport is not None:
            self.transport = None
            transport.abort()

    def _fail(self, kind: str) -> None:
        self.busy = False
        self.close()
        self.handler.on_error(self, kind)

    def _complete(self) -> None:
        self.busy = False
        parser = self._parser
        status = parser.get_status_code()
        keep = parser.should_keep_alive()
        body = b"".join(self._body) if self._body is not None else None
        headers = self._headers
        self._headers = None
        self._body = None
        if self.head_only:
            self._parser = self._new_parser()
        if not keep:
            self.close()
        self.handler.on_response(self, status, headers, body)


class _Callbacks:
    """httptools callbacks for the fast path: only "message complete".

    httptools looks up which callbacks exist when a parser is made, so the
    variants below add header and body callbacks only where they are needed.
    """

    __slots__ = ("conn",)

    def __init__(self, conn: HTTPConnection) -> None:
        self.conn = conn

    def on_message_complete(self) -> None:
        conn = self.conn
        if not conn.head_only and conn.busy:
            conn._complete()


class _BodyCallbacks(_Callbacks):
    __slots__ = ()

    def on_body(self, body: bytes) -> None:
        chunks = self.conn._body
        if chunks is not None:
            chunks.append(body)


class _HeaderCallbacks(_Callbacks):
    __slots__ = ()

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.conn._headers
        if headers is not None:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        conn = self.conn
        if conn.head_only and conn.busy:
            conn._complete()


class _FullCallbacks(_HeaderCallbacks, _BodyCallbacks):
    __slots__ = ()


_CALLBACKS: dict[tuple[bool, bool], type[_Callbacks]] = {
    (False, False): _Callbacks,
    (False, True): _BodyCallbacks,
    (True, False): _HeaderCallbacks,
    (True, True): _FullCallbacks,
}


def error_kind(exc: BaseException) -> str:
    """Classify a transport or connect exception into an error kind."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ECONNREFUSED,):
            return "refused"
        if exc.errno in (errno.ECONNRESET, errno.EPIPE):
            return "reset"
        if exc.errno in (errno.ETIMEDOUT,):
            return "timeout"
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        return "connect"
    return "connect"


def make_ssl_context(insecure: bool) -> ssl.SSLContext:
    """A client TLS context; ``insecure`` turns off certificate checks."""
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


async def open_connection(
    origin: Origin,
    handler: ResponseHandler,
    *,
    want_headers: bool,
    want_body: bool,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None,
) -> HTTPConnection:
    """Connect to ``origin``.

    Raises:
        OSError, TimeoutError, ssl.SSLError: as the connect fails; classify
        them with :func:`error_kind`.
    """
    loop = asyncio.get_running_loop()
    tls = ssl_context if origin.scheme == "https" else None
    _, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: HTTPConnection(handler, want_headers, want_body),
            origin.host,
            origin.port,
            ssl=tls,
            server_hostname=origin.host if tls is not None else None,
        ),
        timeout_s,
    )
    return protocol


def probe(origin: Origin, timeout_s: float) -> str | None:
    """Try one TCP connect to ``origin``; return an error kind or ``None`` when it works."""
    try:
        with socket.create_connection((origin.host, origin.port), timeout=timeout_s):
            return None
    except OSError as exc:
        return error_kind(exc)
