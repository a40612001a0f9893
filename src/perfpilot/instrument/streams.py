"""Streamed outbound responses, recorded when their body ends.

A call the app makes with a streamed response (httpx ``client.stream(...)`` or
``send(..., stream=True)``, requests ``stream=True``, aiohttp answers of type
``text/event-stream``) is not recorded when the headers arrive: the hooks in
:mod:`~perfpilot.instrument.outbound` hand it to a :class:`StreamWatch`, which
sees each chunk as the client library delivers it and records the call once,
when the first of these happens:

* the body ends (read to the end, or aiohttp's end of data);
* the response is closed or released (an app that stops reading early);
* the response is garbage collected (an app that neither reads nor closes it;
  aiohttp's open connection keeps such a response alive until it closes).

The duration runs until then and ``bytes_in`` counts the body bytes received
(as the client hands them over: httpx's raw, possibly compressed bytes; aiohttp
and requests decoded ones, requests' wire count when it knows it). For calls
matching a usage-priced (``openai``) rule, token usage is read from the body
by :class:`~perfpilot.instrument.sse.UsageReader` in bounded memory, then
priced. A usage-priced stream that ends without usage (no
``stream_options: {"include_usage": true}``, the app stopped early, a body too
large to read) is priced by its rule's ``per_call``/``per_1k_bytes`` only, its
tokens are not guessed, and it is counted in ``drops`` as ``unpriced_streams``
(with a warning logged once per host).

**Which request.** The call belongs to the request that made it. If the body
ends while that request is still the current one (the usual case: read in the
view, or in a streamed response body, whose iteration the WSGI and ASGI
middleware run in the request's context), it is part of the request. Ending
elsewhere (after the request finished, at garbage collection, in another
thread), it is recorded under the request's route, outside the request; a call
made outside any request stays under ``<none>``.

Nothing here raises into the app; the chunks are passed on unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from perfpilot.instrument.context import RequestContext, current_request, perf, warn_once
from perfpilot.instrument.cost import Rule
from perfpilot.instrument.recorder import NO_ROUTE, UNMATCHED, Recorder
from perfpilot.instrument.sse import UsageReader, body_kind
from perfpilot.instrument.templates import path_template

UNPRICED = "unpriced_streams"


class StreamWatch:
    """One streamed call in flight: counts its body and records it once, at its end.

    Args:
        recorder: Where the call is recorded.
        method: HTTP method.
        host: ``host[:port]``.
        path: URL path; the call is recorded under its template, and the
            template's call site is found here, while the app's frames are on
            the stack (:meth:`Recorder.outbound_site`).
        status: HTTP status.
        start: ``perf_counter()`` when the call started.
        bytes_out: Request body bytes.
        identity: The call's identity (see ``Recorder.outbound``), or ``None``.
        rule: The price-table rule of the call, or ``None``.
        content_type: The response's ``Content-Type``.
        encoding: The response's ``Content-Encoding`` when the chunks will be
            the raw, still encoded bytes (httpx); ``None`` when decoded.
    """

    __slots__ = (
        "_ctx",
        "_done",
        "_finalizer",
        "_identity",
        "_reader",
        "_recorder",
        "_rule",
        "bytes_in",
        "bytes_out",
        "host",
        "method",
        "start",
        "status",
        "template",
        "wire_bytes",
    )

    def __init__(
        self,
        recorder: Recorder,
        method: str,
        host: str,
        path: str,
        status: int,
        start: float,
        bytes_out: int,
        identity: Any,
        rule: Rule | None,
        content_type: object,
        encoding: str | None = None,
    ) -> None:
        self._recorder = recorder
        self.method = method
        self.host = host
        self.template = path_template(path)
        recorder.outbound_site(method, host, self.template)
        self.status = status
        self.start = start
        self.bytes_out = bytes_out
        self._identity = identity
        self._rule = rule
        self._ctx: RequestContext | None = current_request.get()
        self._done = False
        self._finalizer: Any = None
        self.bytes_in = 0
        self.wire_bytes: Any = None  # a callable giving the wire count, when known
        self._reader: UsageReader | None = None
        if rule is not None and rule.usage_based:
            kind = body_kind(content_type)
            if kind is not None:
                self._reader = UsageReader(kind, encoding)

    def watch_gc(self, response: Any) -> None:
        """Record the call when ``response`` is garbage collected, if not before."""
        self._finalizer = weakref.finalize(response, self._collected)
        self._finalizer.atexit = False

    def data(self, chunk: bytes) -> None:
        """One chunk of the body, as the client hands it over."""
        if self._done:
            return
        try:
            self.bytes_in += len(chunk)
            reader = self._reader
            if reader is not None:
                reader.feed(chunk)
        except Exception as exc:
            warn_once("outbound-stream-data", "perfpilot: streamed body not read: %r", exc)

    def end(self) -> None:
        """The body ended or was abandoned: record the call (once)."""
        if self._done:
            return
        self._done = True
        finished = perf()
        try:
            finalizer = self._finalizer
            if finalizer is not None:
                self._finalizer = None
                finalizer.detach()
            self._record(finished)
        except Exception as exc:
            warn_once("outbound-stream", "perfpilot: streamed call not recorded: %r", exc)

    def _collected(self) -> None:
        """Garbage collection of a response whose stream had not ended."""
        if self._done:
            return
        lock = getattr(self._recorder, "_lock", None)
        if lock is not None and lock.locked():
            # The collector may have run inside the recorder's own critical
            # section, on this thread: recording here would deadlock. A thread
            # waits for the lock instead.
            try:
                threading.Thread(target=self.end, name="perfpilot-stream", daemon=True).start()
            except RuntimeError:  # the interpreter is shutting down
                self._done = True
            return
        self.end()

    def _record(self, finished: float) -> None:
        recorder = self._recorder
        if self.wire_bytes is not None:
            with contextlib.suppress(Exception):  # a count the library fails to give: ours
                self.bytes_in = max(self.bytes_in, int(self.wire_bytes()))
        rule = self._rule
        cost = 0.0
        usage = None
        if rule is not None:
            reader = self._reader
            usage = reader.usage() if reader is not None else None
            cost = rule.cost(usage, self.bytes_in, self.bytes_out)
            if rule.usage_based and usage is None:
                recorder.drop(UNPRICED)
                warn_once(
                    f"unpriced-stream-{self.host}",
                    "perfpilot: a streamed response from %s ended without token usage; its "
                    "tokens are not priced and it is counted as %s (OpenAI-compatible APIs "
                    "send usage when asked: stream_options={'include_usage': True})",
                    self.host,
                    UNPRICED,
                )
        ctx = self._ctx
        route: str | None = None
        if current_request.get() is not ctx:
            route = NO_ROUTE if ctx is None else (ctx.route or UNMATCHED)
        recorder.outbound(
            self.method, self.host, self.template, self.status, self.start,
            finished - self.start, bytes_in=self.bytes_in, bytes_out=self.bytes_out, cost=cost,
            prompt_tokens=usage.prompt_tokens if usage is not None else 0,
            completion_tokens=usage.completion_tokens if usage is not None else 0,
            model=usage.model if usage is not None else None,
            identity=self._identity, route=route,
        )  # fmt: skip


# --------------------------------------------------------------------------- httpx


@functools.cache
def _httpx_stream_classes() -> tuple[type[Any], type[Any]]:
    """The wrapping byte streams, defined once httpx is imported."""
    import httpx

    class WatchedStream(httpx.SyncByteStream):
        def __init__(self, inner: Any, watch: StreamWatch) -> None:
            self._inner = inner
            self._watch = watch

        def __iter__(self) -> Iterator[bytes]:
            watch = self._watch
            for chunk in self._inner:
                watch.data(chunk)
                yield chunk
            watch.end()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._watch.end()

    class WatchedAsyncStream(httpx.AsyncByteStream):
        def __init__(self, inner: Any, watch: StreamWatch) -> None:
            self._inner = inner
            self._watch = watch

        async def __aiter__(self) -> AsyncIterator[bytes]:
            watch = self._watch
            async for chunk in self._inner:
                watch.data(chunk)
                yield chunk
            watch.end()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._watch.end()

    return WatchedStream, WatchedAsyncStream


def watch_httpx(response: Any, watch: StreamWatch) -> None:
    """Wrap an httpx response's byte stream so ``watch`` sees its body and end."""
    sync_class, async_class = _httpx_stream_classes()
    import httpx

    stream = response.stream
    if isinstance(stream, httpx.SyncByteStream):
        response.stream = sync_class(stream, watch)
    elif isinstance(stream, httpx.AsyncByteStream):
        response.stream = async_class(stream, watch)
    else:  # not a stream we know: recorded now, without its body
        watch.end()
        return
    watch.watch_gc(response)


