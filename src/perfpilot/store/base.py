"""The backend-neutral store interface: what every store backend provides.

A store keeps load runs (:class:`~perfpilot.records.LoadResult`) and reads
them back, whole (:meth:`Store.get_run`) or as one-line summaries
(:meth:`Store.list_runs`). It also keeps what in-app monitoring observed
(:class:`~perfpilot.app_records.AppSnapshot`, appended by
:meth:`Store.save_app_snapshot`) and reads it back merged across processes,
hosts and flush intervals (``app_*`` methods). SQLite
(:mod:`perfpilot.store.sqlite`) is the embedded default; PostgreSQL
(:mod:`perfpilot.store.postgres`) implements the same interface over the same
tables, for a store shared by many hosts.

Time filters of the ``app_*`` reads apply to the start of the flush interval a
row belongs to: ``since <= started_at < until``.
"""

from __future__ import annotations

import abc
import dataclasses
from types import TracebackType
from typing import Self

from perfpilot.app_records import (
    AppSnapshot,
    CacheRow,
    OutboundRow,
    PoolRow,
    ProfileRow,
    QueryRow,
    RequestRow,
    ResourceSample,
    Trace,
    UnitRow,
)
from perfpilot.records import LoadResult


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One stored run, as listed by ``perfpilot runs list``.

    Attributes:
        id: The run id, as returned by :meth:`Store.save_run`.
        name: The run label (scenario name or URL).
        kind: What produced the run, e.g. ``load``.
        started_at: Unix time at which the run started.
        ended_at: Unix time at which the run ended.
        requests: Requests that finished, over all names.
        errors: Failed requests, over all names and kinds.
        passed: ``True`` when every threshold passed, ``False`` when one
            failed, ``None`` when the run had no thresholds.
        aborted: Why the run stopped early, or ``None``.
        p95_ms: 95th percentile of the intended-time latency over the whole
            run, in milliseconds; ``None`` when there were no requests.
    """

    id: int
    name: str
    kind: str
    started_at: float
    ended_at: float
    requests: int
    errors: int
    passed: bool | None
    aborted: str | None
    p95_ms: float | None = None

    @property
    def duration_s(self) -> float:
        """Wall-clock length of the run, in seconds."""
        return max(0.0, self.ended_at - self.started_at)

    @property
    def error_rate(self) -> float:
        """Failed requests as a 0..1 fraction of all requests (0 when none)."""
        return self.errors / self.requests if self.requests else 0.0


class Store(abc.ABC):
    """A place where runs are saved and read back.

    Stores are context managers; leaving the ``with`` block closes them.

    Example:
        >>> from perfpilot.store import open_store
        >>> with open_store("sqlite://") as store:  # in memory
        ...     store.list_runs()
        []
    """

    @abc.abstractmethod
    def save_run(self, result: LoadResult, *, kind: str = "load") -> int:
        """Save one run in a single transaction.

        Either the whole run is saved or, on any failure, nothing is.

        Args:
            result: The run to save.
            kind: What produced the run (``load`` for ``perfpilot load``).

        Returns:
            The new run's id.

        Raises:
            StoreError: The store cannot be written.
        """

    @abc.abstractmethod
    def list_runs(self, limit: int = 50) -> list[RunSummary]:
        """Summaries of the stored runs, newest first.

        Args:
            limit: The most summaries to return.

        Returns:
            Up to ``limit`` summaries, by start time, newest first.

        Raises:
            StoreError: The store cannot be read.
        """

    @abc.abstractmethod
    def get_run(self, run_id: int) -> LoadResult:
        """Read one run back, exactly as it was saved.

        Args:
            run_id: The id :meth:`save_run` returned.

        Returns:
            The run; ``get_run(save_run(r)).to_dict() == r.to_dict()``.

        Raises:
            StoreError: There is no run with this id, or it cannot be read.
        """

    # -- in-app monitoring ------------------------------------------------------------

    @abc.abstractmethod
    def save_app_snapshot(self, snapshot: AppSnapshot) -> None:
        """Append one process's flush interval in a single transaction.

        Either every row of the snapshot is saved or, on any failure, none is.
        Any number of processes (and, with PostgreSQL, hosts) may save at once;
        rows are deltas, added up by the reads.

        Args:
            snapshot: What one process observed during one interval.

        Raises:
            StoreError: The store cannot be written.
        """

    @abc.abstractmethod
    def app_span(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> tuple[float, float] | None:
        """The start of the first and the end of the last flush interval that
        recorded requests, or ``None`` when none did.

        Rates (requests per second) divide by this span, not by the window
        asked for: an hour-long window with twenty seconds of traffic must not
        read as a hundredth of the real rate. Arguments as for
        :meth:`app_requests`.
        """

    @abc.abstractmethod
    def app_requests(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[RequestRow]:
        """Request aggregates merged per (route, method, status class).

        Counts and sums are added (money and durations correctly rounded with
        ``math.fsum``), latency histograms merged exactly.

        Args:
            since: Only intervals that started at or after this Unix time.
            until: Only intervals that started before this Unix time.
            service: Only this service (all services when ``None``).

        Returns:
            One row per key, sorted by key.

        Raises:
            StoreError: The store cannot be read.
        """

    @abc.abstractmethod
    def app_queries(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[QueryRow]:
        """Query aggregates merged per (fingerprint, route, db).

        The call site is any non-null one seen. Arguments as for :meth:`app_requests`.

        Returns:
            One row per key, sorted by (fingerprint, db, route).
        """

    @abc.abstractmethod
    def app_outbound(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[OutboundRow]:
        """Outbound calls merged per (host, template, method, status class, route).

        The model is the last non-null one written. Arguments as for :meth:`app_requests`.

        Returns:
            One row per key, sorted by key.
        """

    @abc.abstractmethod
    def app_caches(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[CacheRow]:
        """Cache hits and misses summed per (cache, command, prefix, route).

        Arguments as for :meth:`app_requests`.
        """

    @abc.abstractmethod
    def app_units(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[UnitRow]:
        """Business units, requests and cost summed per (unit, route).

        Arguments as for :meth:`app_requests`.
        """

    @abc.abstractmethod
    def app_pools(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[PoolRow]:
        """Connection-pool figures per pool: sums of sums, maxima of maxima.

        ``size`` is the largest configured size seen. Arguments as for
        :meth:`app_requests`.
        """

    @abc.abstractmethod
    def app_resources(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[ResourceSample]:
        """Resource samples, ordered by the time they were taken.

        Arguments as for :meth:`app_requests`.
        """

    @abc.abstractmethod
    def app_traces(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        service: str | None = None,
        limit: int = 100,
    ) -> list[Trace]:
        """Kept traces with their spans, newest first.

        Args:
            since: As for :meth:`app_requests`.
            until: As for :meth:`app_requests`.
            service: As for :meth:`app_requests`.
            limit: The most traces to return (at least 0).

        Raises:
            StoreError: The store cannot be read, or ``limit`` is negative.
        """

    @abc.abstractmethod
    def app_drops(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> dict[str, int]:
        """Items the recorders dropped, summed per kind (sorted by kind).

        Arguments as for :meth:`app_requests`.
        """

    @abc.abstractmethod
    def app_profiles(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[ProfileRow]:
        """Stack samples of the in-app sampler summed per (route, stack, via).

        Arguments as for :meth:`app_requests`.

        Returns:
            One row per key, sorted by key.
        """

    @abc.abstractmethod
    def app_timeline(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        service: str | None = None,
        route: str | None = None,
    ) -> list[tuple[float, RequestRow]]:
        """Request aggregates per minute, for charts.

        Rows are merged per (minute, route, method, status class), where the
        minute is that of the interval's start (a multiple of 60, Unix time).

        Args:
            since: As for :meth:`app_requests`.
            until: As for :meth:`app_requests`.
            service: As for :meth:`app_requests`.
            route: Only this route template.

        Returns:
            ``(minute, row)`` pairs, by minute, then by key.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's connection; closing twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
