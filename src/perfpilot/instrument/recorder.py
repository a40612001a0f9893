"""The in-process recorder: aggregates, bounded, never blocking, never raising.

Hooks report events; the recorder keeps aggregates for the current flush
interval (one histogram and a few sums per key), a bounded number of traces,
and counts of everything it had to drop. :meth:`Recorder.collect` swaps the
interval out for the flusher thread, which turns it into an
:class:`~perfpilot.app_records.AppSnapshot` and writes it to the store.

Bounds: at most ``max_keys`` keys per table per interval (further keys fold
into ``<other>`` and are counted in ``drops``), at most ``max_traces`` traces per
interval, at most ``MAX_EVENTS_PER_REQUEST`` buffered events per request, at
most ``max_identities`` outbound-call identities remembered per interval for
spotting identical calls across requests.
"""

from __future__ import annotations

import math
import operator
import random
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from perfpilot.app_records import UNCOMPRESSED_MIN_BYTES
from perfpilot.instrument import speedups
from perfpilot.instrument.aggregates import (
    DURATIONS_BUFFER,
    Interval,
    OutboundAgg,
    QueryAgg,
    RequestAgg,
)
from perfpilot.instrument.callsite import find_call_site
from perfpilot.instrument.context import (
    MAX_EVENTS_PER_REQUEST,
    NO_EVENTS,
    RequestContext,
    current_request,
)

OTHER = "<other>"
NO_ROUTE = "<none>"
UNMATCHED = "<unmatched>"
MAX_CALL_SITES = 10_000
# besides no response and 5xx: statuses after which clients retry
_RETRYABLE = frozenset((408, 429))


