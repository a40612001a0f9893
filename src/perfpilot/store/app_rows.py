"""In-app snapshots as table rows, and merged reads back: shared by every backend.

A backend writes the rows :func:`snapshot_rows` yields into the tables of
:data:`TABLES` (columns :data:`COMMON_COLUMNS` then the table's own), and
reads with the ``SELECT`` that :func:`select_sql` builds in its placeholder
style. The ``merge_*`` functions add the selected rows up into the record types
of :mod:`perfpilot.app_records`: counts are summed, histograms merged exactly,
money and durations summed with :func:`math.fsum` (correctly rounded, so the
result does not depend on the order rows come back in), maxima maxed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from perfpilot.app_records import (
    AppSnapshot,
    CacheRow,
    OutboundRow,
    PoolRow,
    ProfileRow,
    QueryRow,
    RequestRow,
    ResourceSample,
    Span,
    Trace,
    UnitRow,
)
from perfpilot.errors import StoreError
from perfpilot.stats.histogram import Histogram
from perfpilot.store.dsn import redact_credentials

Row = tuple[Any, ...]

#: Columns every app table starts with: the flush interval the row belongs to.
COMMON_COLUMNS = ("service", "host", "pid", "started_at", "ended_at", "minute")


@dataclasses.dataclass(frozen=True)
class AppTable:
    """One app table: its name and own columns (after :data:`COMMON_COLUMNS`)."""

    name: str
    columns: tuple[str, ...]

    @property
    def insert_columns(self) -> tuple[str, ...]:
        """Every column a row of :func:`snapshot_rows` fills, in order."""
        return COMMON_COLUMNS + self.columns


REQUESTS = AppTable(
    "app_requests",
    ("route", "method", "status_class", "count", "errors", "latency", "db_time_s", "db_count",
     "outbound_time_s", "outbound_count", "cost_usd", "cache_hits", "cache_misses",
     "bytes_out", "uncompressed", "cache_time_s"),
)  # fmt: skip
QUERIES = AppTable(
    "app_queries",
    ("fingerprint", "sql", "db", "route", "count", "errors", "latency", "row_count", "call_site"),
)
OUTBOUND = AppTable(
    "app_outbound",
    ("remote_host", "template", "method", "status_class", "route", "count", "errors", "latency",
     "bytes_in", "bytes_out", "retries", "cost_usd", "prompt_tokens", "completion_tokens",
     "model", "repeated", "repeated_across", "call_site"),
)  # fmt: skip
CACHES = AppTable("app_caches", ("cache", "command", "prefix", "route", "hits", "misses"))
UNITS = AppTable("app_units", ("unit", "route", "units", "requests", "cost_usd"))
POOLS = AppTable(
    "app_pools",
    ("pool", "checkouts", "wait_s", "max_wait_s", "checked_out_max", "overflow_max", "size"),
)
RESOURCES = AppTable(
    "app_resources",
    ("sampled_at", "sample_pid", "rss_bytes", "cpu_percent", "threads", "open_files",
     "host_cpu_percent", "host_memory_used_bytes", "host_memory_total_bytes", "disk_read_bytes",
     "disk_write_bytes", "net_sent_bytes", "net_recv_bytes"),
)  # fmt: skip
TRACES = AppTable(
    "app_traces",
    ("request_at", "route", "method", "status", "duration_s", "reasons_json", "spans_json",
     "spans_dropped"),
)  # fmt: skip
DROPS = AppTable("app_drops", ("kind", "count"))
PROFILES = AppTable("app_profiles", ("route", "stack", "via", "samples"))

#: Every app table, in the order a snapshot is written.
TABLES = (REQUESTS, QUERIES, OUTBOUND, CACHES, UNITS, POOLS, RESOURCES, TRACES, DROPS, PROFILES)


def minute_of(started_at: float) -> int:
    """The start of the minute holding ``started_at`` (Unix seconds, a multiple of 60)."""
    return math.floor(started_at / 60) * 60


# -- writing ------------------------------------------------------------------------------


def snapshot_rows(snapshot: AppSnapshot) -> Iterator[tuple[AppTable, Iterator[Row]]]:
    """Each app table with the rows of ``snapshot`` for it (lazily built).

    Rows are in :attr:`AppTable.insert_columns` order. Empty tables are skipped.
    """
    common = (
        snapshot.service,
        snapshot.host,
        snapshot.pid,
        float(snapshot.started_at),
        float(snapshot.ended_at),
        minute_of(snapshot.started_at),
    )
    parts: tuple[tuple[AppTable, Sequence[Any], Callable[[Any], Row]], ...] = (
        (REQUESTS, snapshot.requests, request_values),
        (QUERIES, snapshot.queries, query_values),
        (OUTBOUND, snapshot.outbound, outbound_values),
        (CACHES, snapshot.caches, cache_values),
        (UNITS, snapshot.units, unit_values),
        (POOLS, snapshot.pools, pool_values),
        (RESOURCES, snapshot.resources, resource_values),
        (TRACES, snapshot.traces, trace_values),
        (DROPS, sorted(snapshot.drops.items()), drop_values),
        (PROFILES, snapshot.profiles, profile_values),
    )
    for table, items, values in parts:
        if items:
            yield table, (common + values(item) for item in items)


def request_values(row: RequestRow) -> Row:
    """The :data:`REQUESTS` columns of ``row``."""
    return (row.route, row.method, row.status_class, row.count, row.errors,
            row.latency.to_bytes(), float(row.db_time_s), row.db_count,
            float(row.outbound_time_s), row.outbound_count, float(row.cost_usd),
            row.cache_hits, row.cache_misses, row.bytes_out, row.uncompressed,
            float(row.cache_time_s))  # fmt: skip


def query_values(row: QueryRow) -> Row:
    """The :data:`QUERIES` columns of ``row``."""
    return (row.fingerprint, row.sql, row.db, row.route, row.count, row.errors,
            row.latency.to_bytes(), row.rows, row.call_site)  # fmt: skip


def outbound_values(row: OutboundRow) -> Row:
    """The :data:`OUTBOUND` columns of ``row``."""
    return (row.host, row.template, row.method, row.status_class, row.route, row.count,
            row.errors, row.latency.to_bytes(), row.bytes_in, row.bytes_out, row.retries,
            float(row.cost_usd), row.prompt_tokens, row.completion_tokens, row.model,
            row.repeated, row.repeated_across, row.call_site)  # fmt: skip


def cache_values(row: CacheRow) -> Row:
    """The :data:`CACHES` columns of ``row``."""
    return (row.cache, row.command, row.prefix, row.route, row.hits, row.misses)


def unit_values(row: UnitRow) -> Row:
    """The :data:`UNITS` columns of ``row``."""
    return (row.unit, row.route, row.units, row.requests, float(row.cost_usd))


def pool_values(row: PoolRow) -> Row:
    """The :data:`POOLS` columns of ``row``; a password in the pool name is masked."""
    return (redact_credentials(row.pool), row.checkouts, float(row.wait_s),
            float(row.max_wait_s), row.checked_out_max, row.overflow_max, row.size)  # fmt: skip


def resource_values(row: ResourceSample) -> Row:
    """The :data:`RESOURCES` columns of ``row``."""
    return (float(row.at), row.pid, row.rss_bytes, float(row.cpu_percent), row.threads,
            row.open_files, float(row.host_cpu_percent), row.host_memory_used_bytes,
            row.host_memory_total_bytes, row.disk_read_bytes, row.disk_write_bytes,
            row.net_sent_bytes, row.net_recv_bytes)  # fmt: skip


def trace_values(trace: Trace) -> Row:
    """The :data:`TRACES` columns of ``trace``; spans become JSON objects."""
    spans = [
        {"kind": s.kind, "name": s.name, "start_s": s.start_s, "duration_s": s.duration_s,
         "detail": s.detail}
        for s in trace.spans
    ]  # fmt: skip
    return (float(trace.at), trace.route, trace.method, trace.status, float(trace.duration_s),
            _dumps(list(trace.reasons)), _dumps(spans), trace.spans_dropped)  # fmt: skip


def drop_values(item: tuple[str, int]) -> Row:
    """The :data:`DROPS` columns of one ``(kind, count)`` item."""
    return (item[0], item[1])


def profile_values(row: ProfileRow) -> Row:
    """The :data:`PROFILES` columns of ``row``."""
    return (row.route, row.stack, row.via, row.samples)


# -- reading ------------------------------------------------------------------------------


def _window(
    mark: str, since: float | None, until: float | None, service: str | None
) -> tuple[list[str], list[Any]]:
    """``WHERE`` terms (and their parameters) for a read window."""
    where: list[str] = []
    params: list[Any] = []
    if service is not None:
        where.append(f"service = {mark}")
        params.append(service)
    if since is not None:
        # The minute bound is implied by the started_at one; it lets the
        # (service, minute) and (minute) indexes narrow the scan.
        where += [f"minute >= {mark}", f"started_at >= {mark}"]
        params += [minute_of(since), float(since)]
    if until is not None:
        where += [f"minute < {mark}", f"started_at < {mark}"]
        params += [float(until), float(until)]
    return where, params


def span_sql(
    table: AppTable,
    *,
    mark: str,
    since: float | None = None,
    until: float | None = None,
    service: str | None = None,
) -> tuple[str, list[Any]]:
    """``SELECT MIN(started_at), MAX(ended_at)`` of ``table``'s intervals in a window."""
    where, params = _window(mark, since, until, service)
    sql = f"SELECT MIN(started_at), MAX(ended_at) FROM {table.name}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, params


