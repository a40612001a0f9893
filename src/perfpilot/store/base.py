"""The backend-neutral store interface: what every store backend provides.

A store keeps load runs (:class:`~perfpilot.records.LoadResult`) and reads
them back, whole (:meth:`Store.get_run`) or as one-line summaries
(:meth:`Store.list_runs`). SQLite (:mod:`perfpilot.store.sqlite`) is the
embedded default; a PostgreSQL backend will implement the same interface over
the same tables.
"""

from __future__ import annotations

import abc
import dataclasses
from types import TracebackType
from typing import Self

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
