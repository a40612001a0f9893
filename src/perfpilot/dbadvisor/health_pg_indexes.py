"""PostgreSQL index health: unused, duplicate, redundant-prefix and invalid
indexes, and unindexed foreign keys.

All of it reads the system catalogs and the statistics views; nothing here
needs an extension. (Index bloat is estimated in
:mod:`~perfpilot.dbadvisor.health_pg_bloat`.)
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.health import health_finding
from perfpilot.dbadvisor.health_pg import USER_SCHEMAS, pretty_bytes

if TYPE_CHECKING:
    from perfpilot.dbadvisor.health_pg import Check, PgSession

__all__ = [
    "CHECKS",
    "PgIndex",
    "duplicate_indexes",
    "invalid_indexes",
    "read_indexes",
    "redundant_pairs",
    "unindexed_foreign_keys",
    "unused_indexes",
]

_MIB = 1024 * 1024

_INDEXES = f"""
SELECT
  i.indexrelid::bigint AS oid,
  i.indrelid::bigint AS table_oid,
  format('%%I.%%I', n.nspname, ic.relname) AS name,
  format('%%I.%%I', n.nspname, tc.relname) AS table_name,
  ic.relkind::text AS relkind,
  am.amname AS method,
  i.indisunique AS is_unique,
  i.indisprimary AS is_primary,
  i.indisvalid AS is_valid,
  i.indnkeyatts AS key_count,
  i.indkey::int2[] AS attnums,
  i.indclass::oid[]::bigint[] AS opclasses,
  i.indcollation::oid[]::bigint[] AS collations,
  i.indoption::int2[] AS sort_options,
  pg_get_expr(i.indexprs, i.indrelid) AS expressions,
  pg_get_expr(i.indpred, i.indrelid) AS predicate,
  pg_get_indexdef(i.indexrelid) AS definition,
  pg_relation_size(i.indexrelid) AS size_bytes,
  coalesce(s.idx_scan, 0) AS scans,
  EXISTS (
    SELECT 1 FROM pg_constraint c
    WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
  ) AS backs_constraint,
  EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS is_partition,
  EXISTS (
    SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid
  ) AS being_built
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
WHERE {USER_SCHEMAS}
ORDER BY 3
"""


@dataclasses.dataclass(frozen=True)
class PgIndex:
    """One index, as the checks need it.

    Attributes:
        name: Schema-qualified, quoted as needed.
        table_oid: The indexed table's oid.
        table_name: The indexed table, schema-qualified.
        relkind: ``i`` (an index) or ``I`` (a partitioned index).
        method: Access method: ``btree``, ``hash``, ``gin``...
        keys: Key columns: (attnum, operator class, collation, sort option);
            attnum 0 is an expression.
        include: Attnums of the ``INCLUDE`` columns.
        is_unique: Whether it enforces uniqueness.
        is_primary: Whether it is the primary key.
        is_valid: False after a failed ``CREATE INDEX CONCURRENTLY``.
        expressions: Its expressions' text, or ``None``.
        predicate: Its ``WHERE`` clause, or ``None``.
        definition: ``CREATE INDEX ...`` as PostgreSQL prints it.
        size_bytes: On-disk size.
        scans: Index scans since the statistics were reset.
        droppable: A plain ``DROP INDEX`` removes it (it backs no constraint
            and is not a partition of a partitioned index).
        being_built: A ``CREATE INDEX`` on it is in progress.
    """

    name: str
    table_oid: int
    table_name: str
    relkind: str
    method: str
    keys: tuple[tuple[int, int, int, int], ...]
    include: tuple[int, ...]
    is_unique: bool
    is_primary: bool
    is_valid: bool
    expressions: str | None
    predicate: str | None
    definition: str
    size_bytes: int
    scans: int
    droppable: bool
    being_built: bool

    @property
    def key_attnums(self) -> tuple[int, ...]:
        """Attnums of the key columns, in order."""
        return tuple(key[0] for key in self.keys)


def read_indexes(session: PgSession) -> list[PgIndex]:
    """Every index of the user's schemas (read once per session)."""
    cached = session.cache.get("indexes")
    if cached is None:
        cached = session.cache["indexes"] = _read_indexes(session)
    return list(cached)


