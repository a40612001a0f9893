"""Load-run detectors: saturation (latency rising while throughput stays flat as
load grows) and errors that appear only under load, with worker and pool advice.

The offered load of each second comes from the run's executor (virtual users
for closed-model executors, the arrival rate for open-model ones). Seconds are
ranked by offered load; the lowest third is the baseline and the highest third
the peak, so the comparison holds for ramps up, down and steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.analyze.remedies import pool_code, workers_code
from perfpilot.load.plan import ExecutorSpec, Stage
from perfpilot.records import LoadResult, SecondStats

#: Least ratio of peak to baseline offered load for the run to count as growing.
MIN_LOAD_GROWTH = 1.5


@dataclasses.dataclass(frozen=True)
class LoadLevel:
    """Totals of a set of seconds at similar offered load.

    Attributes:
        offered: Mean offered load (VUs or iterations per second).
        seconds: Seconds in the set.
        requests: Requests finished.
        errors: Failed requests.
        p95_ms: 95th percentile latency.
    """

    offered: float
    seconds: int
    requests: int
    errors: int
    p95_ms: float

    @property
    def throughput(self) -> float:
        """Requests finished per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_rate(self) -> float:
        """Failed requests over requests (0 without requests)."""
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with throughput and error rate."""
        return dataclasses.asdict(self) | {
            "throughput": self.throughput,
            "error_rate": self.error_rate,
        }


def executor_of(config: Mapping[str, Any]) -> ExecutorSpec | None:
    """The executor of a stored run configuration, or ``None`` when absent or unreadable."""
    raw = config.get("executor")
    if not isinstance(raw, Mapping):
        return None
    try:
        return ExecutorSpec(
            kind=raw["kind"],
            vus=int(raw.get("vus", 1)),
            duration_s=float(raw.get("duration_s", 10.0)),
            stages=tuple(
                Stage(float(s["duration_s"]), float(s["target"])) for s in raw.get("stages", ())
            ),
            rate=float(raw.get("rate", 0.0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def load_levels(load: LoadResult) -> tuple[LoadLevel, LoadLevel] | None:
    """Baseline (lowest third of seconds by offered load) and peak (highest third).

    Returns ``None`` when the run has fewer than 6 seconds with requests or no
    readable executor.
    """
    executor = executor_of(load.config)
    if executor is None:
        return None
    per_second: dict[int, SecondStats] = {}
    for stats in load.names.values():
        for second, data in stats.seconds.items():
            per_second.setdefault(second, SecondStats()).merge(data)
    seconds = sorted(s for s, data in per_second.items() if data.requests)
    if len(seconds) < 6:
        return None
    offered = {s: executor.target_at(s + 0.5) for s in seconds}
    if not executor.open_model and load.vus:
        offered = {s: float(load.vus.get(s, offered[s])) for s in seconds}
    ranked = sorted(seconds, key=lambda s: (offered[s], s))
    third = len(ranked) // 3
    return _level(ranked[:third], offered, per_second), _level(ranked[-third:], offered, per_second)


def _level(
    seconds: list[int], offered: dict[int, float], data: dict[int, SecondStats]
) -> LoadLevel:
    total = SecondStats()
    for second in seconds:
        total.merge(data[second])
    return LoadLevel(
        offered=sum(offered[s] for s in seconds) / len(seconds),
        seconds=len(seconds),
        requests=total.requests,
        errors=total.error_count,
        p95_ms=total.latency.percentile(95) * 1000 if total.latency.count else 0.0,
    )


def saturation(load: LoadResult, app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Saturation and errors under load, from a load run whose offered load grew.

    Saturation: from baseline to peak, the offered load grew at least
    :data:`MIN_LOAD_GROWTH` times, throughput grew at most
    ``saturation_max_throughput_growth`` times and p95 latency at least
    ``saturation_min_latency_growth`` times. Errors under load: the peak's
    error rate is at least ``error_min_rate`` (and ``error_min_count`` errors)
    and at least five times the baseline's.
    """
    levels = load_levels(load)
    if levels is None:
        return []
    low, high = levels
    if low.offered <= 0 or high.offered / low.offered < MIN_LOAD_GROWTH:
        return []
    evidence: dict[str, Any] = {
        "run": load.name,
        "baseline": low.to_dict(),
        "peak": high.to_dict(),
        "load_growth": high.offered / low.offered,
        "throughput_growth": high.throughput / low.throughput if low.throughput else 0.0,
        "latency_growth": high.p95_ms / low.p95_ms if low.p95_ms else 0.0,
    }
    advice, code, language = _capacity_advice(app, options)
    findings = []
    flat = evidence["throughput_growth"] <= options.saturation_max_throughput_growth
    if flat and evidence["latency_growth"] >= options.saturation_min_latency_growth:
        findings.append(
            Finding(
                id=finding_id("saturation", load.name),
                kind="saturation",
                severity="high",
                title=(
                    f"Saturation: load x{evidence['load_growth']:.1f}, throughput stays near "
                    f"{high.throughput:.0f} req/s while p95 goes {low.p95_ms:.0f} -> "
                    f"{high.p95_ms:.0f} ms"
                ),
                subject=load.name,
                evidence=evidence,
                impact=Impact(
                    time_per_request_s=max(0.0, high.p95_ms - low.p95_ms) / 1000,
                    requests_per_s=high.throughput,
                    note=f"capacity is about {max(low.throughput, high.throughput):.0f} req/s; "
                    "past it, requests queue",
                ),
                fix=Fix(summary=advice, code=code, language=language),
                confidence=0.7,
            )
        )
    if (
        high.errors >= options.error_min_count
        and high.error_rate >= options.error_min_rate
        and high.error_rate >= 5 * low.error_rate
    ):
        findings.append(
            Finding(
                id=finding_id("errors_under_load", load.name),
                kind="errors_under_load",
                severity="critical" if high.error_rate >= 0.1 else "high",
                title=(
                    f"Errors appear under load: {low.error_rate:.1%} at "
                    f"{low.offered:.0f}, {high.error_rate:.1%} at {high.offered:.0f} "
                    "(offered load)"
                ),
                subject=load.name,
                evidence=evidence,
                impact=Impact(note="failed requests at peak load"),
                fix=Fix(
                    summary="Errors start when the service saturates. " + advice,
                    code=code,
                    language=language,
                ),
                confidence=0.6,
            )
        )
    return findings


def _capacity_advice(app: AppData, options: DiagnoseOptions) -> tuple[str, str, str]:
    waits = [p for p in app.pools if p.checkouts and p.wait_s / p.checkouts * 1000 >= 1.0]
    if waits:
        pool = max(waits, key=lambda p: p.wait_s)
        size = max(pool.size + 1, pool.checked_out_max + pool.overflow_max + 2)
        code, language = pool_code(size, max(5, size // 2))
        return (
            f"Requests wait for database connections (pool {pool.pool}, size {pool.size}): "
            f"raise the pool to about {size} within the database's connection limit.",
            code,
            language,
        )
    cores = options.cores
    workers = f"{2 * cores + 1}" if cores else "2 x cores + 1"
    code, language = workers_code(cores)
    return (
        f"Add capacity where the time goes: run {workers} sync workers (gunicorn) or one "
        "async worker per core, then fix the top findings of the slowest routes.",
        code,
        language,
    )
