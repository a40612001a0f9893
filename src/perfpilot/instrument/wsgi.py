"""WSGI middleware (Flask, Django and any WSGI app).

The request is timed until the server closes the response iterable, so
streamed bodies count. The body size is the sum of the chunk lengths as the
server iterates (the body is never buffered), or ``Content-Length`` when the
server sent the body without iterating (``wsgi.file_wrapper``). A list or
tuple body is handed to the server as a list (a subclass with ``close()``),
so the server iterates it natively and may size it as it does a list; its
size is the sum of its chunk lengths. Nothing perfpilot does can raise into
the application.

While the server iterates a body other than a list or tuple (a generator view
in Flask, Django's ``StreamingHttpResponse``, werkzeug's ``ClosingIterator``),
each step, and the iterable's ``close()``, runs in a copy of the request's
context (``Context.run``), taken when the app returned: queries and outbound
calls made while the body is generated belong to the request, and context
variables the body sets stay in the body. A list or tuple runs no application
code as it is iterated and is passed through as before, with no copy.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from perfpilot.app_records import UNCOMPRESSED_MIN_BYTES
from perfpilot.instrument.context import (
    RequestContext,
    compressible_type,
    current_request,
    perf,
    warn_once,
)
from perfpilot.instrument.recorder import Recorder

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
RouteResolver = Callable[[Environ], "str | None"]
# bodies whose iteration runs no application code
_PLAIN_BODIES = (list, tuple)
# status lines seen, to their code (a dict lookup costs less than parsing)
_status_codes: dict[str, int] = {}
_MAX_STATUS_LINES = 256
_END: Any = object()  # next()'s default: the end of a body, without raising StopIteration


class PerfpilotWSGIMiddleware:
    """Times every request and reports it to the recorder.

    Args:
        app: The WSGI application.
        recorder: Where requests are aggregated.
        resolve_route: Returns the route template after the app ran (the
            framework integrations usually set it on the context instead).
        server_timing: Add ``Server-Timing`` and ``X-Response-Time`` headers.
    """

    def __init__(
        self,
        app: WSGIApp,
        recorder: Recorder,
        resolve_route: RouteResolver | None = None,
        *,
        server_timing: bool = False,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.resolve_route = resolve_route
        self.server_timing = server_timing

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Run the app, timing the request."""
        ctx = RequestContext(environ.get("REQUEST_METHOD", "GET"), perf())
        token = current_request.set(ctx)
        server_timing = self.server_timing

        def start_wrapper(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                code = _status_codes.get(status)
                if code is None:
                    code = int(status[:3])
                    if len(_status_codes) < _MAX_STATUS_LINES:
                        _status_codes[status] = code
                ctx.status = code
                ctx.headers = headers
                if server_timing:
                    elapsed_ms = (perf() - ctx.started) * 1000
                    headers.append(("Server-Timing", f"app;dur={elapsed_ms:.2f}"))
                    headers.append(("X-Response-Time", f"{elapsed_ms:.2f}ms"))
            except Exception as exc:
                warn_once("wsgi-status", "perfpilot: bad status line %r: %r", status, exc)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, start_wrapper)
        except BaseException:
            ctx.error = True
            self._finish(ctx, environ)
            _reset(token)
            raise
        if type(result) in _PLAIN_BODIES:
            try:  # noqa: SIM105 (_reset(), inlined)
                current_request.reset(token)
            except (ValueError, RuntimeError):
                pass
            try:
                sent = sum(map(len, result))
            except Exception:  # not chunks of bytes: the server's to refuse
                return _ClosingIterable(result, self, ctx, environ)
            ctx.bytes_out = sent
            body = _ClosingList(result)
            body._ctx = ctx
            body._environ = environ
            body._middleware = self
            return body
        # copied while the request is current: the body's steps run in the copy
        run = contextvars.copy_context().run
        _reset(token)
        return _ContextIterable(result, self, ctx, environ, run)

    def _finish(self, ctx: RequestContext, environ: Environ) -> None:
        duration = perf() - ctx.started
        try:
            if ctx.route is None and self.resolve_route is not None:
                ctx.route = self.resolve_route(environ)
            if ctx.headers is not None:
                _read_headers(ctx, ctx.headers)
            self.recorder.finish(ctx, duration)
        except Exception as exc:
            warn_once("wsgi-finish", "perfpilot: request not recorded: %r", exc)