def _read_indexes(session: PgSession) -> list[PgIndex]:
    found = []
    for row in session.rows(_INDEXES):
        attnums = list(row["attnums"])
        count = int(row["key_count"])
        keys = tuple(
            zip(
                attnums[:count],
                list(row["opclasses"])[:count],
                list(row["collations"])[:count],
                list(row["sort_options"])[:count],
                strict=True,
            )
        )
        found.append(
            PgIndex(
                name=str(row["name"]),
                table_oid=int(row["table_oid"]),
                table_name=str(row["table_name"]),
                relkind=str(row["relkind"]),
                method=str(row["method"]),
                keys=keys,
                include=tuple(attnums[count:]),
                is_unique=bool(row["is_unique"]),
                is_primary=bool(row["is_primary"]),
                is_valid=bool(row["is_valid"]),
                expressions=row["expressions"],
                predicate=row["predicate"],
                definition=str(row["definition"]),
                size_bytes=int(row["size_bytes"]),
                scans=int(row["scans"]),
                droppable=not row["backs_constraint"]
                and not row["is_partition"]
                and row["relkind"] == "i",
                being_built=bool(row["being_built"]),
            )
        )
    return found


def _stats_age_s(session: PgSession) -> float | None:
    row = session.rows(
        "SELECT extract(epoch FROM clock_timestamp() - stats_reset)::float8 AS age_s "
        "FROM pg_stat_database WHERE datname = current_database()"
    )
    return None if not row or row[0]["age_s"] is None else float(row[0]["age_s"])


def unused_indexes(session: PgSession) -> list[Finding]:
    """Indexes never scanned since the statistics were reset, except unique and
    primary-key indexes and those backing a constraint (they enforce something)."""
    age_s = _stats_age_s(session)
    week = 7 * 86_400.0
    findings = []
    for index in read_indexes(session):
        if index.scans or index.is_unique or not index.droppable or not index.is_valid:
            continue
        severity = "medium" if index.size_bytes >= 10 * _MIB else "low"
        findings.append(
            health_finding(
                "unused_index",
                severity,
                f"Index {index.name} on {index.table_name} is never used "
                f"({pretty_bytes(index.size_bytes)})",
                index.name,
                {
                    "index": index.name,
                    "table": index.table_name,
                    "size_bytes": index.size_bytes,
                    "scans": index.scans,
                    "stats_age_s": age_s,
                    "definition": index.definition,
                },
                "Drop the index: it slows every write and takes space, yet no query has "
                "used it since the statistics were reset (check replicas first: their "
                "scans are not counted here).",
                f"DROP INDEX CONCURRENTLY {index.name};",
                # fresh statistics prove little
                confidence=0.8 if age_s is not None and age_s >= week else 0.5,
            )
        )
    return findings


def redundant_pairs(indexes: Sequence[PgIndex]) -> list[tuple[PgIndex, PgIndex]]:
    """``(unneeded, covering)`` pairs: every query the first serves, the second
    serves too (same method, expressions and predicate; its key columns a
    prefix of the other's, with the same operator classes, collations and
    order; its ``INCLUDE`` columns among the other's columns; a unique index
    only by a unique one on the same keys). Of two identical indexes one is
    kept. Only droppable, valid indexes are reported as unneeded, each with an
    index that is itself kept."""
    by_table: dict[int, list[PgIndex]] = defaultdict(list)
    for index in indexes:
        by_table[index.table_oid].append(index)
    pairs = []
    for group in by_table.values():
        covered_by = {
            index.name: [other for other in group if _covers(other, index)]
            for index in group
            if index.droppable and index.is_valid
        }
        for index in group:
            candidates = covered_by.get(index.name)
            if not candidates:
                continue
            # point at an index that stays: one that nothing else makes unnecessary
            # (covering is transitive, so there is one); an exact duplicate, else
            # the longest, then by name
            candidates.sort(
                key=lambda other: (
                    bool(covered_by.get(other.name)),
                    other.keys != index.keys,
                    -len(other.keys),
                    other.name,
                )
            )
            pairs.append((index, candidates[0]))
    return pairs


def _same(a: PgIndex, b: PgIndex) -> bool:
    return a.keys == b.keys and set(a.include) == set(b.include) and a.is_unique == b.is_unique


def _covers(other: PgIndex, index: PgIndex) -> bool:
    if other.name == index.name or not other.is_valid or other.method != index.method:
        return False
    if other.expressions != index.expressions or other.predicate != index.predicate:
        return False
    n = len(index.keys)
    if other.keys[:n] != index.keys:
        return False
    if len(other.keys) > n and index.method != "btree":
        return False  # only a b-tree serves queries on a prefix of its keys
    if not set(index.include) <= set(other.key_attnums) | set(other.include):
        return False
    if index.is_unique and not (other.is_unique and len(other.keys) == n):
        return False
    if _same(other, index):
        # identical: keep the one that cannot be dropped, else the first by name
        return not other.droppable or other.name < index.name
    return True


