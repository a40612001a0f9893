"""The advisor's input: the statements a database runs, grouped by fingerprint.

A workload comes from one of four places:

* a file of SQL statements (:func:`sql_file_workload`), with the values as
  written;
* a PostgreSQL log with ``log_min_duration_statement`` (:func:`log_workload`),
  with the real values (substituted from ``DETAIL:  parameters:`` lines for
  prepared statements) and measured durations;
* ``pg_stat_statements`` (:func:`statements_workload`), whose texts carry
  ``$1``-style placeholders instead of values;
* the perfpilot store (:func:`app_data_workload`), whose query aggregates
  keep only the normalized text: the in-app recorder redacts literals and
  stores no parameter values, in aggregates and traces alike.

Statements are grouped by :func:`perfpilot.instrument.fingerprint.fingerprint`
(sqlglot, literals redacted). A query keeps one *example* with real values
when its source had one; otherwise the advisor fills the placeholders with
values sampled from the table (see :mod:`perfpilot.dbadvisor.params`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.dbadvisor.database import Database
from perfpilot.dbadvisor.sqlfile import SourceStatement, read_sql_file
from perfpilot.errors import UsageError
from perfpilot.instrument.fingerprint import fingerprint


@dataclasses.dataclass(frozen=True)
class Query:
    """One statement shape of the workload.

    Attributes:
        fingerprint: 16 hex digits, the same id the in-app recorder uses.
        sql: The normalized statement, values as ``?``.
        example: One statement as it ran, with its real values, when the
            source kept one (``None`` when only placeholders are known).
        calls: Executions seen (1 per statement for a SQL file).
        total_time_ms: Time spent in it, summed, when the source measured it.
        location: Where it was first seen (``file:line``, ``pg_stat_statements``,
            ``store``).
        rows_per_call: Rows each execution returned on average, when the
            source counted them (the store does): a ``LIMIT ?`` is costed
            with it rather than a guess.
    """

    fingerprint: str
    sql: str
    example: str | None
    calls: int = 1
    total_time_ms: float | None = None
    location: str = ""
    rows_per_call: float | None = None

    @property
    def mean_time_ms(self) -> float | None:
        """Mean time per execution, when measured."""
        if self.total_time_ms is None or self.calls <= 0:
            return None
        return self.total_time_ms / self.calls

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Query:
        """Inverse of :meth:`to_dict`."""
        total = data.get("total_time_ms")
        example = data.get("example")
        rows = data.get("rows_per_call")
        return cls(
            fingerprint=str(data["fingerprint"]),
            sql=str(data["sql"]),
            example=None if example is None else str(example),
            calls=int(data.get("calls", 1)),
            total_time_ms=None if total is None else float(total),
            location=str(data.get("location", "")),
            rows_per_call=None if rows is None else float(rows),
        )


@dataclasses.dataclass(frozen=True)
class Workload:
    """The queries to advise on.

    Attributes:
        source: ``sql``, ``log``, ``pg_stat_statements`` or ``store``.
        queries: One per fingerprint, most time (then most calls) first.
        window_s: Seconds the counts cover, when known (rates divide by it).
    """

    source: str
    queries: tuple[Query, ...]
    window_s: float | None = None


def group_statements(
    statements: Iterable[SourceStatement], *, dialect: str, source: str, path: str = ""
) -> Workload:
    """Group statements with real values by fingerprint.

    Args:
        statements: Statements read from a SQL file or a log.
        dialect: ``postgresql`` or ``sqlite`` (picks the SQL dialect).
        source: The workload's source name.
        path: The file, for each query's ``location``.

    Returns:
        The workload; each query keeps its first statement as its example.
    """
    groups: dict[str, Query] = {}
    for statement in statements:
        fid, normalized = fingerprint(statement.sql, dialect)
        known = groups.get(fid)
        if known is None:
            groups[fid] = Query(
                fingerprint=fid,
                sql=normalized,
                example=statement.sql,
                calls=1,
                total_time_ms=statement.duration_ms,
                location=f"{path}:{statement.line}" if path else "",
            )
            continue
        total = known.total_time_ms
        if statement.duration_ms is not None:
            total = (total or 0.0) + statement.duration_ms
        groups[fid] = dataclasses.replace(known, calls=known.calls + 1, total_time_ms=total)
    return Workload(source=source, queries=_ordered(groups.values()))


def sql_file_workload(path: str | Path, *, dialect: str) -> Workload:
    """The statements of a SQL file (separated by ``;``), grouped by fingerprint.

    Raises:
        ConfigError: The file is unreadable or malformed (with file and line).
    """
    return group_statements(read_sql_file(path), dialect=dialect, source="sql", path=str(path))


def log_workload(path: str | Path, *, dialect: str = "postgresql") -> Workload:
    """The timed statements of a PostgreSQL log, grouped by fingerprint.

    Raises:
        ConfigError: The file is unreadable or holds no timed statement.
    """
    from perfpilot.dbadvisor.pglog import read_pg_log

    return group_statements(read_pg_log(path), dialect=dialect, source="log", path=str(path))


def app_data_workload(app: AppData, *, dialect: str) -> Workload:
    """The queries the in-app recorder saw on databases of kind ``dialect``.

    Args:
        app: In-app data read from the store.
        dialect: ``postgresql`` or ``sqlite``: rows of other kinds are left out.

    Returns:
        One query per fingerprint (routes merged), without examples: the
        store keeps no parameter values.
    """
    groups: dict[str, Query] = {}
    rows: dict[str, int] = {}
    for row in app.queries:
        if row.db != dialect:
            continue
        known = groups.get(row.fingerprint)
        time_ms = row.latency.sum_s * 1000.0
        rows[row.fingerprint] = rows.get(row.fingerprint, 0) + row.rows
        if known is None:
            groups[row.fingerprint] = Query(
                fingerprint=row.fingerprint,
                sql=row.sql,
                example=None,
                calls=row.count,
                total_time_ms=time_ms,
                location=f"store ({row.call_site or row.route})",
            )
        else:
            groups[row.fingerprint] = dataclasses.replace(
                known,
                calls=known.calls + row.count,
                total_time_ms=(known.total_time_ms or 0.0) + time_ms,
            )
    for fid, query in groups.items():
        if query.calls > 0:
            groups[fid] = dataclasses.replace(query, rows_per_call=rows[fid] / query.calls)
    return Workload(source="store", queries=_ordered(groups.values()), window_s=app.duration_s)


def statements_workload(
    rows: Iterable[tuple[str, int, float]], *, window_s: float | None, dialect: str = "postgresql"
) -> Workload:
    """A workload from ``pg_stat_statements`` rows ``(query, calls, total_exec_time_ms)``.

    Statements of the catalog (``pg_catalog``, ``information_schema``) and
    of hypopg are left out; several rows with one fingerprint (per user or
    per ``queryid``) are merged.
    """
    groups: dict[str, Query] = {}
    for text, calls, total_ms in rows:
        lowered = text.lower()
        if "pg_catalog" in lowered or "information_schema" in lowered or "hypopg" in lowered:
            continue
        fid, normalized = fingerprint(text, dialect)
        known = groups.get(fid)
        if known is None:
            groups[fid] = Query(fid, normalized, None, calls, total_ms, "pg_stat_statements")
        else:
            groups[fid] = dataclasses.replace(
                known,
                calls=known.calls + calls,
                total_time_ms=(known.total_time_ms or 0.0) + total_ms,
            )
    return Workload("pg_stat_statements", _ordered(groups.values()), window_s)


def _ordered(queries: Iterable[Query]) -> tuple[Query, ...]:
    return tuple(
        sorted(queries, key=lambda q: (-(q.total_time_ms or 0.0), -q.calls, q.fingerprint))
    )


_STATEMENTS = """
SELECT query, calls, total_exec_time FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND calls > 0
ORDER BY total_exec_time DESC
LIMIT %s
"""


def database_statements_workload(db: Database, *, limit: int = 500) -> Workload:
    """The ``limit`` statements with the most total time in ``pg_stat_statements``.

    Args:
        db: An open PostgreSQL database.
        limit: The most rows read.

    Raises:
        UsageError: The database is not PostgreSQL, or lacks the extension.
    """
    if db.kind != "postgresql":
        raise UsageError("--from-statements reads pg_stat_statements: PostgreSQL only")
    conn = db.conn
    installed = conn.execute(
        "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
    ).fetchone()
    if installed is None:
        raise UsageError(
            "pg_stat_statements is not installed in this database (add it to "
            "shared_preload_libraries and CREATE EXTENSION pg_stat_statements), "
            "or give the workload with --sql FILE or --from-log FILE"
        )
    try:
        with conn.transaction():
            rows = conn.execute(_STATEMENTS, (limit,)).fetchall()
            reset = conn.execute(
                "SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_statements_info"
            ).fetchone()
    except Exception as exc:
        raise UsageError(f"cannot read pg_stat_statements: {db.scrub(str(exc).strip())}") from None
    window = float(reset[0]) if reset and reset[0] is not None else None
    return statements_workload(((str(q), int(c), float(t)) for q, c, t in rows), window_s=window)
