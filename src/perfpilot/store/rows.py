"""A load run as table rows, and back: the part of a store no backend owns.

Each backend runs its own SQL, but the rows it writes and reads are the same:
the tuples built here, in the column order named by the ``*_COLUMNS``
constants (the run id is not part of them; backends add it). Histograms are
stored in their binary form; small mappings (config, counters, tags, errors by
kind) are compact JSON with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from perfpilot.errors import StoreError
from perfpilot.records import LoadResult, NameStats, SecondStats, ThresholdResult
from perfpilot.stats.histogram import Histogram
from perfpilot.store.base import RunSummary

RUN_COLUMNS = (
    "kind",
    "name",
    "started_at",
    "ended_at",
    "config_json",
    "counters_json",
    "vus_json",
    "aborted",
    "requests",
    "errors",
    "passed",
    "p95_ms",
    "created_at",
)
NAME_COLUMNS = ("name", "tags_json", "checks_json")
SERIES_COLUMNS = ("name", "second", "requests", "errors_json", "latency", "service")
THRESHOLD_COLUMNS = ("idx", "metric", "expression", "passed", "observed", "aborted")
SUMMARY_COLUMNS = (
    "id",
    "name",
    "kind",
    "started_at",
    "ended_at",
    "requests",
    "errors",
    "passed",
    "aborted",
    "p95_ms",
)

Row = tuple[Any, ...]


def run_row(result: LoadResult, *, kind: str, created_at: float) -> Row:
    """The ``runs`` row of ``result``, in :data:`RUN_COLUMNS` order.

    The summary columns come from the whole run merged: ``requests``,
    ``errors``, ``passed`` (``None`` without thresholds) and ``p95_ms`` (the
    95th percentile of intended-time latency, ``None`` without requests).

    Args:
        result: The run.
        kind: What produced the run.
        created_at: Unix time at which the run is saved.
    """
    totals = result.totals()
    passed = None if not result.thresholds else result.passed
    return (
        kind,
        result.name,
        float(result.started_at),
        float(result.ended_at),
        _dumps(result.config),
        _dumps(result.counters),
        _dumps({str(k): v for k, v in result.vus.items()}),
        result.aborted,
        totals.requests,
        totals.error_count,
        passed,
        p95_ms(totals.latency),
        created_at,
    )


def name_rows(result: LoadResult) -> Iterator[Row]:
    """The ``run_names`` rows of ``result``, in :data:`NAME_COLUMNS` order."""
    for name, stats in sorted(result.names.items()):
        yield (name, _dumps(stats.tags), _dumps(stats.checks))


def series_rows(result: LoadResult) -> Iterator[Row]:
    """The ``run_series`` rows of ``result``, in :data:`SERIES_COLUMNS` order."""
    for name, stats in sorted(result.names.items()):
        for second, one in sorted(stats.seconds.items()):
            yield (
                name,
                second,
                one.requests,
                _dumps(one.errors),
                one.latency.to_bytes(),
                one.service.to_bytes(),
            )


def threshold_rows(result: LoadResult) -> Iterator[Row]:
    """The ``run_thresholds`` rows of ``result``, in :data:`THRESHOLD_COLUMNS` order."""
    for idx, verdict in enumerate(result.thresholds):
        yield (
            idx,
            verdict.metric,
            verdict.expression,
            verdict.passed,
            verdict.observed,
            verdict.aborted,
        )


def summary_from_row(row: Sequence[Any]) -> RunSummary:
    """A :class:`RunSummary` from a row in :data:`SUMMARY_COLUMNS` order."""
    run_id, name, kind, started_at, ended_at, requests, errors, passed, aborted, p95 = row
    return RunSummary(
        id=int(run_id),
        name=str(name),
        kind=str(kind),
        started_at=float(started_at),
        ended_at=float(ended_at),
        requests=int(requests),
        errors=int(errors),
        passed=None if passed is None else bool(passed),
        aborted=None if aborted is None else str(aborted),
        p95_ms=None if p95 is None else float(p95),
    )


def read_run(conn: Any, run_id: int, mark: str) -> LoadResult:
    """Read one run through a DB-API connection (inside the caller's transaction).

    Args:
        conn: A connection whose ``execute`` returns a cursor (sqlite3, psycopg).
        run_id: The run's id.
        mark: The driver's parameter placeholder (``?`` or ``%s``).

    Raises:
        StoreError: There is no run with this id.
    """
    run = conn.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = {mark}", (run_id,)
    ).fetchone()
    if run is None:
        raise StoreError(f"no run with id {run_id}")
    names = conn.execute(
        f"SELECT {', '.join(NAME_COLUMNS)} FROM run_names WHERE run_id = {mark} ORDER BY name",
        (run_id,),
    ).fetchall()
    series = conn.execute(
        f"SELECT {', '.join(SERIES_COLUMNS)} FROM run_series WHERE run_id = {mark}"
        " ORDER BY name, second",
        (run_id,),
    ).fetchall()
    thresholds = conn.execute(
        f"SELECT {', '.join(THRESHOLD_COLUMNS)} FROM run_thresholds WHERE run_id = {mark}"
        " ORDER BY idx",
        (run_id,),
    ).fetchall()
    return result_from_rows(run_id, run, names, series, thresholds)


def result_from_rows(
    run_id: int,
    run: Sequence[Any],
    names: Iterable[Sequence[Any]],
    series: Iterable[Sequence[Any]],
    thresholds: Iterable[Sequence[Any]],
) -> LoadResult:
    """Rebuild a :class:`LoadResult` from its rows.

    Args:
        run_id: The run's id, for error messages.
        run: The ``runs`` row, in :data:`RUN_COLUMNS` order.
        names: ``run_names`` rows, in :data:`NAME_COLUMNS` order.
        series: ``run_series`` rows, in :data:`SERIES_COLUMNS` order.
        thresholds: ``run_thresholds`` rows, in :data:`THRESHOLD_COLUMNS`
            order, sorted by ``idx``.

    Returns:
        The run as it was saved.

    Raises:
        StoreError: A row does not decode (the store is damaged).
    """
    try:
        values = dict(zip(RUN_COLUMNS, run, strict=True))
        result = LoadResult(
            name=str(values["name"]),
            started_at=float(values["started_at"]),
            ended_at=float(values["ended_at"]),
            config=dict(_loads(values["config_json"])),
            counters={str(k): int(v) for k, v in _loads(values["counters_json"]).items()},
            vus={int(k): int(v) for k, v in _loads(values["vus_json"]).items()},
            aborted=None if values["aborted"] is None else str(values["aborted"]),
        )
        for name, tags_json, checks_json in names:
            result.names[str(name)] = NameStats(
                name=str(name),
                tags={str(k): str(v) for k, v in _loads(tags_json).items()},
                checks={str(k): [int(v[0]), int(v[1])] for k, v in _loads(checks_json).items()},
            )
        for name, second, requests, errors_json, latency, service in series:
            result.name_stats(str(name)).seconds[int(second)] = SecondStats(
                latency=Histogram.from_bytes(bytes(latency)),
                service=Histogram.from_bytes(bytes(service)),
                requests=int(requests),
                errors={str(k): int(v) for k, v in _loads(errors_json).items()},
            )
        for _idx, metric, expression, passed, observed, aborted in thresholds:
            result.thresholds.append(
                ThresholdResult(
                    metric=str(metric),
                    expression=str(expression),
                    passed=bool(passed),
                    observed=None if observed is None else float(observed),
                    aborted=bool(aborted),
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise StoreError(f"run {run_id} is damaged in the store: {exc}") from None
    return result


def p95_ms(histogram: Histogram) -> float | None:
    """The 95th percentile of ``histogram`` in milliseconds, ``None`` when empty."""
    if histogram.count == 0:
        return None
    return histogram.percentile(95) * 1000.0


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _loads(text: Any) -> Any:
    return json.loads(text)
