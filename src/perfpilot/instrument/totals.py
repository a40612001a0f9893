"""Cumulative totals since the process started, for the Prometheus endpoint.

The store keeps per-interval deltas; a Prometheus scrape wants counters that
only grow. :class:`Totals` adds up every :class:`~perfpilot.app_records.AppSnapshot`
the flusher builds (register :meth:`Totals.add` as a flusher observer) and
hands out consistent copies with :meth:`Totals.view`. It runs in the flusher's
thread and the scraper's, never on the request path.

Bounds: at most ``max_keys`` keys per table; later keys fold into ``<other>``
and each fold is counted in ``drops["totals_keys"]``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from perfpilot.app_records import AppSnapshot, ResourceSample
from perfpilot.stats.histogram import Histogram

OTHER = "<other>"
FOLD_DROP = "totals_keys"

K = TypeVar("K")
V = TypeVar("V")


@dataclasses.dataclass
class RequestTotals:
    """Requests of one (route, method, status class) since the start."""

    count: int = 0
    errors: int = 0
    latency: Histogram = dataclasses.field(default_factory=Histogram)
    db_time_s: float = 0.0
    db_count: int = 0
    outbound_time_s: float = 0.0
    outbound_count: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_time_s: float = 0.0


@dataclasses.dataclass
class OutboundTotals:
    """Outbound calls to one (host, template) since the start."""

    count: int = 0
    errors: int = 0
    time_s: float = 0.0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclasses.dataclass
class QueryTotals:
    """Executions of one (fingerprint, db) since the start; ``sql`` is normalized."""

    sql: str = ""
    count: int = 0
    errors: int = 0
    time_s: float = 0.0
    rows: int = 0


@dataclasses.dataclass
class CacheTotals:
    """Lookups of one cache since the start."""

    hits: int = 0
    misses: int = 0


@dataclasses.dataclass(frozen=True)
class TotalsView:
    """A consistent copy of the totals at one instant (safe to read at leisure).

    Attributes:
        requests: By (route, method, status class).
        outbound: By (host, template).
        queries: By (fingerprint, db).
        caches: By cache name.
        drops: Items dropped, by kind (the recorder's and the totals' own folds).
        resources: The most recent resource sample, if any.
        snapshots: Snapshots added so far.
    """

    requests: dict[tuple[str, str, int], RequestTotals]
    outbound: dict[tuple[str, str], OutboundTotals]
    queries: dict[tuple[str, str], QueryTotals]
    caches: dict[str, CacheTotals]
    drops: dict[str, int]
    resources: ResourceSample | None
    snapshots: int


class Totals:
    """Thread-safe running totals fed by flusher snapshots.

    Args:
        max_keys: Keys per table before further keys fold into ``<other>``.

    Example:
        >>> totals = Totals()
        >>> flusher = Flusher(recorder, sink, fingerprint, observers=[totals.add])  # doctest: +SKIP
        >>> totals.view().requests
        {}
    """

    def __init__(self, max_keys: int = 2000) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._requests: dict[tuple[str, str, int], RequestTotals] = {}
        self._outbound: dict[tuple[str, str], OutboundTotals] = {}
        self._queries: dict[tuple[str, str], QueryTotals] = {}
        self._caches: dict[str, CacheTotals] = {}
        self._drops: dict[str, int] = {}
        self._resources: ResourceSample | None = None
        self._snapshots = 0

    def add(self, snapshot: AppSnapshot) -> None:
        """Add one snapshot's deltas (a flusher observer)."""
        with self._lock:
            self._snapshots += 1
            for r in snapshot.requests:
                req = self._slot(
                    self._requests,
                    (r.route, r.method, r.status_class),
                    (OTHER, OTHER, r.status_class),
                    RequestTotals,
                )
                req.count += r.count
                req.errors += r.errors
                req.latency.merge(r.latency)
                req.db_time_s += r.db_time_s
                req.db_count += r.db_count
                req.outbound_time_s += r.outbound_time_s
                req.outbound_count += r.outbound_count
                req.cost_usd += r.cost_usd
                req.cache_hits += r.cache_hits
                req.cache_misses += r.cache_misses
                req.cache_time_s += r.cache_time_s
            for o in snapshot.outbound:
                out = self._slot(
                    self._outbound, (o.host, o.template), (OTHER, OTHER), OutboundTotals
                )
                out.count += o.count
                out.errors += o.errors
                out.time_s += o.latency.sum_s
                out.cost_usd += o.cost_usd
                out.prompt_tokens += o.prompt_tokens
                out.completion_tokens += o.completion_tokens
            for q in snapshot.queries:
                key = (q.fingerprint, q.db)
                query = self._slot(self._queries, key, (OTHER, OTHER), QueryTotals)
                if not query.sql:  # new: named after its statement unless it is the fold
                    query.sql = q.sql if self._queries.get(key) is query else OTHER
                query.count += q.count
                query.errors += q.errors
                query.time_s += q.latency.sum_s
                query.rows += q.rows
            for c in snapshot.caches:
                cache = self._slot(self._caches, c.cache, OTHER, CacheTotals)
                cache.hits += c.hits
                cache.misses += c.misses
            for kind, n in snapshot.drops.items():
                name = kind if kind in self._drops or len(self._drops) < self.max_keys else OTHER
                self._drops[name] = self._drops.get(name, 0) + n
            for sample in snapshot.resources:
                if self._resources is None or sample.at >= self._resources.at:
                    self._resources = sample

    def view(self) -> TotalsView:
        """A consistent deep copy of everything, taken under the lock."""
        with self._lock:
            return TotalsView(
                requests=_copy_table(self._requests, _copy_request),
                outbound=_copy_table(self._outbound, copy.copy),
                queries=_copy_table(self._queries, copy.copy),
                caches=_copy_table(self._caches, copy.copy),
                drops=dict(self._drops),
                resources=self._resources,
                snapshots=self._snapshots,
            )

    def reset_after_fork(self) -> None:
        """Start afresh in a forked child (its counters are its own) with a new lock."""
        self._lock = threading.Lock()
        self._clear()

    def _slot(self, table: dict[K, V], key: K, other: K, factory: Callable[[], V]) -> V:
        """The accumulator of ``key``; past ``max_keys``, the ``other`` one (counted)."""
        slot = table.get(key)
        if slot is not None:
            return slot
        if len(table) >= self.max_keys:
            self._drops[FOLD_DROP] = self._drops.get(FOLD_DROP, 0) + 1
            key = other
            slot = table.get(key)
            if slot is not None:
                return slot
        slot = table[key] = factory()
        return slot


def _copy_request(r: RequestTotals) -> RequestTotals:
    return dataclasses.replace(r, latency=r.latency.copy())


def _copy_table(table: dict[K, V], copier: Callable[[V], V]) -> dict[K, V]:
    return {key: copier(value) for key, value in table.items()}


_process: dict[str, Totals] = {}  # the one process-wide Totals, made on first use
_process_lock = threading.Lock()


def process_totals() -> Totals:
    """The process-wide totals that ``perfpilot.instrument(app)`` feeds (made on first use).

    A forked worker starts with empty totals: each process reports its own.
    """
    totals = _process.get("totals")
    if totals is not None:
        return totals
    with _process_lock:
        totals = _process.get("totals")
        if totals is None:
            totals = _process["totals"] = Totals()
            os.register_at_fork(after_in_child=totals.reset_after_fork)
        return totals
