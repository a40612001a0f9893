"""Bloat estimates for PostgreSQL tables and b-tree indexes, without ``pgstattuple``.

The usual catalog-only estimate (as PgHero and the check_postgres family do
it): from ``pg_stats`` (average width and null fraction of each column) and
the page layout (tuple and page headers, alignment, line pointers, fill
factor) compute the pages a freshly written table or index would need for
its current row count, and compare with the pages it has. Objects without
statistics on every column are skipped. The estimate ignores padding between
columns and a b-tree's inner pages; ``bloat_ratio_min`` (default 50%) keeps
such errors from becoming findings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.health import health_finding
from perfpilot.dbadvisor.health_pg import USER_SCHEMAS, pretty_bytes

if TYPE_CHECKING:
    from perfpilot.dbadvisor.health_pg import Check, PgSession

__all__ = ["CHECKS", "expected_btree_pages", "expected_heap_pages", "index_bloat", "table_bloat"]

_MIB = 1024 * 1024
_MAXALIGN = 8
_PAGE_HEADER = 24
_HEAP_TUPLE_HEADER = 23
_ITEM_ID = 4


_TABLE_BLOAT = f"""
WITH stats AS (
  SELECT schemaname, tablename, count(*) AS stat_columns,
    sum((1 - coalesce(null_frac, 0)) * coalesce(avg_width, 0))::float8 AS data_width,
    coalesce(bool_or(null_frac > 0), false) AS has_nulls
  FROM pg_stats WHERE NOT inherited GROUP BY 1, 2
)
SELECT
  format('%%I.%%I', n.nspname, c.relname) AS name,
  c.relpages::float8 AS pages,
  c.reltuples::float8 AS tuples,
  current_setting('block_size')::int AS block_size,
  coalesce(substring(array_to_string(c.reloptions, ',') FROM 'fillfactor=([0-9]+)')::int, 100)
    AS fillfactor,
  (SELECT count(*) FROM pg_attribute a
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS column_count,
  c.relnatts AS natts,
  s.stat_columns, s.data_width, s.has_nulls
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
WHERE c.relkind IN ('r', 'm') AND c.relpages > 0 AND c.reltuples >= 0 AND {USER_SCHEMAS}
ORDER BY 1
"""


def _align(size: float) -> float:
    return math.ceil(size / _MAXALIGN) * _MAXALIGN


def expected_heap_pages(
    tuples: float,
    data_width: float,
    natts: int,
    *,
    has_nulls: bool,
    block_size: int = 8192,
    fillfactor: int = 100,
) -> float:
    """Pages ``tuples`` rows of ``data_width`` bytes need in a freshly written
    heap: tuple header (23 bytes plus the null bitmap), alignment, line
    pointer, page header, fill factor."""
    header = _HEAP_TUPLE_HEADER + (math.ceil(natts / 8) if has_nulls else 0)
    tuple_size = _align(header) + _align(data_width) + _ITEM_ID
    usable = (block_size - _PAGE_HEADER) * fillfactor / 100.0
    per_page = max(1.0, math.floor(usable / tuple_size))
    return max(1.0, math.ceil(tuples / per_page))


def table_bloat(session: PgSession) -> list[Finding]:
    """Tables much larger than their live rows need (analyzed tables only)."""
    return _bloat_findings(
        session,
        _TABLE_BLOAT,
        "table",
        lambda row: expected_heap_pages(
            float(row["tuples"]),
            float(row["data_width"]),
            int(row["natts"]),
            has_nulls=bool(row["has_nulls"]),
            block_size=int(row["block_size"]),
            fillfactor=int(row["fillfactor"]),
        ),
        lambda row: {"table": str(row["name"])},
        "Vacuum the table so the space is reused; to give it back to the operating "
        "system, rewrite it (VACUUM FULL locks the table; pg_repack does not).",
        "VACUUM (ANALYZE) {name};\n-- to shrink the file (takes an exclusive lock):\n"
        "-- VACUUM FULL {name};",
    )


def _bloat_findings(
    session: PgSession,
    sql: str,
    noun: str,
    expected_pages: Callable[[dict[str, Any]], float],
    names: Callable[[dict[str, Any]], dict[str, str]],
    fix: str,
    code: str,
) -> list[Finding]:
    """``{noun}_bloat`` findings for the rows of ``sql`` whose estimated waste
    passes both thresholds (rows with columns lacking statistics are skipped).

    Args:
        session: The checks' session.
        sql: One row per object: ``name``, ``pages``, ``tuples``,
            ``block_size``, ``column_count``, ``stat_columns`` and what
            ``expected_pages`` reads.
        noun: ``table`` or ``index``.
        expected_pages: Pages the object would take freshly written.
        names: The evidence naming the object (and its table).
        fix: What to do.
        code: The SQL, ``{name}`` standing for the object's name.
    """
    opts = session.options
    findings = []
    for row in session.rows(sql):
        if int(row["stat_columns"]) < int(row["column_count"]):
            continue  # not analyzed, or a type without statistics: no estimate
        pages = float(row["pages"])
        block_size = int(row["block_size"])
        expected = expected_pages(row)
        waste_bytes = max(0.0, pages - expected) * block_size
        ratio = waste_bytes / (pages * block_size)
        if ratio < opts.bloat_ratio_min or waste_bytes < opts.bloat_bytes_min:
            continue
        name = str(row["name"])
        findings.append(
            health_finding(
                f"{noun}_bloat",
                "medium" if waste_bytes >= 1024 * _MIB else "low",
                f"{noun.capitalize()} {name} is about {ratio:.0%} bloat "
                f"({pretty_bytes(waste_bytes)})",
                name,
                {
                    **names(row),
                    "size_bytes": int(pages * block_size),
                    "expected_size_bytes": int(expected * block_size),
                    "bloat_bytes": int(waste_bytes),
                    "bloat_ratio": round(ratio, 4),
                    "rows_estimate": float(row["tuples"]),
                },
                fix,
                code.format(name=name),
                confidence=0.6,
            )
        )
    return findings


_INDEX_BLOAT = f"""
SELECT
  format('%%I.%%I', n.nspname, ic.relname) AS name,
  format('%%I.%%I', n.nspname, tc.relname) AS table_name,
  ic.relpages::float8 AS pages,
  ic.reltuples::float8 AS tuples,
  current_setting('block_size')::int AS block_size,
  coalesce(substring(array_to_string(ic.reloptions, ',') FROM 'fillfactor=([0-9]+)')::int, 90)
    AS fillfactor,
  i.indnatts AS column_count,
  count(s.attname) AS stat_columns,
  coalesce(sum((1 - coalesce(s.null_frac, 0)) * s.avg_width), 0)::float8 AS data_width,
  coalesce(bool_or(s.null_frac > 0), false) AS has_nulls
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace n ON n.oid = tc.relnamespace
JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
LEFT JOIN pg_stats s
  ON s.schemaname = n.nspname AND s.tablename = tc.relname AND s.attname = a.attname
  AND NOT s.inherited
WHERE i.indexprs IS NULL AND i.indisvalid AND ic.relkind = 'i' AND ic.relpages > 1
  AND ic.reltuples >= 0 AND {USER_SCHEMAS}
GROUP BY i.indexrelid, n.nspname, ic.relname, tc.relname, ic.relpages, ic.reltuples,
  ic.reloptions, i.indnatts
"""

_BTREE_SPECIAL = 16
_INDEX_TUPLE_HEADER = 8


def expected_btree_pages(
    tuples: float,
    data_width: float,
    column_count: int,
    *,
    has_nulls: bool,
    block_size: int = 8192,
    fillfactor: int = 90,
) -> float:
    """Pages a freshly built b-tree of ``tuples`` entries would take: leaf
    pages filled to ``fillfactor``, plus the meta page (inner pages, under 1%,
    are ignored, so the estimate leans to less bloat, not more)."""
    header = _INDEX_TUPLE_HEADER + (math.ceil(column_count / 8) if has_nulls else 0)
    tuple_size = _align(header) + _align(data_width) + _ITEM_ID
    usable = (block_size - _PAGE_HEADER - _BTREE_SPECIAL) * fillfactor / 100.0
    per_page = max(1.0, math.floor(usable / tuple_size))
    return 1.0 + math.ceil(tuples / per_page)


def index_bloat(session: PgSession) -> list[Finding]:
    """B-tree indexes much larger than their row count needs (estimated from
    ``pg_stats``; indexes on columns without statistics are skipped)."""
    return _bloat_findings(
        session,
        _INDEX_BLOAT,
        "index",
        lambda row: expected_btree_pages(
            float(row["tuples"]),
            float(row["data_width"]),
            int(row["column_count"]),
            has_nulls=bool(row["has_nulls"]),
            block_size=int(row["block_size"]),
            fillfactor=int(row["fillfactor"]),
        ),
        lambda row: {"index": str(row["name"]), "table": str(row["table_name"])},
        "Rebuild the index without blocking writes; it reads and caches pages "
        "that are mostly empty.",
        "REINDEX INDEX CONCURRENTLY {name};",
    )


CHECKS: list[tuple[str, Check]] = [
    ("table_bloat", table_bloat),
    ("index_bloat", index_bloat),
]
