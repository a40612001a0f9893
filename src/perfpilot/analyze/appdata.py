"""Everything the in-app recorders stored about one service over one window.

:class:`AppData` is the input of the detectors and of the report: the store
reads it once (:func:`perfpilot.store.app_data.read_app_data`), analysis
functions take it and never touch the store.
"""

from __future__ import annotations

import dataclasses

from perfpilot.app_records import AppRows, RequestRow


@dataclasses.dataclass(frozen=True)
class AppData(AppRows):
    """In-app aggregates for one window: the rows of
    :class:`~perfpilot.app_records.AppRows` (keyword arguments) merged over
    every process and interval in it (traces newest first, resource samples
    by time), and:

    Attributes:
        since: Start of the window (Unix time).
        until: End of the window (Unix time).
        service: Service name, or ``None`` for every service in the store.
        timeline: Request aggregates per minute, as ``(minute, row)`` pairs.
    """

    since: float
    until: float
    service: str | None = None
    timeline: tuple[tuple[float, RequestRow], ...] = ()

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
