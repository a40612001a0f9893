"""The request being served, as the hooks see it.

A :class:`RequestContext` lives in a context variable for the duration of one
request. Hooks (SQL, outbound HTTP, caches) append to it on the hot path, which
costs an attribute update and a list append; the recorder aggregates it all
once, when the request ends. Outside a request (background jobs, start-up),
hooks hand their events to the recorder directly.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfpilot.instrument.recorder import Recorder

logger = logging.getLogger("perfpilot")

# Bounds per request: past them, events are aggregated at once under the route
# known so far, so a request that runs 100 000 queries does not hold them all.
MAX_EVENTS_PER_REQUEST = 1000

perf = time.perf_counter

NO_EVENTS: Any = ()


class RequestContext:
    """One request in flight.

    Attributes:
        method: HTTP method.
        started: ``perf_counter()`` at the start.
        route: Route template, filled in by the framework integration.
        status: HTTP status (500 until a response starts).
        error: The request raised.
        db_time: Seconds in database calls not kept in ``queries`` (past the
            event bound); see :func:`db_seconds` for the request's total.
        db_count: Database calls so far: ``len(queries)`` until the event
            bound, then those past it too (the sqlite3 hook relies on it).
        out_time: Seconds in outbound HTTP calls so far.
        out_count: Outbound calls so far.
        cost: US dollars spent on outbound calls so far.
        cache_hits: Cache hits so far.
        cache_misses: Cache misses so far.
        cache_time: Seconds in timed cache commands so far. Set with the
            first cache event (requests without one never pay for it): read
            it only when ``cache_events`` is not empty.
        queries: ``(sql, start, duration_s, rows, failed, db)`` tuples
            (``start`` is the ``perf_counter()`` reading: traces make it an
            offset), or lists of the same for row-returning statements whose
            fetches are still being timed (see :meth:`Recorder.open_query`).
        calls: Outbound call tuples (see :meth:`Recorder.outbound`).
        cache_events: ``(cache, command, prefix, hit, start_offset_s, duration_s)``
            tuples (``hit`` is ``None`` for a timed write).
        units: Business units produced, by name.
        bytes_out: Response body bytes sent so far.
        headers: The response headers as the server interface passed them;
            read only once the request ends, and only for bodies of at least
            1 KiB (most responses never pay for parsing them).
        compressible: Set at the end: the response has no ``Content-Encoding``
            and a content type that compresses well (text, JSON, XML,
            JavaScript) or none.
        dropped: Events aggregated early because the request had too many.
    """

    __slots__ = (
        "bytes_out",
        "cache_events",
        "cache_hits",
        "cache_misses",
        "cache_time",
        "calls",
        "compressible",
        "cost",
        "db_count",
        "db_time",
        "dropped",
        "error",
        "headers",
        "method",
        "out_count",
        "out_time",
        "queries",
        "route",
        "started",
        "status",
        "units",
    )

    cache_time: float  # a slot, assigned with the first cache event (see above)

    def __init__(self, method: str, started: float) -> None:
        self.method = method
        self.started = started
        self.route: str | None = None
        self.status = 500
        self.error = False
        self.db_time = 0.0
        self.db_count = 0
        self.out_time = 0.0
        self.out_count = 0
        self.cost = 0.0
        self.cache_hits = 0
        self.cache_misses = 0
        # The shared empty tuple until the first event: most requests have
        # none of some kinds, and three list allocations per request show in
        # the overhead budget. The recorder swaps in a list on first append.
        self.queries: list[Any] = NO_EVENTS  # tuples, or lists while still open
        self.calls: list[tuple[Any, ...]] = NO_EVENTS
        self.cache_events: list[tuple[str, str, str, bool | None, float, float]] = NO_EVENTS
        self.units: dict[str, int] | None = None
        self.dropped = 0
        self.bytes_out = 0
        self.headers: Any = None
        self.compressible = False


def db_seconds(ctx: RequestContext) -> float:
    """Seconds the request has spent in database calls so far."""
    return ctx.db_time + math.fsum(q[2] for q in ctx.queries)


_COMPRESSIBLE_TYPES = (b"text/", b"application/json", b"application/javascript",
                       b"application/xml", b"image/svg+xml", b"application/x-ndjson")  # fmt: skip


def compressible_type(content_type: bytes) -> bool:
    """Whether a ``Content-Type`` value names a format that compresses well
    (text, JSON, XML, JavaScript, SVG, or a ``+json``/``+xml`` suffix)."""
    value = content_type.lower()
    if value.startswith(_COMPRESSIBLE_TYPES):
        return True
    media = value.split(b";", 1)[0].strip()
    return media.endswith((b"+json", b"+xml"))


current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "perfpilot_request", default=None
)


class _Active:
    """The recorder the hooks report to (set by :func:`perfpilot.instrument.instrument`).

    Library hooks are installed once per process (they patch classes), so they
    need one place to find the recorder; everything else gets it as an argument.
    """

    recorder: Recorder | None = None


active = _Active()

_warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log ``message`` once per ``key`` per process; never raises."""
    if key in _warned:
        return
    _warned.add(key)
    with contextlib.suppress(Exception):  # logging itself broken: nothing more to do
        logger.warning(message, *args)
