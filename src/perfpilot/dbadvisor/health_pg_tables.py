"""PostgreSQL table health: tables overdue for vacuum or analyze, and
sequences near their limit.

Vacuum and analyze are "overdue" when a table is past the point where
autovacuum should have processed it (``threshold + scale_factor * rows``,
with the table's own settings when it has them) or was never analyzed at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.health import health_finding
from perfpilot.dbadvisor.health_pg import USER_SCHEMAS

if TYPE_CHECKING:
    from perfpilot.dbadvisor.health_pg import Check, PgSession

__all__ = [
    "CHECKS",
    "maintenance",
    "reloptions",
    "sequences_near_limit",
]


#: Largest value of each integer column type.
TYPE_MAX = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}

_MAINTENANCE = f"""
SELECT
  format('%%I.%%I', n.nspname, c.relname) AS name,
  s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
  c.reltuples::float8 AS tuples,
  coalesce(c.reloptions, '{{}}') AS reloptions,
  extract(epoch FROM clock_timestamp() - greatest(s.last_vacuum, s.last_autovacuum))::float8
    AS since_vacuum_s,
  extract(epoch FROM clock_timestamp() - greatest(s.last_analyze, s.last_autoanalyze))::float8
    AS since_analyze_s
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {USER_SCHEMAS}
ORDER BY 1
"""


def reloptions(options: Iterable[str]) -> dict[str, str]:
    """``['fillfactor=70', 'autovacuum_enabled=false']`` as a dict."""
    pairs = (option.partition("=") for option in options)
    return {key.strip().lower(): value.strip() for key, _, value in pairs}


def _limit(session: PgSession, own: dict[str, str], name: str, rows: float) -> float:
    def value(key: str) -> float:
        try:
            return float(own.get(key, session.setting(key)))
        except ValueError:
            return 0.0

    return value(f"autovacuum_{name}_threshold") + value(f"autovacuum_{name}_scale_factor") * rows


def maintenance(session: PgSession) -> list[Finding]:
    """Tables past their autovacuum vacuum threshold (dead rows), or past their
    analyze threshold or never analyzed (modified rows). A table that needs a
    vacuum gets one finding (``VACUUM (ANALYZE)`` does both)."""
    opts = session.options
    findings = []
    autovacuum_on = session.setting("autovacuum") != "off"
    for row in session.rows(_MAINTENANCE):
        name = str(row["name"])
        own = reloptions(row["reloptions"])
        live, dead = int(row["n_live_tup"]), int(row["n_dead_tup"])
        modified = int(row["n_mod_since_analyze"])
        rows = float(row["tuples"]) if float(row["tuples"]) >= 0 else float(live)
        enabled = autovacuum_on and own.get("autovacuum_enabled", "true").lower() not in (
            "false",
            "off",
            "0",
            "no",
        )
        reset = "" if enabled else f"ALTER TABLE {name} RESET (autovacuum_enabled);\n"
        why = "" if enabled else " (autovacuum is off for it)"
        evidence: dict[str, Any] = {
            "table": name,
            "live_rows": live,
            "dead_rows": dead,
            "modified_since_analyze_rows": modified,
            "since_vacuum_s": row["since_vacuum_s"],
            "since_analyze_s": row["since_analyze_s"],
            "autovacuum_enabled": enabled,
        }
        vacuum_at = _limit(session, own, "vacuum", rows)
        if dead > vacuum_at and dead >= opts.dead_tuples_min:
            evidence["vacuum_threshold_rows"] = round(vacuum_at, 1)
            findings.append(
                health_finding(
                    "vacuum_overdue",
                    "high" if dead > max(live, 1) else "medium",
                    f"Table {name} has {dead} dead rows, past its vacuum threshold{why}",
                    name,
                    evidence,
                    "Vacuum (and analyze) the table: dead rows make scans read more pages "
                    "and the table grow; make sure autovacuum can keep up with it.",
                    f"{reset}VACUUM (ANALYZE) {name};",
                    confidence=0.8,
                )
            )
            continue
        never = row["since_analyze_s"] is None
        analyze_at = _limit(session, own, "analyze", rows)
        if never:
            due = max(live, modified) >= opts.dead_tuples_min
            title = f"Table {name} has never been analyzed{why}"
        else:
            due = modified > analyze_at and modified >= opts.dead_tuples_min
            title = f"Table {name} has {modified} rows changed since it was last analyzed{why}"
        if due:
            evidence["analyze_threshold_rows"] = round(analyze_at, 1)
            findings.append(
                health_finding(
                    "analyze_overdue",
                    "medium" if never else "low",
                    title,
                    name,
                    evidence,
                    "Analyze the table: the planner estimates row counts from its "
                    "statistics, and stale ones lead to bad plans.",
                    f"{reset}ANALYZE {name};",
                    confidence=0.7,
                )
            )
    return findings


_SEQUENCES = """
SELECT
  format('%%I.%%I', s.schemaname, s.sequencename) AS name,
  s.data_type::text AS data_type,
  s.min_value, s.max_value, s.increment_by, s.last_value,
  owner.table_name, owner.column_name, owner.column_type