def select_sql(
    table: AppTable,
    *,
    mark: str,
    since: float | None = None,
    until: float | None = None,
    service: str | None = None,
    route: str | None = None,
    lead: tuple[str, ...] = (),
    order_by: str = "id",
    limit: int | None = None,
) -> tuple[str, list[Any]]:
    """The ``SELECT`` of ``table``'s own columns for a read, and its parameters.

    Args:
        table: The table to read.
        mark: The backend's placeholder (``?`` or ``%s``).
        since: Only intervals that started at or after this Unix time.
        until: Only intervals that started before this Unix time.
        service: Only this service.
        route: Only this route (the table must have a ``route`` column).
        lead: Columns selected before the table's own (e.g. ``minute``).
        order_by: The ``ORDER BY`` clause.
        limit: The most rows, or ``None`` for all.
    """
    where, params = _window(mark, since, until, service)
    if route is not None:
        where.append(f"route = {mark}")
        params.append(route)
    sql = f"SELECT {', '.join(lead + table.columns)} FROM {table.name}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(limit)
    return sql, params


# How each column of a table merges across rows.
_KEY, _SUM, _FSUM, _MAX, _HIST, _FIRST, _LAST = range(7)

_REQUEST_MERGE = (_KEY, _KEY, _KEY, _SUM, _SUM, _HIST, _FSUM, _SUM, _FSUM, _SUM, _FSUM, _SUM, _SUM,
                  _SUM, _SUM, _FSUM)  # fmt: skip
