"""What the recorder keeps per flush interval: one aggregate per key, a few lists.

:class:`Interval` holds the tables of one flush interval, keyed by route and
the like, each value a small mutable aggregate (:class:`RequestAgg`,
:class:`QueryAgg`, :class:`OutboundAgg`) the recorder updates under its lock
and the flusher turns into rows of :mod:`perfpilot.app_records`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perfpilot.stats.histogram import Histogram

# request durations kept as floats before they are absorbed into a histogram
DURATIONS_BUFFER = 1024


class RequestAgg:
    """Sums of one (route, method, status class) key.

    Durations are appended to a list (cheaper than a call per request) and
    absorbed into the histogram ``latency`` in numpy batches: when the list
    reaches ``DURATIONS_BUFFER`` (the recorder calls :meth:`absorb`) and when
    ``latency`` is read.
    """

    __slots__ = (
        "_latency",
        "bytes_out",
        "cache_hits",
        "cache_misses",
        "cache_time",
        "cost",
        "count",
        "db_count",
        "db_time",
        "durations",
        "errors",
        "out_count",
        "out_time",
        "uncompressed",
    )

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.durations: list[float] = []
        self._latency = Histogram()
        self.db_time = 0.0
        self.db_count = 0
        self.out_time = 0.0
        self.out_count = 0
        self.cost = 0.0
        self.cache_hits = 0
        self.cache_misses = 0
        self.cache_time = 0.0
        self.bytes_out = 0
        self.uncompressed = 0

    def absorb(self) -> None:
        """Move the buffered durations into the histogram."""
        if self.durations:
            self._latency.record_many(np.array(self.durations, dtype=np.float64))
            self.durations.clear()

    @property
    def latency(self) -> Histogram:
        """The durations as a histogram (the buffered ones absorbed first)."""
        self.absorb()
        return self._latency


class QueryAgg:
    """Sums of one (raw SQL, route, db) key; fingerprinted at flush.

    Durations are appended to a plain list on the request path and turned
    into a histogram in one numpy batch when the flusher reads ``latency``:
    a ``list.append`` costs less than a ``Histogram.record`` call (and than an
    ``array('d').append``, which parses its float argument twice), and a
    request may run many statements. The list holds the float objects the
    hooks made anyway, for one flush interval.
    """

    __slots__ = ("durations", "errors", "rows")

    def __init__(self) -> None:
        self.errors = 0
        self.rows = 0
        self.durations: list[float] = []

    @property
    def count(self) -> int:
        """Statements seen: one duration each."""
        return len(self.durations)

    @property
    def latency(self) -> Histogram:
        """The durations as a histogram (built on each access)."""
        histogram = Histogram()
        if self.durations:
            histogram.record_many(np.array(self.durations, dtype=np.float64))
        return histogram


class OutboundAgg:
    """Sums of one (host, template, method, status class, route) key."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "completion_tokens",
        "cost",
        "count",
        "errors",
        "latency",
        "model",
        "prompt_tokens",
        "repeated",
        "repeated_across",
        "retries",
    )

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.latency = Histogram()
        self.bytes_in = 0
        self.bytes_out = 0
        self.retries = 0
        self.cost = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.model: str | None = None
        self.repeated = 0
        self.repeated_across = 0


class Interval:
    """Everything recorded during one flush interval (raw, not yet fingerprinted)."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.requests: dict[tuple[str, str, int], RequestAgg] = {}
        # statements by (route, db), then by SQL text: one request's statements
        # share the first key, so adding each costs one lookup by a string
        # whose hash is cached; ``statement_keys`` counts the keys in all
        self.statements: dict[tuple[str, str], dict[str, QueryAgg]] = {}
        self.statement_keys = 0
        self.outbound: dict[tuple[str, str, str, int, str], OutboundAgg] = {}
        self.caches: dict[tuple[str, str, str, str], list[int]] = {}
        self.units: dict[tuple[str, str], list[float]] = {}
        self.traces: list[dict[str, Any]] = []
        self.resources: list[Any] = []
        self.pools: dict[str, list[float]] = {}
        self.drops: dict[str, int] = {}
        # identities (hash of method, URL, body) of successful outbound calls
        # made inside requests, for spotting identical calls across requests
        self.identities: set[Any] = set()

    @property
    def queries(self) -> dict[tuple[str, str, str], QueryAgg]:
        """The statements by ``(sql, route, db)`` (built on each access)."""
        return {
            (sql, route, db): agg
            for (route, db), table in self.statements.items()
            for sql, agg in table.items()
        }