def _read_headers(ctx: RequestContext, headers: list[tuple[str, str]]) -> None:
    """At the end of a request: the body size from ``Content-Length`` when no
    chunk was counted (a server that sent it without iterating), and for a body
    of at least 1 KiB whether it went out uncompressed though it would compress."""
    try:
        if not ctx.bytes_out:
            for name, value in headers:
                if name.lower() == "content-length" and value.isdigit():
                    ctx.bytes_out = int(value)
        if ctx.bytes_out < UNCOMPRESSED_MIN_BYTES:
            return
        compressible = True
        for name, value in headers:
            lower = name.lower()
            if lower == "content-encoding":
                compressible = False
                break
            if lower == "content-type":
                compressible = compressible_type(value.encode("latin-1"))
        ctx.compressible = compressible
    except (AttributeError, TypeError, ValueError):  # malformed: the server's to refuse
        ctx.compressible = False


def _reset(token: Any) -> None:
    # try/except, not contextlib.suppress: this runs on every request and
    # suppress() costs about a microsecond
    try:  # noqa: SIM105
        current_request.reset(token)
    except (ValueError, RuntimeError):  # a server that switched contexts under us
        pass


class _ClosingList(list):  # type: ignore[type-arg]
    """A list or tuple body, as a list that finishes the request when the
    server closes it (iterated natively: no generator, no Python call per chunk)."""

    __slots__ = ("_ctx", "_environ", "_middleware")

    _ctx: RequestContext | None
    _environ: Environ
    _middleware: PerfpilotWSGIMiddleware

    def close(self) -> None:
        ctx = self._ctx
        if ctx is not None:
            self._ctx = None
            self._middleware._finish(ctx, self._environ)


class _ClosingIterable:
    """Passes the body through and finishes the request when the server closes it."""

    __slots__ = ("_ctx", "_done", "_environ", "_iterable", "_middleware")

    def __init__(
        self,
        iterable: Iterable[bytes],
        middleware: PerfpilotWSGIMiddleware,
        ctx: RequestContext,
        environ: Environ,
    ) -> None:
        self._iterable = iterable
        self._middleware = middleware
        self._ctx = ctx
        self._environ = environ
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in self._iterable:
                try:  # noqa: SIM105 (per chunk: suppress() costs a call)
                    sent += len(chunk)
                except TypeError:  # not bytes: the server's to refuse, not perfpilot's
                    pass
                yield chunk
        except BaseException:
            self._ctx.error = True
            raise
        finally:
            if sent:
                self._ctx.bytes_out = sent

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            if not self._done:
                self._done = True
                self._middleware._finish(self._ctx, self._environ)


class _ContextIterable(_ClosingIterable):
    """A body that may run application code as it is iterated (a generator).

    ``run`` is ``Context.run`` of a copy of the request's context: each step
    of the body, and its ``close()``, run in it, where the request is current.
    """

    __slots__ = ("_run",)

    def __init__(
        self,
        iterable: Iterable[bytes],
        middleware: PerfpilotWSGIMiddleware,
        ctx: RequestContext,
        environ: Environ,
        run: Callable[..., Any],
    ) -> None:
        super().__init__(iterable, middleware, ctx, environ)
        self._run = run

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        run = self._run
        try:
            iterator = run(iter, self._iterable)
            while (chunk := run(next, iterator, _END)) is not _END:
                try:  # noqa: SIM105 (per chunk: suppress() costs a call)
                    sent += len(chunk)
                except TypeError:  # not bytes: the server's to refuse, not perfpilot's
                    pass
                yield chunk
        except BaseException:
            self._ctx.error = True
            raise
        finally:
            if sent:
                self._ctx.bytes_out = sent

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                self._run(close)
        finally:
            if not self._done:
                self._done = True
                self._middleware._finish(self._ctx, self._environ)