_QUERY_MERGE = (_KEY, _FIRST, _KEY, _KEY, _SUM, _SUM, _HIST, _SUM, _FIRST)
_OUTBOUND_MERGE = (_KEY, _KEY, _KEY, _KEY, _KEY, _SUM, _SUM, _HIST, _SUM, _SUM, _SUM, _FSUM,
                   _SUM, _SUM, _LAST, _SUM, _SUM, _FIRST)  # fmt: skip
_CACHE_MERGE = (_KEY, _KEY, _KEY, _KEY, _SUM, _SUM)
_UNIT_MERGE = (_KEY, _KEY, _SUM, _SUM, _FSUM)
_POOL_MERGE = (_KEY, _SUM, _FSUM, _MAX, _MAX, _MAX, _MAX)
_PROFILE_MERGE = (_KEY, _KEY, _KEY, _SUM)


def merge_requests(rows: Iterable[Sequence[Any]]) -> list[RequestRow]:
    """Rows of :data:`REQUESTS` merged per (route, method, status class), sorted."""
    return [RequestRow(*values) for values in _merge(rows, _REQUEST_MERGE)]


def merge_timeline(rows: Iterable[Sequence[Any]]) -> list[tuple[float, RequestRow]]:
    """Rows of ``minute`` + :data:`REQUESTS` merged per minute and request key, by minute."""
    return [
        (float(values[0]), RequestRow(*values[1:]))
        for values in _merge(rows, (_KEY, *_REQUEST_MERGE))
    ]


def merge_queries(rows: Iterable[Sequence[Any]]) -> list[QueryRow]:
    """Rows of :data:`QUERIES` merged per (fingerprint, db, route), sorted.

    The statement text and the call site are the first non-null ones seen.
    """
    return [QueryRow(*values) for values in _merge(rows, _QUERY_MERGE)]


def merge_outbound(rows: Iterable[Sequence[Any]]) -> list[OutboundRow]:
    """Rows of :data:`OUTBOUND` merged per (host, template, method, status class, route).

    The model is the last non-null one (rows come in the order they were written),
    the call site the first non-null one.
    """
    return [OutboundRow(*values) for values in _merge(rows, _OUTBOUND_MERGE)]


def merge_caches(rows: Iterable[Sequence[Any]]) -> list[CacheRow]:
    """Rows of :data:`CACHES` merged per (cache, command, prefix, route), sorted."""
    return [CacheRow(*values) for values in _merge(rows, _CACHE_MERGE)]


def merge_units(rows: Iterable[Sequence[Any]]) -> list[UnitRow]:
    """Rows of :data:`UNITS` merged per (unit, route), sorted."""
    return [UnitRow(*values) for values in _merge(rows, _UNIT_MERGE)]


