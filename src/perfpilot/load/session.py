"""Multi-step flows: ``async def flow(session)`` functions and what they get.

A flow is a user journey (log in, browse, check out) written as a plain async
function. Each iteration calls it once with the VU's :class:`Session`::

    async def flow(session):
        r = await session.post("/login", json={"user": "ann", "password": "pw"})
        token = r.json()["token"]                   # values carry between steps
        await session.get("/orders", name="orders",
                          headers={"Authorization": f"Bearer {token}"})
        session.check(r, "logged in", r.status == 200)

Requests are timed and counted like scenario requests; name them (``name=``)
when paths carry ids so statistics group sensibly. Transport errors do not
raise: the response has ``status == 0`` and ``error`` set to the error kind.
In open-model runs the first request of an iteration is timed from the
iteration's intended start.

A session sends one request at a time (it owns one keep-alive connection per
origin, like a browser tab): ``await`` each request before the next.

With ``follow_redirects`` a redirect is followed within the one request (its
name, its latency): 307 and 308 repeat the method and body, the others become
a GET without a body. The request's own headers go along on the same origin;
credentials among them are dropped when the redirect leaves it.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

from perfpilot.errors import ConfigError
from perfpilot.load.client import (
    HTTPConnection,
    Origin,
    encode_request,
    error_kind,
    open_connection,
    perf,
    split_url,
)
from perfpilot.load.engine import CONNECT_ERRORS, MAX_REDIRECTS, REDIRECT_STATUSES, VirtualUser
from perfpilot.load.plan import SENSITIVE_HEADERS

if TYPE_CHECKING:
    from perfpilot.load.engine import Engine


class Response:
    """A response as a flow sees it.

    Attributes:
        status: HTTP status, or 0 when the request failed before a response.
        headers: Response headers, names in lower case.
        body: The raw body.
        error: The error kind (``refused``, ``timeout``, ``tls``, ``redirect``,
            ``status_5xx``...) or ``None``.
        elapsed_s: Time from send to the last byte.
        name: The request name the response was counted under.
    """

    __slots__ = ("body", "elapsed_s", "error", "headers", "name", "status")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        error: str | None,
        elapsed_s: float,
        name: str,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error
        self.elapsed_s = elapsed_s
        self.name = name

    @property
    def ok(self) -> bool:
        """True for a 2xx or 3xx response."""
        return 200 <= self.status < 400

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return jsonlib.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.name!r}>"


class Session:
    """What a flow function receives: an HTTP client bound to one virtual user.

    Attributes:
        vu: The virtual user's number (1-based).
        iteration: The iteration number of this VU (1-based).
        vars: A dict kept across the VU's iterations (e.g. a login token).
        base_url: Base for relative URLs.
    """

    def __init__(self, vu: FlowVU) -> None:
        self._vu = vu
        self.vars: dict[str, Any] = {}
        self.base_url = vu.engine.plan.base_url or ""

    @property
    def vu(self) -> int:
        """The virtual user's number."""
        return self._vu.id

    @property
    def iteration(self) -> int:
        """The current iteration of this VU."""
        return self._vu.iteration

    async def get(self, url: str, **kwargs: Any) -> Response:
        """Send a GET; see :meth:`request`."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        """Send a POST; see :meth:`request`."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        """Send a PUT; see :meth:`request`."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        """Send a PATCH; see :meth:`request`."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        """Send a DELETE; see :meth:`request`."""
        return await self.request("DELETE", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and wait for its response.

        Args:
            method: HTTP method.
            url: Absolute, or relative to the scenario's ``base_url``.
            name: Statistics name; default ``"METHOD /path"``.
            headers: Extra headers.
            json: A value to send as a JSON body.
            data: A form to send urlencoded.
            body: A raw body.
            tags: Tags for this name's statistics.

        Returns:
            The :class:`Response`; transport errors give ``status == 0``.

        Raises:
            RuntimeError: another request of this session is still in flight.
            ConfigError: the URL is not a valid ``http(s)://`` URL.
        """
        method = method.upper()
        full = urljoin(self.base_url, url) if self.base_url else url
        split_url(full)  # fail early on a bad URL
        given = {k.lower() for k in (headers or {})}
        # a header given here replaces the plan's default of the same name
        own: list[tuple[str, str]] = []
        payload: bytes | None = None
        if json is not None:
            payload = jsonlib.dumps(json).encode()
            if "content-type" not in given:
                own.append(("Content-Type", "application/json"))
        elif data is not None:
            payload = urlencode(data).encode()
            if "content-type" not in given:
                own.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif body is not None:
            payload = body.encode() if isinstance(body, str) else body
        own.extend((headers or {}).items())
        label = name or f"{method} {urlsplit(full).path or '/'}"
        acc = self._vu.engine.recorder.accumulator(label, tags)
        return await self._vu.exchange(method, full, own, payload, acc, label)

    def check(self, response: Response, name: str, passed: bool) -> bool:
        """Count a named check on ``response``'s request name; returns ``passed``."""
        self._vu.engine.recorder.accumulator(response.name).add_check(name, bool(passed))
        return bool(passed)

    async def sleep(self, seconds: float) -> None:
        """Pause this VU (think time inside a flow)."""
        await asyncio.sleep(seconds)


