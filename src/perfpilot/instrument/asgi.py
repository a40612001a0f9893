"""ASGI middleware (Starlette, FastAPI and any ASGI app).

A plain ASGI wrapper: non-HTTP scopes pass through untouched, the status is
captured by wrapping ``send``, bodies are never buffered, and nothing perfpilot
does can raise into the application.

The one exception is the lifespan scope when ``on_shutdown`` is set: ASGI
servers may end the process without running ``atexit`` (uvicorn re-raises
SIGTERM after a graceful shutdown), so the last flush happens at
``lifespan.shutdown``, after the server has drained its connections. For an
app that does not speak lifespan (Django's ASGI handler raises on it), the
middleware answers the lifespan messages itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from perfpilot.app_records import UNCOMPRESSED_MIN_BYTES
from perfpilot.instrument.context import (
    RequestContext,
    compressible_type,
    current_request,
    db_seconds,
    perf,
    warn_once,
)
from perfpilot.instrument.recorder import Recorder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteResolver = Callable[[Scope], "str | None"]


class PerfpilotASGIMiddleware:
    """Times every HTTP request and reports it to the recorder.

    Args:
        app: The ASGI application.
        recorder: Where requests are aggregated.
        resolve_route: Returns the route template from the (post-routing) scope.
        server_timing: Add ``Server-Timing`` and ``X-Response-Time`` headers.
        on_shutdown: Called (blocking) at ``lifespan.shutdown``, e.g. the
            flusher's ``stop``; ``None`` leaves the lifespan scope untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        recorder: Recorder,
        resolve_route: RouteResolver,
        *,
        server_timing: bool = False,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.resolve_route = resolve_route
        self.server_timing = server_timing
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, timing HTTP requests."""
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.on_shutdown is not None:
                await self._lifespan(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        ctx = RequestContext(scope["method"], perf())
        token = current_request.set(ctx)
        server_timing = self.server_timing

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                ctx.bytes_out += len(message.get("body", b""))
            elif kind == "http.response.start":
                ctx.status = message["status"]
                ctx.headers = message.get("headers")
                if server_timing:
                    _add_timing_headers(message, ctx)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            ctx.error = True
            raise
        finally:
            duration = perf() - ctx.started
            try:
                current_request.reset(token)
                if ctx.route is None:
                    ctx.route = self.resolve_route(scope)
                if ctx.bytes_out >= UNCOMPRESSED_MIN_BYTES:
                    ctx.compressible = _compressible(ctx.headers or ())
                self.recorder.finish(ctx, duration)
            except Exception as exc:  # never into the app
                warn_once("asgi-finish", "perfpilot: request not recorded: %r", exc)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = False

        async def receive_wrapper() -> Message:
            nonlocal received
            received = True
            return await receive()

        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self._shutdown()
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if received:
                raise
        if received:
            return
        # the app does not speak lifespan (it returned or raised at once):
        # answer for it, so the shutdown still flushes
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _shutdown(self) -> None:
        try:
            if self.on_shutdown is not None:
                self.on_shutdown()
        except Exception as exc:
            warn_once("asgi-shutdown", "perfpilot: last flush failed: %r", exc)


def _compressible(headers: Any) -> bool:
    """Whether a response with these (lower-case, bytes) headers is sent
    uncompressed although compression would shrink it."""
    compressible = True
    try:
        for name, value in headers:
            if name == b"content-encoding":
                return False
            if name == b"content-type":
                compressible = compressible_type(value)
    except (TypeError, ValueError):  # malformed headers are the server's to refuse
        return False
    return compressible


def _add_timing_headers(message: Message, ctx: RequestContext) -> None:
    try:
        elapsed_ms = (perf() - ctx.started) * 1000
        timing = f"app;dur={elapsed_ms:.2f}"
        if ctx.db_count:
            timing += f", db;dur={db_seconds(ctx) * 1000:.2f}"
        if ctx.out_count:
            timing += f", ext;dur={ctx.out_time * 1000:.2f}"
        headers = list(message.get("headers", []))
        headers.append((b"server-timing", timing.encode()))
        headers.append((b"x-response-time", f"{elapsed_ms:.2f}ms".encode()))
        message["headers"] = headers
    except Exception as exc:
        warn_once("asgi-headers", "perfpilot: timing headers not added: %r", exc)
