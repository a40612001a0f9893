"""Outbound HTTP hooks: httpx (sync and async), requests and aiohttp, with cost.

:func:`install` patches ``httpx.Client.send``, ``httpx.AsyncClient.send``,
``requests.Session.send`` and ``aiohttp.ClientSession._request``. Each call is
reported to the active recorder with its method, ``host[:port]``, path template
(:func:`~perfpilot.instrument.templates.path_template`), status (0 when no
response came: the exception then reaches the caller unchanged), duration,
body bytes each way, and its cost from the price table
(:mod:`perfpilot.instrument.cost`) with token usage for OpenAI-compatible APIs.

What is never done or kept:

* Secrets: only the host and the path template leave the hook. Full URLs
  (query strings, credentials) and bodies are only hashed, in memory, into the
  call's ``identity``, and only inside a request: the recorder counts calls
  identical to an earlier one of the same request as ``repeated``, and as
  ``retries`` when that earlier one failed. Streamed request bodies are not
  hashed (no identity).
* Bodies are parsed only for calls matching a usage-priced (``openai``) rule,
  and only when JSON or server-sent events.
* Streamed responses (httpx ``client.stream(...)`` or ``stream=True``, requests
  ``stream=True``, aiohttp ``text/event-stream`` answers) are never read by the
  hook: :mod:`~perfpilot.instrument.streams` watches the chunks as the app
  reads them and records the call when the body ends, is closed, or is
  garbage collected, with usage from the final server-sent event
  (``stream_options: {"include_usage": true}``) in bounded memory.
* Other aiohttp answers: aiohttp returns before the body is read, so
  ``bytes_in`` is its ``Content-Length`` and the duration ends at the response
  headers; for calls matching a usage-priced rule with a JSON answer the hook
  reads the body itself (``await resp.read()``, which aiohttp keeps for the
  app) and the duration includes it.

Only calls answered below 400 cost anything.

Redirects count as one call, the one the app made: httpx and aiohttp follow
them inside one send; requests calls ``send`` again per hop, and those nested
sends are not counted separately.

**Call sites.** Each call's endpoint (method, host, template) gets the
application frames that made it (:meth:`Recorder.outbound_site`, found at the
call while those frames are on the stack, once per endpoint and process).

The hooks cost nothing but an attribute read when the app is not instrumented
(``active.recorder is None``), and never raise into the app.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.util
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from perfpilot.instrument.context import active, current_request, perf, warn_once
from perfpilot.instrument.cost import PriceTable, Rule, Usage, default_prices, extract_usage
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.sse import body_kind
from perfpilot.instrument.streams import StreamWatch, watch_aiohttp, watch_httpx, watch_requests
from perfpilot.instrument.templates import path_template

MARK = "__perfpilot__"


class _State:
    """The price table the hooks use, loaded once per :func:`install`."""

    prices: PriceTable | None = None


state = _State()

# Set while a requests ``send`` runs, so the nested sends of its redirects
# are not counted again.
_in_requests_send: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "perfpilot_in_requests_send", default=False
)


def install(prices: str | None = None, only: Collection[str] | None = None) -> list[str]:
    """Hook the HTTP clients that are installed; returns their names.

    Args:
        prices: Path of a TOML price table; ``None`` prices OpenAI calls at the
            built-in example prices. A table that does not load is logged
            once and the calls are recorded without cost.
        only: Hook only these clients (``"httpx"``, ``"requests"``,
            ``"aiohttp"``); ``None`` hooks all three. ``perfpilot run`` hooks
            each one as it is imported.

    Idempotent: a library already hooked is not hooked twice (the price table
    is reloaded, so a later call may change it).
    """
    state.prices = _load(prices)
    hooked: list[str] = []
    for name, patch in (
        ("httpx", _patch_httpx),
        ("requests", _patch_requests),
        ("aiohttp", _patch_aiohttp),
    ):
        if only is not None and name not in only:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                continue
            patch()
            hooked.append(name)
        except Exception as exc:  # a library we cannot patch: the app runs without the hook
            warn_once(f"outbound-install-{name}", "perfpilot: %s not hooked: %r", name, exc)
    return hooked


def _load(prices: str | None) -> PriceTable | None:
    from perfpilot.errors import ConfigError

    if prices is None:
        return default_prices()
    from perfpilot.instrument.cost import load_prices

    try:
        return load_prices(prices)
    except ConfigError as exc:
        warn_once(
            f"prices-{prices}",
            "perfpilot: price table not loaded, outbound calls are recorded without cost: %s",
            exc,
        )
        return None


def _mark(wrapper: Any, original: Any) -> Any:
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, MARK, True)
    wrapper.__perfpilot_original__ = original
    return wrapper


# ----------------------------------------------------------------- the shared part


def _host(hostname: str, port: int | None) -> str:
    if ":" in hostname:  # IPv6
        hostname = f"[{hostname}]"
    return f"{hostname}:{port}" if port else hostname


def _rule(host: str, path: str, status: int) -> Rule | None:
    prices = state.prices
    if prices is None or not 0 < status < 400:
        return None
    return prices.match(host, path)


def _wants_body(rule: Rule | None, headers: Any) -> bool:
    """Whether to read usage from the body: a usage-priced rule and a JSON answer."""
    if rule is None or not rule.usage_based:
        return False
    content_type = headers.get("Content-Type")  # case-insensitive in all three libraries
    return isinstance(content_type, str) and "json" in content_type.lower()


def _report(
    recorder: Recorder,
    method: str,
    host: str,
    path: str,
    status: int,
    start: float,
    end: float,
    bytes_in: int,
    bytes_out: int,
    rule: Rule | None,
    body: bytes | None,
    identity: Any,
) -> None:
    cost = 0.0
    usage: Usage | None = None
    if rule is not None:
        if body is not None:
            usage = extract_usage(body)
        cost = rule.cost(usage, bytes_in, bytes_out)
    template = path_template(path)
    recorder.outbound_site(method, host, template)
    if usage is None:
        recorder.outbound(
            method, host, template, status, start, end - start,
            bytes_in=bytes_in, bytes_out=bytes_out, cost=cost, identity=identity,
        )  # fmt: skip
    else:
        recorder.outbound(
            method, host, template, status, start, end - start,
            bytes_in=bytes_in, bytes_out=bytes_out, cost=cost,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            model=usage.model, identity=identity,
        )  # fmt: skip


def _identity(method: str, url: str, body: Any) -> Any:
    """A key of (method, full URL, body), only inside a request (elsewhere unused)."""
    if current_request.get() is None:
        return None
    return hash((method, url, body))


def _int(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        return 0


# --------------------------------------------------------------------------- httpx


def _patch_httpx() -> None:
    import httpx

    sync_send = httpx.Client.send
    if not getattr(sync_send, MARK, False):

        def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            recorder = active.recorder
            if recorder is None:
                return sync_send(self, request, *args, **kwargs)
            start = perf()
            try:
                response = sync_send(self, request, *args, **kwargs)
            except BaseException:
                _httpx_done(recorder, request, None, start, False)
                raise
            _httpx_done(recorder, request, response, start, kwargs.get("stream", False))
            return response

        httpx.Client.send = _mark(send, sync_send)  # type: ignore[method-assign]

    async_send = httpx.AsyncClient.send
    if not getattr(async_send, MARK, False):

        async def asend(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            recorder = active.recorder
            if recorder is None:
                return await async_send(self, request, *args, **kwargs)
            start = perf()
            try:
                response = await async_send(self, request, *args, **kwargs)
            except BaseException:
                _httpx_done(recorder, request, None, start, False)
                raise
            _httpx_done(recorder, request, response, start, kwargs.get("stream", False))
            return response

        httpx.AsyncClient.send = _mark(asend, async_send)  # type: ignore[method-assign]


def _httpx_done(recorder: Recorder, request: Any, response: Any, start: float, stream: Any) -> None:
    end = perf()
    try:
        url = request.url
        host = _host(url.host, url.port)
        path = url.path
        method = request.method
        try:
            sent: bytes | None = request.content
        except Exception:  # a streamed request body (httpx.RequestNotRead): not hashed
            sent = None
        length = request.headers.get("content-length") if sent is None else None
        bytes_out = len(sent) if sent is not None else _int(length)
        status = 0
        bytes_in = 0
        rule = None
        body = None
        identity = None if sent is None else _identity(method, str(url), sent)
        if response is not None:
            status = response.status_code
            rule = _rule(host, path, status)
            if stream:
                headers = response.headers
                watch = StreamWatch(
                    recorder, method, host, path, status, start, bytes_out, identity, rule,
                    headers.get("content-type"), headers.get("content-encoding"),
                )  # fmt: skip
                watch_httpx(response, watch)
                return
            received = response.content
            bytes_in = len(received)
            if _wants_body(rule, response.headers):
                body = received
        _report(recorder, method, host, path, status, start, end, bytes_in, bytes_out, rule,
                body, identity)  # fmt: skip
    except Exception as exc:
        warn_once("outbound-httpx", "perfpilot: httpx call not recorded: %r", exc)


# ------------------------------------------------------------------------ requests


def _patch_requests() -> None:
    import requests

    original = requests.Session.send
    if getattr(original, MARK, False):
        return

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        recorder = active.recorder
        if recorder is None or _in_requests_send.get():
            return original(self, request, **kwargs)
        token = _in_requests_send.set(True)
        start = perf()
        try:
            response = original(self, request, **kwargs)
        except BaseException:
            _requests_done(recorder, request, None, start, False)
            raise
        finally:
            _in_requests_send.reset(token)
        _requests_done(
            recorder, request, response, start, kwargs.get("stream", getattr(self, "stream", False))
        )
        return response

    requests.Session.send = _mark(send, original)  # type: ignore[method-assign]


def _requests_done(
    recorder: Recorder, request: Any, response: Any, start: float, stream: Any
) -> None:
    end = perf()
    try:
        full_url: str = request.url
        parts = urlsplit(full_url)  # cached by urllib
        host = parts.netloc.rpartition("@")[2].lower()  # credentials dropped; host[:port]
        path = parts.path or "/"
        method = request.method or "GET"
        sent = request.body
        if isinstance(sent, str):
            sent = sent.encode("utf-8", "surrogateescape")
        if not isinstance(sent, bytes | None):
            sent = None  # a file or generator: not hashed, length from the header
            bytes_out = _int(request.headers.get("Content-Length"))
        else:
            bytes_out = len(sent) if sent else 0
        status = 0
        bytes_in = 0
        rule = None
        body = None
        streamed_body = request.body is not None and sent is None
        identity = None if streamed_body else _identity(method, full_url, sent)
        if response is not None:
            status = response.status_code
            rule = _rule(host, path, status)
            if stream:
                watch = StreamWatch(
                    recorder, method, host, path, status, start, bytes_out, identity, rule,
                    response.headers.get("Content-Type"),
                )  # fmt: skip
                watch_requests(response, watch)
                return
            received = response.content
            bytes_in = len(received) if received else 0
            if _wants_body(rule, response.headers):
                body = received
        _report(recorder, method, host, path, status, start, end, bytes_in, bytes_out, rule,
                body, identity)  # fmt: skip
    except Exception as exc:
        warn_once("outbound-requests", "perfpilot: requests call not recorded: %r", exc)


# ------------------------------------------------------------------------- aiohttp


def _patch_aiohttp() -> None:
    import aiohttp

    original = aiohttp.ClientSession._request
    if getattr(original, MARK, False):
        return

    async def _request(self: Any, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = active.recorder
        if recorder is None:
            return await original(self, method, str_or_url, *args, **kwargs)
        start = perf()
        try:
            response = await original(self, method, str_or_url, *args, **kwargs)
        except BaseException:
            _aiohttp_failed(recorder, self, method, str_or_url, kwargs, start)
            raise
        await _aiohttp_done(recorder, self, method, str_or_url, kwargs, response, start)
        return response

    aiohttp.ClientSession._request = _mark(_request, original)  # type: ignore[method-assign]


def _aiohttp_call(session: Any, method: str, str_or_url: Any, kwargs: dict[str, Any]) -> Any:
    """(method, host, path, bytes_out, identity) of an aiohttp call, from its arguments."""
    method = method.upper()
    url = session._build_url(str_or_url)
    host = _host(url.host or "", url.explicit_port)
    data = kwargs.get("data")
    payload: Any
    if data is None and kwargs.get("json") is not None:
        payload = repr(kwargs["json"])
        bytes_out = len(payload)  # an estimate; the request's Content-Length replaces it
    elif isinstance(data, str | bytes | bytearray):
        payload = bytes(data) if isinstance(data, bytearray) else data
        bytes_out = len(payload.encode() if isinstance(payload, str) else payload)
    elif data is None:
        payload, bytes_out = None, 0
    elif isinstance(data, dict | list | tuple):  # a form
        payload = repr(data)
        bytes_out = len(payload)
    else:  # a stream, a file, FormData: not read
        payload, bytes_out = _UNHASHABLE, 0
    identity = None
    if payload is not _UNHASHABLE:
        params = kwargs.get("params")
        identity = _identity(method, str(url) if not params else f"{url}|{params!r}", payload)
    return method, host, url.path or "/", bytes_out, identity


_UNHASHABLE = object()


def _aiohttp_failed(
    recorder: Recorder, session: Any, method: str, str_or_url: Any, kwargs: dict[str, Any],
    start: float,
) -> None:  # fmt: skip
    end = perf()
    try:
        method, host, path, bytes_out, identity = _aiohttp_call(session, method, str_or_url, kwargs)
        _report(recorder, method, host, path, 0, start, end, 0, bytes_out, None, None, identity)
    except Exception as exc:
        warn_once("outbound-aiohttp", "perfpilot: aiohttp call not recorded: %r", exc)


async def _aiohttp_done(
    recorder: Recorder, session: Any, method: str, str_or_url: Any, kwargs: dict[str, Any],
    response: Any, start: float,
) -> None:  # fmt: skip
    end = perf()
    try:
        method, host, path, bytes_out, identity = _aiohttp_call(session, method, str_or_url, kwargs)
        sent_length = response.request_info.headers.get("Content-Length")
        if sent_length is not None:  # exact, once aiohttp has serialized the body
            bytes_out = _int(sent_length)
        status = response.status
        rule = _rule(host, path, status)
        content_type = response.headers.get("Content-Type")
        if body_kind(content_type) == "sse":
            watch = StreamWatch(
                recorder, method, host, path, status, start, bytes_out, identity, rule,
                content_type,
            )  # fmt: skip
            watch_aiohttp(response, watch)
            return
        body = None
        bytes_in = response.content_length or 0
        if _wants_body(rule, response.headers):
            try:
                body = await response.read()  # aiohttp keeps it for the app's own read
            except Exception:  # the app will see the same error when it reads
                body = None
            except BaseException:  # cancelled: the app never gets the response, free it
                response.close()
                raise
            else:
                bytes_in = len(body)
                end = perf()
                _replay(response, body)
        _report(recorder, method, host, path, status, start, end, bytes_in, bytes_out, rule,
                body, identity)  # fmt: skip
    except Exception as exc:
        warn_once("outbound-aiohttp", "perfpilot: aiohttp call not recorded: %r", exc)


def _replay(response: Any, body: bytes) -> None:
    """Give the response a fresh ``content`` stream holding ``body``.

    ``read()``, ``json()`` and ``text()`` use the body aiohttp kept; an app
    reading the raw stream (``resp.content.read()``, ``iter_chunked``) would
    otherwise find it drained by the hook. The stream's protocol is a detached
    one: the connection may already serve another request.
    """
    try:
        import asyncio

        from aiohttp import StreamReader
        from aiohttp.base_protocol import BaseProtocol

        loop = asyncio.get_running_loop()
        stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
        if body:
            stream.feed_data(body)
        stream.feed_eof()
        response.content = stream
    except Exception as exc:  # an aiohttp without these: the app's raw stream reads see EOF
        warn_once("outbound-aiohttp-replay", "perfpilot: aiohttp body not replayed: %r", exc)