class Recorder:
    """Aggregates requests, queries, outbound calls and cache events in memory.

    Args:
        service: Service name written with every snapshot.
        slow_s: Requests at least this slow are traced.
        sample_rate: Fraction of other requests traced at random.
        repeat_threshold: A request running one statement this many times is
            traced (an N+1 suspect).
        max_keys: Keys per table per interval before folding into ``<other>``.
        max_traces: Traces per interval.
        max_identities: Outbound-call identities remembered per interval
            (about 100 bytes each) to count identical calls across requests;
            past it, new identities are not remembered and are counted in
            ``drops`` as ``outbound_identities``.
        seed: Seed of the sampler (tests).
    """

    def __init__(
        self,
        service: str = "default",
        *,
        slow_s: float = 0.5,
        sample_rate: float = 0.01,
        repeat_threshold: int = 5,
        max_keys: int = 2000,
        max_traces: int = 100,
        max_identities: int = 10_000,
        seed: int | None = None,
    ) -> None:
        self.service = service
        self.slow_s = slow_s
        self.sample_rate = sample_rate
        self.repeat_threshold = repeat_threshold
        self.max_keys = max_keys
        self.max_traces = max_traces
        self.max_identities = max_identities
        self._lock = threading.Lock()
        self._random = random.Random(seed).random
        # requests left until the next random sample (see _sample_gap)
        self._until_sample = self._sample_gap()
        self._interval = Interval(time.time())
        self._wall_offset = time.time() - time.perf_counter()
        self.call_sites: dict[str, str | None] = {}
        self.outbound_sites: dict[tuple[str, str, str], str | None] = {}

    # -- the hot path ---------------------------------------------------------
    def finish(self, ctx: RequestContext, duration: float) -> None:
        """Aggregate one finished request and everything it did."""
        route = ctx.route or UNMATCHED
        status = ctx.status
        error = ctx.error or status >= 500
        status_class = 5 if ctx.error else status // 100
        key = (route, ctx.method, status_class)
        # acquire/release, not ``with``: the context manager protocol costs
        # about 1 100 instructions more per request
        lock = self._lock
        lock.acquire()
        try:
            interval = self._interval
            requests = interval.requests
            agg = requests.get(key)
            if agg is None:
                agg = self._new_key(requests, key, (OTHER, ctx.method, status_class), RequestAgg)
            agg.count += 1
            if error:
                agg.errors += 1
            durations = agg.durations
            durations.append(duration)
            if len(durations) >= DURATIONS_BUFFER:
                agg.absorb()
            if ctx.bytes_out:
                agg.bytes_out += ctx.bytes_out
                if ctx.compressible and ctx.bytes_out >= UNCOMPRESSED_MIN_BYTES:
                    agg.uncompressed += 1
            if ctx.db_count:
                agg.db_time += ctx.db_time + _add_queries(self, interval, ctx.queries, route)
                agg.db_count += ctx.db_count
            if ctx.out_count:
                agg.out_time += ctx.out_time
                agg.out_count += ctx.out_count
                agg.cost += ctx.cost
                self._add_calls(interval, ctx.calls, route)
            if ctx.cache_events:
                agg.cache_hits += ctx.cache_hits
                agg.cache_misses += ctx.cache_misses
                agg.cache_time += ctx.cache_time
                self._add_cache_events(interval, ctx.cache_events, route)
            if ctx.units:
                units = interval.units
                for name, n in ctx.units.items():
                    sums = units.get((name, route))
                    if sums is None:
                        sums = units[(name, route)] = [0.0, 0.0, 0.0]
                    sums[0] += n
                    sums[1] += 1
                    sums[2] += ctx.cost
            if ctx.dropped:
                interval.drops["request_events"] = (
                    interval.drops.get("request_events", 0) + ctx.dropped
                )
            until_sample = self._until_sample - 1
            self._until_sample = until_sample
            if (
                duration >= self.slow_s
                or error
                or ctx.db_count >= self.repeat_threshold
                or until_sample <= 0
            ) and (reasons := self._trace_reasons(ctx, duration, error, until_sample <= 0)):
                if len(interval.traces) < self.max_traces:
                    interval.traces.append(self._trace(ctx, route, duration, reasons))
                else:
                    interval.drops["traces"] = interval.drops.get("traces", 0) + 1
        finally:
            lock.release()

    def query(
        self, sql: str, start: float, duration: float, rows: int, failed: bool, db: str
    ) -> None:
        """Record one SQL statement (``start`` is its ``perf_counter()`` start)."""
        ctx = current_request.get()
        if ctx is None:
            with self._lock:
                self._add_queries(
                    self._interval, ((sql, 0.0, duration, rows, failed, db),), NO_ROUTE
                )
            return
        ctx.db_count += 1
        queries = ctx.queries
        if queries is NO_EVENTS:  # the first event of the request
            queries = ctx.queries = []
        if len(queries) < MAX_EVENTS_PER_REQUEST:
            queries.append((sql, start, duration, rows, failed, db))
        else:
            ctx.dropped += 1
            ctx.db_time += duration
            with self._lock:
                self._add_queries(
                    self._interval, ((sql, 0.0, duration, rows, failed, db),), ctx.route or OTHER
                )

    def open_query(self, sql: str, start: float, duration: float, db: str) -> list[Any]:
        """Record a statement whose rows are still to be fetched; returns its event.

        The event is the list ``[sql, start, duration, rows, failed, db]``; the
        hook adds fetch time to ``event[2]``, rows to ``event[3]`` and sets
        ``event[4]`` when a fetch fails, for as long as the request runs. Inside
        a request (under its event bound) the event is already the request's, so
        a statement whose cursor outlives the request is counted all the same.
        Otherwise the returned list has two more items, ``recorder`` and the
        request context (or ``None``): the hook calls :meth:`query` with the
        final figures once the statement is done (see ``sql_sqlite``).
        """
        ctx = current_request.get()
        if ctx is not None:
            queries = ctx.queries
            if queries is NO_EVENTS:  # the first event of the request
                queries = ctx.queries = []
            if len(queries) < MAX_EVENTS_PER_REQUEST:
                ctx.db_count += 1
                event = [sql, start, duration, 0, False, db]
                queries.append(event)
                return event
        return [sql, start, duration, 0, False, db, self, ctx]

    def outbound(
        self,
        method: str,
        host: str,
        template: str,
        status: int,
        start: float,
        duration: float,
        *,
        bytes_in: int = 0,
        bytes_out: int = 0,
        cost: float = 0.0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        model: str | None = None,
        identity: Any = None,
        route: str | None = None,
    ) -> None:
        """Record one outbound HTTP call.

        Args:
            method: HTTP method.
            host: ``host[:port]``.
            template: Path template (ids replaced).
            status: HTTP status, 0 when the call failed without a response.
            start: ``perf_counter()`` at the start.
            duration: Seconds.
            bytes_in: Response body bytes.
            bytes_out: Request body bytes.
            cost: US dollars, from the price table.
            prompt_tokens: Token usage, when the API reports it.
            completion_tokens: Token usage, when the API reports it.
            model: Model name, when the API reports it.
            identity: A hashable key of (method, URL, body) for spotting
                identical calls within a request and across requests (the
                hooks give one only inside a request).
            route: Record the call under this route, outside any request:
                for a streamed response that ended after its request did, or
                in another context (see ``instrument/streams.py``).
        """
        event = (
            method, host, template, status, duration, bytes_in, bytes_out, cost,
            prompt_tokens, completion_tokens, model, identity,
        )  # fmt: skip
        ctx = current_request.get() if route is None else None
        if ctx is None:
            with self._lock:
                self._add_calls(self._interval, ((*event, 0.0),), route or NO_ROUTE)
            return
        ctx.out_time += duration
        ctx.out_count += 1
        ctx.cost += cost
        calls = ctx.calls
        if calls is NO_EVENTS:
            calls = ctx.calls = []
        if len(calls) < MAX_EVENTS_PER_REQUEST:
            calls.append((*event, start - ctx.started))
        else:
            ctx.dropped += 1
            with self._lock:
                self._add_calls(self._interval, ((*event, 0.0),), ctx.route or OTHER)

    def cache(
        self, cache: str, command: str, prefix: str, hit: bool | None, duration: float = 0.0
    ) -> None:
        """Record one cache command that just ended.

        Args:
            cache: The cache's name (``redis``, or the app's name for its own).
            command: The command (``get``).
            prefix: The key prefix it is counted under.
            hit: Whether the lookup hit; ``None`` for a command that looks
                nothing up (a write): timed, counted neither way.
            duration: Seconds the command took (0 when not timed). Inside a
                request it adds to the request's cache time; outside one
                there is no request to add it to.
        """
        ctx = current_request.get()
        if ctx is None:
            if hit is not None:
                with self._lock:
                    self._add_cache_events(
                        self._interval, ((cache, command, prefix, hit, 0.0, 0.0),), NO_ROUTE
                    )
            return
        if hit:
            ctx.cache_hits += 1
        elif hit is not None:
            ctx.cache_misses += 1
        events = ctx.cache_events
        if events is NO_EVENTS:  # the first: cache_time exists from here on
            events = ctx.cache_events = []
            ctx.cache_time = duration
        else:
            ctx.cache_time += duration
        if len(events) < MAX_EVENTS_PER_REQUEST:
            start = time.perf_counter() - duration - ctx.started
            events.append((cache, command, prefix, hit, start, duration))
        else:
            ctx.dropped += 1
            if hit is not None:
                with self._lock:
                    self._add_cache_events(
                        self._interval,
                        ((cache, command, prefix, hit, 0.0, 0.0),),
                        ctx.route or OTHER,
                    )

    def unit(self, name: str, count: int = 1) -> None:
        """Mark that the current request produced ``count`` business units ``name``."""
        ctx = current_request.get()
        if ctx is None:
            with self._lock:
                sums = self._interval.units.setdefault((name, NO_ROUTE), [0.0, 0.0, 0.0])
                sums[0] += count
            return
        if ctx.units is None:
            ctx.units = {}
        ctx.units[name] = ctx.units.get(name, 0) + count

    def pool_checkout(
        self, pool: str, wait_s: float, checked_out: int, overflow: int, size: int
    ) -> None:
        """Record one connection checkout from a pool, with how long it waited."""
        with self._lock:
            pools = self._interval.pools
            sums = pools.get(pool)
            if sums is None:
                if len(pools) >= self.max_keys:
                    self._count_drop(self._interval, "keys")
                    return
                sums = pools[pool] = [0, 0.0, 0.0, 0, 0, size]
            sums[0] += 1
            sums[1] += wait_s
            sums[2] = max(sums[2], wait_s)
            sums[3] = max(sums[3], checked_out)
            sums[4] = max(sums[4], overflow)
            sums[5] = size

    def resource_sample(self, sample: Any) -> None:
        """Keep one resource sample for the next snapshot."""
        with self._lock:
            resources = self._interval.resources
            if len(resources) < self.max_keys:
                resources.append(sample)
            else:
                self._count_drop(self._interval, "resources")

    def drop(self, kind: str, n: int = 1) -> None:
        """Count ``n`` items of ``kind`` that were dropped instead of recorded."""
        with self._lock:
            self._count_drop(self._interval, kind, n)

    def call_site(self, sql: str) -> str | None:
        """The application frame that first ran ``sql`` (cached per statement text)."""
        return _cached_site(self.call_sites, sql)

    def outbound_site(self, method: str, host: str, template: str) -> str | None:
        """The application frames that first made a call to this endpoint.

        Cached per ``(method, host, template)``, so the stack is walked once
        per endpoint (as :meth:`call_site` does per statement); the flusher
        puts it on the endpoint's :class:`~perfpilot.app_records.OutboundRow`
        and ``http`` spans. Called by the outbound hooks while the app's
        frames are on the stack (at the call, not when a streamed body ends).
        """
        return _cached_site(self.outbound_sites, (method, host, template))

    # -- the flusher's side ----------------------------------------------------
    def collect(self) -> Interval:
        """Swap out the current interval and return it (for the flusher)."""
        now = time.time()
        with self._lock:
            interval = self._interval
            self._interval = Interval(now)
        return interval

    def reset_after_fork(self) -> None:
        """Forget what the parent recorded (it flushes its own) and re-create the lock."""
        self._lock = threading.Lock()
        self._interval = Interval(time.time())

    # -- helpers (called with the lock held) -----------------------------------
    def _new_key(self, table: dict[Any, Any], key: Any, other: Any, factory: Any) -> Any:
        if len(table) >= self.max_keys:
            self._count_drop(self._interval, "keys")
            agg = table.get(other)
            if agg is None:
                agg = table[other] = factory()
            return agg
        agg = table[key] = factory()
        return agg

    def _new_statement(self, interval: Interval, table: dict[str, QueryAgg], sql: str) -> QueryAgg:
        """A new statement key of ``table``, or its ``<other>`` past ``max_keys``."""
        if interval.statement_keys >= self.max_keys:
            self._count_drop(interval, "keys")
            sql = OTHER
            agg = table.get(sql)
            if agg is not None:
                return agg
        interval.statement_keys += 1
        agg = table[sql] = QueryAgg()
        return agg

    @staticmethod
    def _count_drop(interval: Interval, kind: str, n: int = 1) -> None:
        interval.drops[kind] = interval.drops.get(kind, 0) + n

    def _add_queries(
        self,
        interval: Interval,
        queries: Iterable[tuple[str, float, float, int, bool, str]],
        route: str,
    ) -> float:
        """Add ``queries`` to the interval's aggregates; returns their total seconds."""
        tables = interval.statements
        table: dict[str, QueryAgg] = {}
        table_db: object = _NO_DB
        total = 0.0
        for sql, _start, duration, rows, failed, db in queries:
            total += duration
            if db is not table_db:  # a request's statements are mostly of one db
                table = tables.get((route, db)) or tables.setdefault((route, db), {})
                table_db = db
            agg = table.get(sql)
            if agg is None:
                agg = self._new_statement(interval, table, sql)
            agg.durations.append(duration)
            if rows > 0:
                agg.rows += rows
            if failed:
                agg.errors += 1
        return total

    def _add_calls(self, interval: Interval, calls: Iterable[tuple[Any, ...]], route: str) -> None:
        """Add one request's calls (or calls made outside requests) to the interval.

        A call is ``repeated`` when its identity matches an earlier call of the
        same batch (the same request), else ``repeated_across`` when it matches
        a successful call of an earlier request of the interval.
        """
        table = interval.outbound
        seen: set[Any] = set()
        failed: set[Any] = set()  # identities whose last call failed
        known = interval.identities  # other requests' successful calls
        remember: list[Any] = []
        for call in calls:
            (method, host, template, status, duration, b_in, b_out, cost,
             p_tokens, c_tokens, model, identity, _start) = call  # fmt: skip
            status_class = status // 100
            key = (host, template, method, status_class, route)
            agg = table.get(key)
            if agg is None:
                agg = self._new_key(
                    table, key, (host, OTHER, method, status_class, route), OutboundAgg
                )
            agg.count += 1
            if status == 0 or status >= 500:
                agg.errors += 1
            agg.latency.record(duration)
            agg.bytes_in += b_in
            agg.bytes_out += b_out
            agg.cost += cost
            agg.prompt_tokens += p_tokens
            agg.completion_tokens += c_tokens
            if model:
                agg.model = model
            if identity is not None:
                if identity in seen:
                    agg.repeated += 1
                    if identity in failed:
                        agg.retries += 1
                else:
                    seen.add(identity)
                    if identity in known:
                        agg.repeated_across += 1
                if status == 0 or status >= 500 or status in _RETRYABLE:
                    failed.add(identity)
                else:
                    failed.discard(identity)
                    if status < 400:
                        remember.append(identity)
        # only now: calls of this request must not count as repeats "across"
        room = self.max_identities - len(known)
        for identity in remember:
            if identity in known:
                continue
            if room <= 0:
                self._count_drop(interval, "outbound_identities")
                continue
            known.add(identity)
            room -= 1

    def _add_cache_events(
        self,
        interval: Interval,
        events: Iterable[tuple[str, str, str, bool | None, float, float]],
        route: str,
    ) -> None:
        table = interval.caches
        for cache, command, prefix, hit, _start, _duration in events:
            if hit is None:  # a write: its time is the request's, there is nothing to count
                continue
            key = (cache, command, prefix, route)
            counts = table.get(key)
            if counts is None:
                if len(table) >= self.max_keys:
                    self._count_drop(interval, "keys")
                    key = (cache, command, OTHER, route)
                    counts = table.setdefault(key, [0, 0])
                else:
                    counts = table[key] = [0, 0]
            counts[0 if hit else 1] += 1

    def _sample_gap(self) -> int:
        """Requests until the next random sample, counting the next one as 1.

        Drawn from the geometric distribution with ``sample_rate``: the same
        as one draw per request, at one draw per sample (a draw per request
        costs about 400 instructions).
        """
        p = self.sample_rate
        if p <= 0.0:
            return sys.maxsize
        if p >= 1.0:
            return 1
        return int(math.log1p(-self._random()) / math.log1p(-p)) + 1

    def _trace_reasons(
        self, ctx: RequestContext, duration: float, error: bool, sampled: bool
    ) -> tuple[str, ...]:
        """Why the request is traced; empty when it is not.

        Called when the request is slow, failed, ran at least
        ``repeat_threshold`` statements, or is the random sample (``sampled``,
        which starts the count to the next one).
        """
        if sampled:
            self._until_sample = self._sample_gap()
        reasons: list[str] = []
        if duration >= self.slow_s:
            reasons.append("slow")
        if error:
            reasons.append("error")
        if ctx.db_count >= self.repeat_threshold and _has_repeat(
            ctx.queries, self.repeat_threshold
        ):
            reasons.append("repeated_query")
        if not reasons and sampled:
            reasons.append("sample")
        return tuple(reasons)

    def _trace(
        self, ctx: RequestContext, route: str, duration: float, reasons: tuple[str, ...]
    ) -> dict[str, Any]:
        return {
            "at": self._wall_offset + ctx.started,
            "route": route,
            "method": ctx.method,
            "status": 500 if ctx.error else ctx.status,
            "duration_s": duration,
            "reasons": reasons,
            # offsets from the request's start; a copy, as open events still change
            "queries": [(q[0], q[1] - ctx.started, q[2], q[3], q[4], q[5]) for q in ctx.queries],
            "calls": list(ctx.calls),
            "cache_events": list(ctx.cache_events),
            "dropped": ctx.dropped,
        }


