"""Recording on the hot path, and the per-second chunks a worker emits.

A response costs two ``array.append`` calls and an integer increment; once a
second the arrays are absorbed into histograms in one numpy batch and shipped
as a :class:`Chunk` to whoever aggregates the run (the same process, or the
parent of a multi-process run).
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Mapping
from typing import Any

import numpy as np

from perfpilot.load.plan import Check
from perfpilot.records import LoadResult, NameStats, SecondStats
from perfpilot.stats.histogram import Histogram


class NameAccumulator:
    """The current second of one request name."""

    __slots__ = ("checks", "errors", "lat", "name", "requests", "svc", "tags")

    def __init__(self, name: str, tags: Mapping[str, str]) -> None:
        self.name = name
        self.tags = dict(tags)
        self.lat = array("d")
        self.svc = array("d")
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.checks: dict[str, list[int]] = {}

    def add_error(self, kind: str) -> None:
        """Count one failed request of ``kind`` (the request itself is counted by the caller)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def add_check(self, name: str, passed: bool) -> None:
        """Count one check outcome."""
        counts = self.checks.get(name)
        if counts is None:
            counts = self.checks[name] = [0, 0]
        counts[0 if passed else 1] += 1

    def take(self) -> tuple[SecondStats, dict[str, list[int]]] | None:
        """The stats gathered since the last call, or ``None`` when there are none."""
        if not self.requests and not self.checks:
            return None
        latency = Histogram()
        service = Histogram()
        if self.lat:
            latency.record_many(np.frombuffer(self.lat, dtype=np.float64))
            service.record_many(np.frombuffer(self.svc, dtype=np.float64))
        stats = SecondStats(latency, service, self.requests, self.errors)
        checks = self.checks
        self.lat = array("d")
        self.svc = array("d")
        self.requests = 0
        self.errors = {}
        self.checks = {}
        return stats, checks


@dataclasses.dataclass
class Chunk:
    """What one worker saw during one second.

    Attributes:
        second: Offset from the run start.
        names: Request name to ``(tags, stats, check deltas)``.
        counters: Counter deltas (``iterations``, ``dropped_iterations``...).
        vus: Virtual users active at the end of the second.
        vus_max: VUs created so far by the worker.
    """

    second: int
    names: dict[str, tuple[dict[str, str], SecondStats, dict[str, list[int]]]]
    counters: dict[str, int]
    vus: int
    vus_max: int

    def merge_into(self, result: LoadResult) -> None:
        """Add this chunk to ``result``, exactly."""
        for name, (tags, stats, checks) in self.names.items():
            result.name_stats(name).merge(NameStats(name, tags, {self.second: stats}, checks))
        for counter, n in self.counters.items():
            result.counters[counter] = result.counters.get(counter, 0) + n
        result.vus[self.second] = result.vus.get(self.second, 0) + self.vus


class Recorder:
    """All accumulators of one worker, and its run-wide counters."""

    def __init__(self) -> None:
        self.names: dict[str, NameAccumulator] = {}
        self.counters: dict[str, int] = {}

    def accumulator(self, name: str, tags: Mapping[str, str] | None = None) -> NameAccumulator:
        """The accumulator of ``name``, created on first use."""
        acc = self.names.get(name)
        if acc is None:
            acc = self.names[name] = NameAccumulator(name, tags or {})
        return acc

    def count(self, counter: str, n: int = 1) -> None:
        """Add ``n`` to a run-wide counter."""
        self.counters[counter] = self.counters.get(counter, 0) + n

    def flush(self, second: int, vus: int, vus_max: int) -> Chunk:
        """Everything recorded since the last flush, as the chunk of ``second``."""
        names: dict[str, tuple[dict[str, str], SecondStats, dict[str, list[int]]]] = {}
        for name, acc in self.names.items():
            taken = acc.take()
            if taken is not None:
                names[name] = (acc.tags, taken[0], taken[1])
        counters = self.counters
        self.counters = {}
        return Chunk(second, names, counters, vus, vus_max)


_MISSING = object()


def json_lookup(document: Any, path: str) -> Any:
    """Follow a dotted path (``items.0.id``) into parsed JSON; ``_MISSING`` if absent."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return _MISSING
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return node


def run_check(check: Check, status: int, body: bytes | None, parsed: list[Any]) -> bool:
    """Evaluate one check. ``parsed`` caches the JSON body across checks of one response."""
    if check.kind == "status":
        return status in check.statuses
    if check.kind == "body_contains":
        return body is not None and check.text.encode() in body
    if not parsed:
        import json

        try:
            parsed.append(json.loads(body or b""))
        except ValueError:
            parsed.append(_MISSING)
    document = parsed[0]
    if document is _MISSING:
        return False
    value = json_lookup(document, check.path)
    if value is _MISSING:
        return False
    return not check.has_expected or value == check.expected
