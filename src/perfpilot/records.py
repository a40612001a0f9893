"""Shared record types: what collectors produce and the store keeps.

A load run is a :class:`LoadResult`: its configuration, its start and end, and
for every request name a per-second series of :class:`SecondStats` (two latency
histograms and counters). Histograms merge exactly, so results from many
processes or machines combine without loss (:func:`merge_results`).

Units are in field names: ``*_s`` are seconds, ``*_at`` are Unix timestamps.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from perfpilot.errors import ConfigError
from perfpilot.stats.histogram import Histogram

RESULT_FORMAT = "perfpilot.load-result"
RESULT_VERSION = 1


@dataclasses.dataclass
class SecondStats:
    """What happened to one request name during one second of a run.

    Attributes:
        latency: Response times measured from the *intended* send time. In
            open-model runs this includes any wait caused by a stalled server
            or generator (no coordinated omission); in closed-model runs it
            equals ``service``.
        service: Response times measured from the moment the request was
            actually written.
        requests: Requests that finished (with a response or a transport error).
        errors: Failed requests by kind (``refused``, ``reset``, ``timeout``,
            ``tls``, ``protocol``, ``status_4xx``, ``status_5xx``, ...).
    """

    latency: Histogram = dataclasses.field(default_factory=Histogram)
    service: Histogram = dataclasses.field(default_factory=Histogram)
    requests: int = 0
    errors: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def error_count(self) -> int:
        """All failed requests, whatever their kind."""
        return sum(self.errors.values())

    def merge(self, other: SecondStats) -> None:
        """Add ``other`` into this one, exactly."""
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.requests += other.requests
        for kind, n in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + n

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; histograms are base64 of their binary form."""
        return {
            "latency": _b64(self.latency),
            "service": _b64(self.service),
            "requests": self.requests,
            "errors": dict(sorted(self.errors.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecondStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            latency=_unb64(data["latency"]),
            service=_unb64(data["service"]),
            requests=int(data["requests"]),
            errors={str(k): int(v) for k, v in data.get("errors", {}).items()},
        )


@dataclasses.dataclass
class NameStats:
    """The series of one request name.

    Attributes:
        name: The request name (the ``name`` tag).
        tags: Tags attached to every request of this name.
        seconds: Offset from the run start, in whole seconds, to its stats.
        checks: Check name to ``[passes, failures]``.
    """

    name: str
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: dict[int, SecondStats] = dataclasses.field(default_factory=dict)
    checks: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def second(self, offset: int) -> SecondStats:
        """The stats of second ``offset``, created empty if missing."""
        stats = self.seconds.get(offset)
        if stats is None:
            stats = self.seconds[offset] = SecondStats()
        return stats

    def totals(self, start: int | None = None, end: int | None = None) -> SecondStats:
        """All seconds in ``[start, end)`` merged into one :class:`SecondStats`."""
        total = SecondStats()
        for offset, stats in self.seconds.items():
            if (start is None or offset >= start) and (end is None or offset < end):
                total.merge(stats)
        return total

    def merge(self, other: NameStats, shift: int = 0) -> None:
        """Add ``other`` (same name) into this one, exactly.

        Args:
            other: The series to add.
            shift: Seconds to add to ``other``'s offsets (when runs started apart).
        """
        for key, value in other.tags.items():
            self.tags.setdefault(key, value)
        for offset, stats in other.seconds.items():
            self.second(offset + shift).merge(stats)
        for check, (passes, fails) in other.checks.items():
            mine = self.checks.setdefault(check, [0, 0])
            mine[0] += passes
            mine[1] += fails

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tags": dict(self.tags),
            "seconds": {str(k): v.to_dict() for k, v in sorted(self.seconds.items())},
            "checks": {k: list(v) for k, v in sorted(self.checks.items())},
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> NameStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=name,
            tags={str(k): str(v) for k, v in data.get("tags", {}).items()},
            seconds={int(k): SecondStats.from_dict(v) for k, v in data["seconds"].items()},
            checks={str(k): [int(v[0]), int(v[1])] for k, v in data.get("checks", {}).items()},
        )


@dataclasses.dataclass(frozen=True)
class ThresholdResult:
    """The verdict on one threshold expression.

    Attributes:
        metric: The metric with its tag filter, e.g. ``http_req_duration{name:login}``.
        expression: The condition, e.g. ``p(95)<500``.
        passed: Whether the condition held.
        observed: The observed value, in the unit of the condition
            (milliseconds for durations, a 0..1 fraction for rates, per second
            for ``http_reqs: rate``); ``None`` when there was no data.
        aborted: Whether this threshold stopped the run (``abort_on_fail``).
    """

    metric: str
    expression: str
    passed: bool
    observed: float | None
    aborted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThresholdResult:
        """Inverse of :meth:`to_dict`."""
        observed = data.get("observed")
        return cls(
            metric=str(data["metric"]),
            expression=str(data["expression"]),
            passed=bool(data["passed"]),
            observed=None if observed is None else float(observed),
            aborted=bool(data.get("aborted", False)),
        )


@dataclasses.dataclass
class LoadResult:
    """One load run, as stored and as written to a result file.

    Attributes:
        name: A label for the run (scenario name or URL).
        started_at: Unix time at which second 0 of the series began.
        ended_at: Unix time at which the run ended.
        config: The resolved run configuration (JSON-ready, secrets redacted).
        names: Per request name series.
        counters: Run-wide counters: ``iterations``, ``dropped_iterations``,
            ``vus_max``, and any other the executors keep.
        vus: Offset second to the number of active virtual users.
        thresholds: Threshold verdicts, filled in at the end of the run.
        aborted: Why the run stopped early, or ``None``.
    """

    name: str
    started_at: float
    ended_at: float
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    names: dict[str, NameStats] = dataclasses.field(default_factory=dict)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    vus: dict[int, int] = dataclasses.field(default_factory=dict)
    thresholds: list[ThresholdResult] = dataclasses.field(default_factory=list)
    aborted: str | None = None

    @property
    def duration_s(self) -> float:
        """Wall-clock length of the run."""
        return max(0.0, self.ended_at - self.started_at)

    @property
    def passed(self) -> bool:
        """True when every threshold passed (or there were none)."""
        return all(t.passed for t in self.thresholds)

    def name_stats(self, name: str) -> NameStats:
        """The series of ``name``, created empty if missing."""
        stats = self.names.get(name)
        if stats is None:
            stats = self.names[name] = NameStats(name=name)
        return stats

    def totals(self, names: Iterable[str] | None = None) -> SecondStats:
        """Everything (or the given names) over the whole run, merged."""
        total = SecondStats()
        wanted = None if names is None else set(names)
        for name, stats in self.names.items():
            if wanted is None or name in wanted:
                total.merge(stats.totals())
        return total

    def merge(self, other: LoadResult) -> None:
        """Add ``other`` into this one, exactly (for shards of one test).

        ``other``'s seconds are re-based onto this run's start, so shards that
        started a little apart line up on wall-clock seconds.
        """
        if other.started_at < self.started_at:
            self._shift(round(self.started_at - other.started_at))
            self.started_at = other.started_at
        shift = round(other.started_at - self.started_at)
        self.ended_at = max(self.ended_at, other.ended_at)
        for name, stats in other.names.items():
            self.name_stats(name).merge(stats, shift)
        for key, value in other.counters.items():
            self.counters[key] = self.counters.get(key, 0) + value
        for second, count in other.vus.items():
            self.vus[second + shift] = self.vus.get(second + shift, 0) + count
        if self.aborted is None:
            self.aborted = other.aborted

    def _shift(self, seconds: int) -> None:
        if seconds == 0:
            return
        for stats in self.names.values():
            stats.seconds = {k + seconds: v for k, v in stats.seconds.items()}
        self.vus = {k + seconds: v for k, v in self.vus.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready, versioned dict."""
        return {
            "format": RESULT_FORMAT,
            "version": RESULT_VERSION,
            "name": self.name,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "config": self.config,
            "names": {k: v.to_dict() for k, v in sorted(self.names.items())},
            "counters": dict(sorted(self.counters.items())),
            "vus": {str(k): v for k, v in sorted(self.vus.items())},
            "thresholds": [t.to_dict() for t in self.thresholds],
            "aborted": self.aborted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> LoadResult:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: ``data`` is not a perfpilot load result of a known version.
        """
        if not isinstance(data, Mapping) or data.get("format") != RESULT_FORMAT:
            raise ConfigError("not a perfpilot load result file", path=source)
        version = data.get("version")
        if version != RESULT_VERSION:
            raise ConfigError(
                f"unsupported result version {version!r} (this perfpilot reads {RESULT_VERSION})",
                path=source,
            )
        try:
            return cls(
                name=str(data["name"]),
                started_at=float(data["started_at"]),
                ended_at=float(data["ended_at"]),
                config=dict(data.get("config", {})),
                names={str(k): NameStats.from_dict(str(k), v) for k, v in data["names"].items()},
                counters={str(k): int(v) for k, v in data.get("counters", {}).items()},
                vus={int(k): int(v) for k, v in data.get("vus", {}).items()},
                thresholds=[ThresholdResult.from_dict(t) for t in data.get("thresholds", [])],
                aborted=data.get("aborted"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed load result: {exc}", path=source) from None


def merge_results(results: Iterable[LoadResult]) -> LoadResult:
    """Merge shards of one test (``--segment i/N``) into one result.

    Raises:
        ConfigError: ``results`` is empty.
    """
    items = list(results)
    if not items:
        raise ConfigError("nothing to merge")
    first = items[0]
    merged = LoadResult(
        name=first.name,
        started_at=first.started_at,
        ended_at=first.ended_at,
        config=dict(first.config),
    )
    for result in items:
        merged.merge(result)
    return merged


def _b64(histogram: Histogram) -> str:
    return base64.b64encode(histogram.to_bytes()).decode("ascii")


def _unb64(text: str) -> Histogram:
    return Histogram.from_bytes(base64.b64decode(text))