def duplicate_indexes(session: PgSession) -> list[Finding]:
    """Indexes that another index on the same table makes unnecessary: exact
    duplicates, and b-tree indexes whose keys are a prefix of another's."""
    findings = []
    for index, covering in redundant_pairs(read_indexes(session)):
        exact = index.keys == covering.keys
        kind = "duplicate_index" if exact else "redundant_index"
        what = "duplicates" if exact else "is a prefix of"
        findings.append(
            health_finding(
                kind,
                "medium" if exact else "low",
                f"Index {index.name} {what} {covering.name} ({pretty_bytes(index.size_bytes)})",
                index.name,
                {
                    "index": index.name,
                    "covered_by": covering.name,
                    "table": index.table_name,
                    "size_bytes": index.size_bytes,
                    "scans": index.scans,
                    "definition": index.definition,
                    "covered_by_definition": covering.definition,
                },
                f"Drop {index.name}: {covering.name} serves the same queries, so it only "
                "costs writes and space.",
                f"DROP INDEX CONCURRENTLY {index.name};",
                confidence=0.9 if exact else 0.8,
            )
        )
    return findings


def invalid_indexes(session: PgSession) -> list[Finding]:
    """Indexes left invalid by a failed ``CREATE INDEX CONCURRENTLY`` (not
    those being built right now): never used for reads, still updated on
    every write."""
    findings = []
    for index in read_indexes(session):
        if index.is_valid or index.being_built:
            continue
        findings.append(
            health_finding(
                "invalid_index",
                "high",
                f"Index {index.name} on {index.table_name} is invalid",
                index.name,
                {
                    "index": index.name,
                    "table": index.table_name,
                    "size_bytes": index.size_bytes,
                    "definition": index.definition,
                },
                "Rebuild the index (or drop it): an invalid index is never used by "
                "queries but is still maintained on every write.",
                f"REINDEX INDEX CONCURRENTLY {index.name};\n"
                f"-- or, if it is not needed:\nDROP INDEX CONCURRENTLY {index.name};",
                confidence=0.9,
            )
        )
    return findings


_FOREIGN_KEYS = f"""
SELECT
  c.conname AS name,
  c.conrelid::bigint AS table_oid,
  format('%%I.%%I', n.nspname, t.relname) AS table_name,
  t.relkind::text AS relkind,
  format('%%I.%%I', pn.nspname, p.relname) AS parent_name,
  c.conkey::int2[] AS attnums,
  ARRAY(
    SELECT quote_ident(a.attname)
    FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
    ORDER BY k.ord
  ) AS columns,
  greatest(t.reltuples, 0)::float8 AS rows_estimate,
  greatest(p.reltuples, 0)::float8 AS parent_rows_estimate,
  pg_relation_size(t.oid) AS table_size_bytes
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class p ON p.oid = c.confrelid
JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0 AND {USER_SCHEMAS}
ORDER BY 3, 1
"""


def unindexed_foreign_keys(session: PgSession) -> list[Finding]:
    """Foreign keys whose columns do not lead any valid, non-partial index of
    the referencing table: each delete or key update on the parent then scans
    the whole child table, and joins from the parent cannot use an index."""
    by_table: dict[int, list[PgIndex]] = defaultdict(list)
    for index in read_indexes(session):
        if index.is_valid and index.predicate is None:
            by_table[index.table_oid].append(index)
    findings = []
    for fk in session.rows(_FOREIGN_KEYS):
        wanted = set(fk["attnums"])
        if any(
            set(index.key_attnums[: len(wanted)]) == wanted for index in by_table[fk["table_oid"]]
        ):
            continue
        columns = ", ".join(fk["columns"])
        table = str(fk["table_name"])
        rows = float(fk["rows_estimate"])
        concurrently = "" if fk["relkind"] == "p" else " CONCURRENTLY"
        findings.append(
            health_finding(
                "unindexed_foreign_key",
                "high" if rows >= 100_000 else "medium",
                f"Foreign key {table}({columns}) → {fk['parent_name']} has no index",
                f"{table}({columns})",
                {
                    "table": table,
                    "columns": list(fk["columns"]),
                    "constraint": str(fk["name"]),
                    "references": str(fk["parent_name"]),
                    "rows_estimate": rows,
                    "parent_rows_estimate": float(fk["parent_rows_estimate"]),
                    "table_size_bytes": int(fk["table_size_bytes"]),
                },
                f"Index {table}({columns}): deleting or re-keying a {fk['parent_name']} row "
                "scans the whole table without it, and joins on the key cannot use an index.",
                f"CREATE INDEX{concurrently} ON {table} ({columns});",
                confidence=0.7,
            )
        )
    return findings


CHECKS: list[tuple[str, Check]] = [
    ("unused_indexes", unused_indexes),
    ("duplicate_indexes", duplicate_indexes),
    ("invalid_indexes", invalid_indexes),
    ("unindexed_foreign_keys", unindexed_foreign_keys),
]