def merge_pools(rows: Iterable[Sequence[Any]]) -> list[PoolRow]:
    """Rows of :data:`POOLS` merged per pool: sums of sums, maxima of maxima (and size)."""
    return [PoolRow(*values) for values in _merge(rows, _POOL_MERGE)]


def merge_profiles(rows: Iterable[Sequence[Any]]) -> list[ProfileRow]:
    """Rows of :data:`PROFILES` summed per (route, stack, via), sorted."""
    return [ProfileRow(*values) for values in _merge(rows, _PROFILE_MERGE)]


def merge_drops(rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    """Rows of :data:`DROPS` summed per kind (sorted by kind)."""
    totals: dict[str, int] = {}
    for kind, count in rows:
        totals[str(kind)] = totals.get(str(kind), 0) + int(count)
    return dict(sorted(totals.items()))


def resource_from_row(row: Sequence[Any]) -> ResourceSample:
    """A :class:`ResourceSample` from a row of :data:`RESOURCES`."""
    try:
        (at, pid, rss, cpu, threads, files, host_cpu, mem_used, mem_total,
         disk_read, disk_write, net_sent, net_recv) = row  # fmt: skip
        return ResourceSample(
            at=float(at),
            pid=int(pid),
            rss_bytes=int(rss),
            cpu_percent=float(cpu),
            threads=int(threads),
            open_files=int(files),
            host_cpu_percent=float(host_cpu),
            host_memory_used_bytes=int(mem_used),
            host_memory_total_bytes=int(mem_total),
            disk_read_bytes=int(disk_read),
            disk_write_bytes=int(disk_write),
            net_sent_bytes=int(net_sent),
            net_recv_bytes=int(net_recv),
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a resource sample is damaged in the store: {exc}") from None


def trace_from_row(row: Sequence[Any]) -> Trace:
    """A :class:`Trace` with its spans from a row of :data:`TRACES`."""
    try:
        at, route, method, status, duration_s, reasons_json, spans_json, dropped = row
        spans = tuple(
            Span(
                kind=str(s["kind"]),
                name=str(s["name"]),
                start_s=float(s["start_s"]),
                duration_s=float(s["duration_s"]),
                detail=dict(s["detail"]),
            )
            for s in json.loads(spans_json)
        )
        return Trace(
            at=float(at),
            route=str(route),
            method=str(method),
            status=int(status),
            duration_s=float(duration_s),
            reasons=tuple(str(r) for r in json.loads(reasons_json)),
            spans=spans,
            spans_dropped=int(dropped),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"a trace is damaged in the store: {exc}") from None


def _merge(rows: Iterable[Sequence[Any]], how: Sequence[int]) -> list[list[Any]]:
    """Group ``rows`` by their ``_KEY`` columns and merge the others as ``how`` says.

    Returns one list of column values per group, sorted by key.
    """
    keys = [i for i, kind in enumerate(how) if kind == _KEY]
    groups: dict[tuple[Any, ...], list[Any]] = {}
    try:
        for row in rows:
            key = tuple(row[i] for i in keys)
            acc = groups.get(key)
            if acc is None:
                groups[key] = [_start(kind, value) for kind, value in zip(how, row, strict=True)]
                continue
            for i, kind in enumerate(how):
                value = row[i]
                if kind == _SUM:
                    acc[i] += value
                elif kind == _FSUM:
                    acc[i].append(value)
                elif kind == _MAX:
                    acc[i] = max(acc[i], value)
                elif kind == _HIST:
                    acc[i].merge(Histogram.from_bytes(bytes(value)))
                elif (kind == _FIRST and acc[i] is None) or (kind == _LAST and value is not None):
                    acc[i] = value
        return [
            [_finish(kind, value) for kind, value in zip(how, groups[key], strict=True)]
            for key in sorted(groups)
        ]
    except (TypeError, ValueError) as exc:
        raise StoreError(f"app data is damaged in the store: {exc}") from None


def _start(kind: int, value: Any) -> Any:
    if kind == _FSUM:
        return [value]
    if kind == _HIST:
        return Histogram.from_bytes(bytes(value))
    return value


def _finish(kind: int, value: Any) -> Any:
    if kind == _FSUM:
        return math.fsum(value)
    if kind in (_SUM, _MAX):
        return value if isinstance(value, float) else int(value)
    return value


def _dumps(value: Any) -> str:
    # default=str: a detail the recorder could not make JSON-ready is kept as
    # text rather than failing the whole snapshot.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