class FlowVU(VirtualUser):
    """A VU that runs the plan's flow function once per iteration."""

    def __init__(self, engine: Engine, vu_id: int) -> None:
        super().__init__(engine, vu_id)
        self.session = Session(self)
        self._future: asyncio.Future[tuple[int, dict[str, str], bytes, str | None]] | None = None
        self._intended: float | None = None
        self._connect_failed = False
        self._in_flight = False

    def begin(self, intended: float | None) -> None:
        """Start one iteration: run the flow function in a task."""
        self.busy = True
        self.iteration += 1
        self._intended = intended
        self._connect_failed = False
        self.engine.spawn(self._iterate())

    async def _iterate(self) -> None:
        engine = self.engine
        flow = engine.flow
        assert flow is not None
        try:
            await flow(self.session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            engine.flow_failed(exc)
        # after a failed connect the engine backs off before the next iteration,
        # as for scenario requests, instead of spinning on a dead target
        engine.iteration_done(self, self._connect_failed)

    async def _connection(self, origin: Origin) -> HTTPConnection:
        conn = self.conns.get(origin)
        if conn is not None and not conn.closed:
            return conn
        engine = self.engine
        conn = await open_connection(
            origin,
            self,
            want_headers=True,
            want_body=True,
            timeout_s=engine.plan.connect_timeout_s,
            ssl_context=engine.ssl_context,
        )
        self.conns[origin] = conn
        return conn

    async def exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        payload: bytes | None,
        acc: Any,
        name: str,
    ) -> Response:
        """Send one request (following redirects when the plan says so) and record it.

        Args:
            method: HTTP method, upper case.
            url: Absolute URL.
            headers: The request's own headers; the plan's default headers are
                added, except those the request gives itself.
            payload: The body, or ``None``.
            acc: The accumulator of the request's name.
            name: The request's name.
        """
        if self._in_flight:
            raise RuntimeError(
                "a session sends one request at a time: await each request before the next"
            )
        self._in_flight = True
        try:
            return await self._exchange(method, url, headers, payload, acc, name)
        finally:
            self._in_flight = False

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        payload: bytes | None,
        acc: Any,
        name: str,
    ) -> Response:
        intended = self._intended
        self._intended = None
        plan = self.engine.plan
        redirects = 0
        start: float | None = None
        origin, target = split_url(url)
        while True:
            request = self._encode(method, origin, target, headers, payload)
            try:
                conn = await self._connection(origin)
            except Exception as exc:
                kind = error_kind(exc)
                kind = "connect_timeout" if kind == "timeout" else kind
                acc.requests += 1
                acc.add_error(kind)
                if kind in CONNECT_ERRORS:
                    self._connect_failed = True
                return Response(0, {}, b"", kind, 0.0, name)
            loop = asyncio.get_running_loop()
            self._future = loop.create_future()
            before = perf()
            conn.send(request, method == "HEAD")
            # a send that fails at once leaves ``sent_at`` as the previous request's
            sent = max(conn.sent_at, before)
            if start is None:
                start = sent
            status, response_headers, body, error = await self._future
            now = perf()
            if (
                error is None
                and plan.follow_redirects
                and status in REDIRECT_STATUSES
                and "location" in response_headers
                and redirects < MAX_REDIRECTS
            ):
                redirects += 1
                url = urljoin(url, response_headers["location"])
                try:
                    next_origin, target = split_url(url)
                except ConfigError:
                    acc.requests += 1
                    acc.add_error("redirect")
                    return Response(0, {}, b"", "redirect", now - sent, name)
                if next_origin != origin:
                    # like browsers: credentials stay with the origin they were given for
                    dropped = {*SENSITIVE_HEADERS, "host"}
                    headers = [(k, v) for k, v in headers if k.lower() not in dropped]
                origin = next_origin
                if status not in (307, 308):
                    # 301/302/303: the next request is a GET without a body
                    method = "HEAD" if method == "HEAD" else "GET"
                    payload = None
                    body_headers = ("content-type", "content-length", "transfer-encoding")
                    headers = [(k, v) for k, v in headers if k.lower() not in body_headers]
                continue
            acc.requests += 1
            if error is not None:
                acc.add_error(error)
                return Response(0, {}, b"", error, now - sent, name)
            acc.svc.append(now - sent)
            acc.lat.append(now - (intended if intended is not None else start))
            failure: str | None = None
            if status >= 400:
                failure = "status_5xx" if status >= 500 else "status_4xx"
                acc.add_error(failure)
            return Response(status, response_headers, body, failure, now - sent, name)

    def _encode(
        self,
        method: str,
        origin: Origin,
        target: str,
        headers: list[tuple[str, str]],
        payload: bytes | None,
    ) -> bytes:
        given = {k.lower() for k, _ in headers}
        defaults = [(k, v) for k, v in self.engine.plan.default_headers if k.lower() not in given]
        return encode_request(method, origin, target, [*defaults, *headers], payload)

    def on_response(
        self, conn: HTTPConnection, status: int, headers: dict[str, str] | None, body: bytes | None
    ) -> None:
        """Wake the flow waiting for this response."""
        future = self._future
        if future is not None and not future.done():
            future.set_result((status, headers or {}, body or b"", None))

    def on_error(self, conn: HTTPConnection, kind: str) -> None:
        """Wake the flow with the failure."""
        future = self._future
        if future is not None and not future.done():
            future.set_result((0, {}, b"", kind))
