"""Record types of in-app monitoring: what the recorder flushes and the store keeps.

The recorder aggregates; it never writes a row per request. Every few seconds
it hands an :class:`AppSnapshot` to the store: per (route, method, status
class) request aggregates with a latency histogram, per (query fingerprint,
route) aggregates, per (outbound host, path template) aggregates, cache and
business-unit counters, resource samples, and a few sampled traces. Rows are
deltas: the store adds them up, so any number of processes can write to one
store and nothing is lost or counted twice.

Units are in field names: ``*_s`` seconds, ``*_usd`` US dollars, ``*_at`` Unix time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from perfpilot.stats.histogram import Histogram


@dataclasses.dataclass(frozen=True)
class RequestRow:
    """Requests of one (route, method, status class) during one flush interval.

    Attributes:
        route: The route template (``/orders/{id}``), ``<unmatched>`` for 404s.
        method: HTTP method.
        status_class: 2, 3, 4 or 5 (hundreds digit); 5 for an exception.
        count: Requests.
        errors: Requests that raised or answered 5xx.
        latency: Server-side durations.
        db_time_s: Time spent in database calls, summed over the requests.
        db_count: Database calls, summed.
        outbound_time_s: Time spent in outbound HTTP calls, summed.
        outbound_count: Outbound calls, summed.
        cost_usd: Money spent on outbound calls, summed.
        cache_hits: Cache hits, summed.
        cache_misses: Cache misses, summed.
        bytes_out: Response body bytes sent, summed (as sent: compressed when
            the app compressed).
        uncompressed: Responses of at least
            :data:`UNCOMPRESSED_MIN_BYTES` with a compressible (or no) content
            type sent without a ``Content-Encoding``.
        cache_time_s: Time spent in timed cache commands (redis-py, and
            ``perfpilot.cache_event(..., duration_s=)``), summed.
    """

    route: str
    method: str
    status_class: int
    count: int
    errors: int
    latency: Histogram
    db_time_s: float = 0.0
    db_count: int = 0
    outbound_time_s: float = 0.0
    outbound_count: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    bytes_out: int = 0
    uncompressed: int = 0
    cache_time_s: float = 0.0


#: Smallest response body counted in :attr:`RequestRow.uncompressed` (compressing
#: less than this rarely pays for itself: starlette's ``GZipMiddleware`` default
#: ``minimum_size`` is 500 bytes, nginx's ``gzip_min_length`` 20).
UNCOMPRESSED_MIN_BYTES = 1024


@dataclasses.dataclass(frozen=True)
class QueryRow:
    """Executions of one SQL fingerprint from one route during one interval.

    Attributes:
        fingerprint: A short stable id of the normalized statement.
        sql: The normalized statement, literals replaced by ``?``.
        db: The database kind (``sqlite``, ``postgresql``).
        route: The route the query ran under, ``<none>`` outside requests.
        count: Executions.
        errors: Executions that raised.
        latency: Durations.
        rows: Rows returned or affected, summed (when the driver says).
        call_site: ``file:line`` of the first application frame, when known.
    """

    fingerprint: str
    sql: str
    db: str
    route: str
    count: int
    errors: int
    latency: Histogram
    rows: int = 0
    call_site: str | None = None


@dataclasses.dataclass(frozen=True)
class OutboundRow:
    """Outbound HTTP calls to one host and path template during one interval.

    Attributes:
        host: ``host[:port]`` called.
        template: Path with ids replaced (``/v1/users/{id}``).
        method: HTTP method.
        status_class: 2..5, or 0 when no response arrived.
        route: The route that made the calls, ``<none>`` outside requests.
        count: Calls.
        errors: Calls that failed or answered 5xx.
        latency: Durations.
        bytes_in: Response body bytes, summed.
        bytes_out: Request body bytes, summed.
        retries: Calls identified as retries of a failed identical call.
        cost_usd: Money, summed, from the price table.
        prompt_tokens: Token usage from OpenAI-compatible responses.
        completion_tokens: Token usage from OpenAI-compatible responses.
        model: The last model seen, when the API reports one.
        repeated: Calls identical (method, URL, body) to an earlier call in
            the same request.
        repeated_across: Calls identical to a successful call that another
            request made earlier in the same flush interval (and not to an
            earlier call of their own request): a cache shared by requests,
            with a time to live of a few seconds, would have served them.
        call_site: Where the application makes these calls: ``file:line`` of
            the innermost application frame, then its callers (joined by
            `` < ``), found the first time the process made a call to this
            method, host and template; ``None`` when unknown.
    """

    host: str
    template: str
    method: str
    status_class: int
    route: str
    count: int
    errors: int
    latency: Histogram
    bytes_in: int = 0
    bytes_out: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    repeated: int = 0
    repeated_across: int = 0
    call_site: str | None = None


#: :attr:`ProfileRow.stack` of samples with no application frame on the stack
#: (the route's thread was in framework or library code only).
NO_APP_FRAME = "<library>"


@dataclasses.dataclass(frozen=True)
class ProfileRow:
    """Stack samples of the threads serving one route, for one innermost stack.

    The in-app sampler (:mod:`perfpilot.instrument.profiler`) looks at every
    thread serving a request at a fixed interval (wall clock: running, waiting
    on a lock, the GIL or an unhooked call alike) and counts the sample under
    the request's route and the application frames at the top of its stack.

    Attributes:
        route: The route template of the request the thread was serving.
        stack: The innermost application frames, innermost first, each
            ``file:line function``, joined by `` < `` (at most three; the
            line is the one executing), or :data:`NO_APP_FRAME`.
        via: The innermost frame when it is not an application frame (a
            library the app called, e.g. ``json/encoder.py:258 iterencode``,
            paths of installed code relative to their ``sys.path`` entry);
            ``""`` when the application frame itself was executing.
        samples: Samples with this route, stack and ``via``.
    """

    route: str
    stack: str
    via: str
    samples: int


@dataclasses.dataclass(frozen=True)
class CacheRow:
    """Cache lookups of one cache, command and key prefix during one interval."""

    cache: str
    command: str
    prefix: str
    route: str
    hits: int
    misses: int


@dataclasses.dataclass(frozen=True)
class UnitRow:
    """Business units (``perfpilot.unit("listing")``) produced by one route.

    Attributes:
        unit: The unit name.
        route: The route whose requests produced them.
        units: Units produced.
        requests: Requests that produced at least one.
        cost_usd: Outbound cost of those requests.
    """

    unit: str
    route: str
    units: int
    requests: int
    cost_usd: float


@dataclasses.dataclass(frozen=True)
class PoolRow:
    """Connection-pool figures of one pool (SQLAlchemy) during one interval.

    Attributes:
        pool: The pool's name (engine URL without credentials).
        checkouts: Connections checked out.
        wait_s: Time spent waiting for a connection, summed.
        max_wait_s: The longest wait.
        checked_out_max: Most connections checked out at once.
        overflow_max: Most overflow connections at once.
        size: Configured pool size.
    """

    pool: str
    checkouts: int
    wait_s: float
    max_wait_s: float
    checked_out_max: int
    overflow_max: int
    size: int


@dataclasses.dataclass(frozen=True)
class ResourceSample:
    """Process and host resources at one instant."""

    at: float
    pid: int
    rss_bytes: int
    cpu_percent: float
    threads: int
    open_files: int
    host_cpu_percent: float
    host_memory_used_bytes: int
    host_memory_total_bytes: int
    disk_read_bytes: int
    disk_write_bytes: int
    net_sent_bytes: int
    net_recv_bytes: int


@dataclasses.dataclass(frozen=True)
class Span:
    """One timed operation inside a traced request.

    Attributes:
        kind: ``db``, ``http`` or ``cache``.
        name: Normalized SQL, ``METHOD host/template``, or ``cache command``.
        start_s: Offset from the request start.
        duration_s: Duration.
        detail: Small JSON-ready extras (rows, status, cost, call site...).
    """

    kind: str
    name: str
    start_s: float
    duration_s: float
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Trace:
    """A kept request with its spans.

    Attributes:
        at: Unix time the request started.
        route: Route template.
        method: HTTP method.
        status: HTTP status (500 for an exception).
        duration_s: Server-side duration.
        reasons: Why it was kept: ``slow``, ``error``, ``repeated_query``, ``sample``.
        spans: The spans, in start order.
        spans_dropped: Spans not kept because the request had too many.
    """

    at: float
    route: str
    method: str
    status: int
    duration_s: float
    reasons: tuple[str, ...]
    spans: tuple[Span, ...]
    spans_dropped: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class AppRows:
    """The rows in-app recorders produce, by kind (keyword arguments only).

    :class:`AppSnapshot` holds one process's rows of one flush interval;
    :class:`perfpilot.analyze.appdata.AppData` the rows of a window, merged.

    Attributes:
        requests: Request aggregates.
        queries: Query aggregates.
        outbound: Outbound-call aggregates.
        caches: Cache counters.
        units: Business-unit counters.
        pools: Connection-pool figures.
        resources: Resource samples.
        traces: Kept traces.
        drops: Items dropped instead of blocking or growing without bound, by kind.
        profiles: Stack samples per (route, stack, via).
    """

    requests: tuple[RequestRow, ...] = ()
    queries: tuple[QueryRow, ...] = ()
    outbound: tuple[OutboundRow, ...] = ()
    caches: tuple[CacheRow, ...] = ()
    units: tuple[UnitRow, ...] = ()
    pools: tuple[PoolRow, ...] = ()
    resources: tuple[ResourceSample, ...] = ()
    traces: tuple[Trace, ...] = ()
    drops: dict[str, int] = dataclasses.field(default_factory=dict)
    profiles: tuple[ProfileRow, ...] = ()


@dataclasses.dataclass(frozen=True)
class AppSnapshot(AppRows):
    """What one process observed during one flush interval: the rows of
    :class:`AppRows` (keyword arguments), and:

    Attributes:
        service: Service name.
        host: Host name.
        pid: Process id.
        started_at: Start of the interval.
        ended_at: End of the interval.
    """

    service: str
    host: str
    pid: int
    started_at: float
    ended_at: float

    @property
    def empty(self) -> bool:
        """True when there is nothing to write."""
        return not (
            self.requests
            or self.queries
            or self.outbound
            or self.caches
            or self.units
            or self.pools
            or self.resources
            or self.traces
            or self.drops
            or self.profiles
        )


def add_rows(first: Any, second: Any, keep: tuple[str, ...] = ()) -> Any:
    """A new row of ``first``'s type whose numbers are the sums of both rows.

    Histograms are merged exactly; strings and ``None`` keep ``first``'s value
    unless ``first``'s is empty; fields named in ``keep`` are never summed
    (e.g. ``status_class`` when merging status classes of one route).
    """
    values: dict[str, Any] = {}
    for field in dataclasses.fields(first):
        a = getattr(first, field.name)
        b = getattr(second, field.name)
        if field.name in keep:
            values[field.name] = a
        elif isinstance(a, Histogram):
            merged = a.copy()
            merged.merge(b)
            values[field.name] = merged
        elif isinstance(a, bool) or not isinstance(a, int | float):
            values[field.name] = a if a not in (None, "") else b
        else:
            values[field.name] = a + b
    return type(first)(**values)
