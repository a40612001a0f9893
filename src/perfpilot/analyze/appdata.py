"""Everything the in-app recorders stored about one service over one window.

:class:`AppData` is the input of the detectors and of the report: the store
reads it once (:func:`perfpilot.store.app_data.read_app_data`), analysis
functions take it and never touch the store.
"""

from __future__ import annotations

import dataclasses

from perfpilot.app_records import (
    CacheRow,
    OutboundRow,
    PoolRow,
    QueryRow,
    RequestRow,
    ResourceSample,
    Trace,
    UnitRow,
)


@dataclasses.dataclass(frozen=True)
class AppData:
    """In-app aggregates for one window.

    Attributes:
        since: Start of the window (Unix time).
        until: End of the window (Unix time).
        service: Service name, or ``None`` for every service in the store.
        requests: Request aggregates per (route, method, status class).
        queries: Query aggregates per (fingerprint, route, db).
        outbound: Outbound-call aggregates.
        caches: Cache counters.
        units: Business-unit counters.
        pools: Connection-pool figures.
        resources: Resource samples, by time.
        traces: Kept traces, newest first.
        timeline: Request aggregates per minute, as ``(minute, row)`` pairs.
        drops: Items the recorders dropped, per kind.
    """

    since: float
    until: float
    service: str | None = None
    requests: tuple[RequestRow, ...] = ()
    queries: tuple[QueryRow, ...] = ()
    outbound: tuple[OutboundRow, ...] = ()
    caches: tuple[CacheRow, ...] = ()
    units: tuple[UnitRow, ...] = ()
    pools: tuple[PoolRow, ...] = ()
    resources: tuple[ResourceSample, ...] = ()
    traces: tuple[Trace, ...] = ()
    timeline: tuple[tuple[float, RequestRow], ...] = ()
    drops: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Length of the window, at least one second (rates divide by it)."""
        return max(1.0, self.until - self.since)

    @property
    def request_count(self) -> int:
        """Requests recorded in the window."""
        return sum(row.count for row in self.requests)

    @property
    def empty(self) -> bool:
        """Whether nothing at all was recorded."""
        return not (self.requests or self.queries or self.outbound or self.resources)
