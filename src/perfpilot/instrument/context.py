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
        db_time: Seconds in database calls so far.
        db_count: Database calls so far.
        out_time: Seconds in outbound HTTP calls so far.
        out_count: Outbound calls so far.
        cost: US dollars spent on outbound calls so far.
        cache_hits: Cache hits so far.
        cache_misses: Cache misses so far.
        queries: ``(sql, start_offset_s, duration_s, rows, failed, db)`` tuples.
        calls: Outbound call tuples (see :meth:`Recorder.outbound`).
        cache_events: ``(cache, command, prefix, hit, start_offset_s)`` tuples.
        units: Business units produced, by name.
        dropped: Events aggregated early because the request had too many.
    """

    __slots__ = (
        "cache_events",
        "cache_hits",
        "cache_misses",
        "calls",
        "cost",
        "db_count",
        "db_time",
        "dropped",
        "error",
        "method",
        "out_count",
        "out_time",
        "queries",
        "route",
        "started",
        "status",
        "units",
    )

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
        self.queries: list[tuple[str, float, float, int, bool, str]] = NO_EVENTS
        self.calls: list[tuple[Any, ...]] = NO_EVENTS
        self.cache_events: list[tuple[str, str, str, bool, float]] = NO_EVENTS
        self.units: dict[str, int] | None = None
        self.dropped = 0


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