FROM pg_sequences s
LEFT JOIN LATERAL (
  SELECT
    format('%%I.%%I', tn.nspname, t.relname) AS table_name,
    quote_ident(a.attname) AS column_name,
    format_type(a.atttypid, NULL) AS column_type
  FROM pg_class sc
  JOIN pg_namespace sn ON sn.oid = sc.relnamespace
  JOIN pg_depend d
    ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid
    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
  WHERE sn.nspname = s.schemaname AND sc.relname = s.sequencename
  LIMIT 1
) AS owner ON true
WHERE s.last_value IS NOT NULL
ORDER BY 1
"""


def sequences_near_limit(session: PgSession) -> list[Finding]:
    """Sequences that have used more than ``sequence_used_max`` of their range,
    the range being the tighter of the sequence's own limit and the type of
    the column it feeds (an ``integer`` column fed by a ``bigint`` sequence
    overflows at 2^31 - 1)."""
    findings = []
    for row in session.rows(_SEQUENCES):
        last, step = int(row["last_value"]), int(row["increment_by"])
        column_type = row["column_type"]
        column_max = TYPE_MAX.get(str(column_type), TYPE_MAX["bigint"])
        if step > 0:
            limit = min(int(row["max_value"]), column_max)
            used = last / limit if last > 0 else 0.0
        else:
            limit = max(int(row["min_value"]), -column_max - 1)
            used = last / limit if last < 0 else 0.0
        if used < session.options.sequence_used_max:
            continue
        name = str(row["name"])
        severity = "critical" if used >= 0.95 else "high" if used >= 0.9 else "medium"
        code, fix = _widen(name, row, column_max)
        findings.append(
            health_finding(
                "sequence_near_limit",
                severity,
                f"Sequence {name} has used {used:.1%} of its range",
                name,
                {
                    "sequence": name,
                    "last_value": last,
                    "limit": limit,
                    "used_ratio": round(used, 6),
                    "remaining_values": abs(limit - last) // abs(step),
                    "sequence_type": str(row["data_type"]),
                    "table": row["table_name"],
                    "column": row["column_name"],
                    "column_type": column_type,
                },
                fix,
                code,
                confidence=0.95,
            )
        )
    return findings


def _widen(name: str, row: dict[str, Any], column_max: int) -> tuple[str, str]:
    """The statements that give a sequence (and its column) the bigint range."""
    lines = []
    if row["table_name"] and column_max < TYPE_MAX["bigint"]:
        lines.append(
            f"ALTER TABLE {row['table_name']} ALTER COLUMN {row['column_name']} TYPE bigint;"
            "  -- rewrites the table under an exclusive lock"
        )
    if row["data_type"] != "bigint":
        lines.append(f"ALTER SEQUENCE {name} AS bigint;")
    elif int(row["max_value"]) < TYPE_MAX["bigint"] and int(row["increment_by"]) > 0:
        lines.append(f"ALTER SEQUENCE {name} MAXVALUE {TYPE_MAX['bigint']};")
    if not lines:
        return "", "The sequence is nearly exhausted and already bigint: reset or replace it."
    target = f"{row['table_name']}.{row['column_name']}" if row["table_name"] else name
    return "\n".join(lines), f"Move {target} to bigint before inserts start to fail."


CHECKS: list[tuple[str, Check]] = [
    ("maintenance", maintenance),
    ("sequences_near_limit", sequences_near_limit),
]