# A request's statements into the interval, at finish(): Recorder._add_queries,
# or the same in C (``_speedups.add_queries``, about 250 instructions less per
# statement under callgrind: 6 130 -> 5 880), called as
# ``_add_queries(recorder, interval, queries, route)``.
_add_queries: Any = (
    Recorder._add_queries if speedups.active is None else speedups.active.add_queries
)


def _cached_site(sites: dict[Any, str | None], key: Any) -> str | None:
    """``sites[key]``, or the call site found now (the stack walked once per key;
    at ``MAX_CALL_SITES`` keys the cache starts again)."""
    try:
        return sites[key]
    except KeyError:
        pass
    site = find_call_site()
    if len(sites) >= MAX_CALL_SITES:
        sites.clear()
    sites[key] = site
    return site


_sql_of = operator.itemgetter(0)
_NO_DB = object()  # _add_queries: no table picked yet


def _has_repeat(queries: list[tuple[str, float, float, int, bool, str]], threshold: int) -> bool:
    """Whether one statement text occurs at least ``threshold`` times."""
    if len(queries) - len(set(map(_sql_of, queries))) < threshold - 1:
        return False  # too few duplicates in all for any text to reach it
    counts: dict[str, int] = {}
    for query in queries:
        sql = query[0]
        n = counts.get(sql, 0) + 1
        if n >= threshold:
            return True
        counts[sql] = n
    return False