# ------------------------------------------------------------------------ requests


def watch_requests(response: Any, watch: StreamWatch) -> None:
    """Watch a requests response through its urllib3 ``raw`` response.

    ``iter_content``/``iter_lines``/``content`` read through ``raw.stream()``;
    ``close()`` calls ``raw.close()`` when the body was not consumed. Both are
    wrapped on this one ``raw`` object (not ``release_conn()``: urllib3 calls
    it as the last bytes arrive, before the app sees them).
    """
    raw = response.raw
    stream = getattr(raw, "stream", None)
    if stream is None:  # an adapter answering with something else: recorded now
        watch.end()
        return
    tell = getattr(raw, "tell", None)
    if callable(tell):
        watch.wire_bytes = tell

    def watched_stream(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        for chunk in stream(*args, **kwargs):
            watch.data(chunk)
            yield chunk
        watch.end()

    raw.stream = watched_stream
    close = getattr(raw, "close", None)
    if close is not None:
        raw.close = _then_end(close, watch)
    watch.watch_gc(response)


def _then_end(original: Any, watch: StreamWatch) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            watch.end()

    return call


# ------------------------------------------------------------------------- aiohttp

# id(StreamReader) -> its watch, while the stream is watched
_aiohttp_watches: dict[int, StreamWatch] = {}


@functools.cache
def _aiohttp_reader_class() -> type[Any]:
    """A ``StreamReader`` subclass with the same layout, which reports to its watch."""
    from aiohttp import StreamReader

    class WatchedReader(StreamReader):
        __slots__ = ()

        def feed_data(self, data: bytes, size: int = 0) -> bool:
            watch = _aiohttp_watches.get(id(self))
            if watch is not None:
                watch.data(data)
            return bool(super().feed_data(data, size))

        def feed_eof(self) -> None:
            super().feed_eof()
            _end_aiohttp(id(self))

        def set_exception(self, *args: Any, **kwargs: Any) -> None:
            super().set_exception(*args, **kwargs)
            _end_aiohttp(id(self))

    return WatchedReader


def _end_aiohttp(key: int) -> None:
    watch = _aiohttp_watches.pop(key, None)
    if watch is not None:
        watch.end()


def watch_aiohttp(response: Any, watch: StreamWatch) -> None:
    """Watch an aiohttp response's body as the connection feeds it.

    The hook returns to the app before the body is read; chunks that came with
    the headers are already buffered and are counted first. The reader's class
    is switched to a layout-identical subclass (``StreamReader`` has
    ``__slots__``) that reports data, the end of data, and errors, including
    the one a ``release()`` or ``close()`` before the end sets.
    """
    from aiohttp import StreamReader

    content = response.content
    if type(content) is not StreamReader:  # an empty body (HEAD, 204) or unknown
        watch.end()
        return
    for chunk in tuple(getattr(content, "_buffer", ())):
        watch.data(chunk)
    if content.is_eof() or content.exception() is not None:
        watch.end()
        return
    key = id(content)
    _aiohttp_watches[key] = watch
    content.__class__ = _aiohttp_reader_class()
    watch._finalizer = weakref.finalize(response, _collected_aiohttp, key, watch)
    watch._finalizer.atexit = False


def _collected_aiohttp(key: int, watch: StreamWatch) -> None:
    if _aiohttp_watches.get(key) is watch:
        del _aiohttp_watches[key]
    watch._collected()
