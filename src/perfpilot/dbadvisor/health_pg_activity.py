"""PostgreSQL activity health: cache hit ratio, connections, long-running and
idle-in-transaction sessions, and the slowest statements.

Query texts shown in evidence are fingerprinted first (literals become
``?``), so a value a session happened to send (a password in an
``ALTER ROLE``, a customer's e-mail) never appears in the output. Sessions of
other databases and the checks' own session are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfpilot.analyze.findings import Finding, Impact
from perfpilot.dbadvisor.health import health_finding
from perfpilot.dbadvisor.health_pg import MARK, seconds
from perfpilot.instrument.fingerprint import fingerprint

if TYPE_CHECKING:
    from perfpilot.dbadvisor.health_pg import Check, PgSession

__all__ = [
    "CHECKS",
    "cache_hit_ratio",
    "connections",
    "long_running_queries",
    "redacted_query",
    "slow_statements",
]

#: Longest query text kept in evidence, after redaction.
MAX_QUERY_CHARS = 500

_CACHE = """
SELECT 'tables' AS what, sum(heap_blks_hit)::float8 AS hit, sum(heap_blks_read)::float8 AS read
FROM pg_statio_user_tables
UNION ALL
SELECT 'indexes', sum(idx_blks_hit)::float8, sum(idx_blks_read)::float8
FROM pg_statio_user_indexes
"""


def redacted_query(text: str | None) -> str:
    """A statement's fingerprint text (literals as ``?``), cut to ``MAX_QUERY_CHARS``."""
    if not text:
        return ""
    normalized = fingerprint(text, "postgres")[1]
    if len(normalized) > MAX_QUERY_CHARS:
        return normalized[: MAX_QUERY_CHARS - 1] + "…"
    return normalized


def cache_hit_ratio(session: PgSession) -> list[Finding]:
    """Share of table and of index block reads served from shared buffers,
    reported below ``cache_hit_ratio_min`` once there are enough reads."""
    opts = session.options
    findings = []
    shared_buffers = session.setting("shared_buffers")
    block_size = session.number("block_size", 8192)
    for row in session.rows(_CACHE):
        hit, read = float(row["hit"] or 0), float(row["read"] or 0)
        if hit + read < opts.cache_blocks_min:
            continue
        ratio = hit / (hit + read)
        if ratio >= opts.cache_hit_ratio_min:
            continue
        what = str(row["what"])
        buffers_bytes = int(float(shared_buffers or 0) * block_size)
        findings.append(
            health_finding(
                "cache_hit_ratio",
                "high" if ratio < 0.95 else "medium",
                f"Only {ratio:.1%} of {what[:-1]} block reads hit the buffer cache",
                what,
                {
                    "hit_ratio": round(ratio, 6),
                    "blocks_hit": int(hit),
                    "blocks_read": int(read),
                    "shared_buffers_bytes": buffers_bytes,
                },
                "Give the buffer cache more memory (about a quarter of RAM is the usual "
                "start), or reduce what each query reads (indexes, smaller rows); "
                "the counts are since the statistics were last reset.",
                "ALTER SYSTEM SET shared_buffers = '<about 25% of RAM>';  -- needs a restart",
                confidence=0.6,
            )
        )
    return findings


_CONNECTIONS = """
SELECT
  count(*) FILTER (WHERE backend_type = 'client backend') AS clients,
  count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle') AS idle,
  count(*) FILTER (
    WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%%'
  ) AS idle_in_transaction,
  current_setting('max_connections')::int AS max_connections,
  current_setting('superuser_reserved_connections')::int AS reserved
FROM pg_stat_activity
"""


def connections(session: PgSession) -> list[Finding]:
    """Client connections against the usable ``max_connections`` (minus the
    superuser reserve), reported above ``connections_used_max``."""
    row = session.rows(_CONNECTIONS)[0]
    clients = int(row["clients"])
    usable = max(1, int(row["max_connections"]) - int(row["reserved"]))
    used = clients / usable
    if used < session.options.connections_used_max:
        return []
    return [
        health_finding(
            "connections",
            "high" if used >= 0.9 else "medium",
            f"{clients} of {usable} usable connections are open ({used:.0%})",
            "connections",
            {
                "connections": clients,
                "idle_connections": int(row["idle"]),
                "idle_in_transaction_connections": int(row["idle_in_transaction"]),
                "usable_connections": usable,
                "max_connections": int(row["max_connections"]),
                "used_ratio": round(used, 4),
            },
            "Put a connection pooler (PgBouncer, transaction mode) in front of the "
            "server or shrink the application pools: when the limit is reached new "
            "connections are refused.",
            "[databases]\n* = host=127.0.0.1 port=5432\n[pgbouncer]\npool_mode = transaction",
            confidence=0.7,
            language="text",
        )
    ]


_SESSIONS = """
SELECT
  pid, state, usename AS user_name, application_name,
  extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_s,
  extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_s,
  extract(epoch FROM clock_timestamp() - xact_start)::float8 AS transaction_s,
  wait_event_type, query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND datname = current_database()
ORDER BY pid
"""


def long_running_queries(session: PgSession) -> list[Finding]:
    """Queries active for ``long_running_s`` or more, and sessions idle inside
    a transaction for ``idle_in_transaction_s`` or more (they hold locks and
    keep vacuum from removing dead rows)."""
    opts = session.options
    findings = []
    for row in session.rows(_SESSIONS):
        state = str(row["state"] or "")
        pid = int(row["pid"])
        base: dict[str, Any] = {
            "pid": pid,
            "state": state,
            "user": row["user_name"],
            "application": row["application_name"],
            "transaction_s": row["transaction_s"],
            "wait_event_type": row["wait_event_type"],
            "query": redacted_query(row["query"]),
        }
        if state == "active" and seconds(row["query_s"]) >= opts.long_running_s:
            duration = seconds(row["query_s"])
            findings.append(
                health_finding(
                    "long_running_query",
                    "high" if duration >= 600 else "medium",
                    f"Query in session {pid} has run for {duration:.0f} s",
                    f"pid {pid}",
                    {**base, "duration_s": duration},
                    "Cancel it if it is stuck, and give the application's role a statement "
                    "timeout so runaway queries end on their own.",
                    f"SELECT pg_cancel_backend({pid});\n"
                    "ALTER ROLE <app_role> SET statement_timeout = '30s';",
                    confidence=0.7,
                )
            )
        elif (
            state.startswith("idle in transaction")
            and seconds(row["state_s"]) >= opts.idle_in_transaction_s
        ):
            duration = seconds(row["state_s"])
            findings.append(
                health_finding(
                    "idle_in_transaction",
                    "high" if duration >= 600 else "medium",
                    f"Session {pid} has been idle in a transaction for {duration:.0f} s",
                    f"pid {pid}",
                    {**base, "duration_s": duration},
                    "Commit or roll back promptly in the application (the last query "
                    "is shown); a server-side timeout ends such sessions.",
                    f"SELECT pg_terminate_backend({pid});\n"
                    "ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min';\n"
                    "SELECT pg_reload_conf();",
                    confidence=0.8,
                )
            )
    return findings


def _statements_extension(session: PgSession) -> str | None:
    row = session.rows("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")
    return str(row[0]["extversion"]) if row else None


def _missing(detail: str, code: str) -> Finding:
    return health_finding(
        "pg_stat_statements_missing",
        "info",
        f"pg_stat_statements is {detail}: the slowest statements cannot be listed",
        "pg_stat_statements",
        {"extension": "pg_stat_statements", "state": detail},
        "Load and create pg_stat_statements to see which statements take the "
        "database's time (and to feed the index advisor).",
        code,
        confidence=0.9,
    )


_PRELOAD = "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';  -- needs a restart\n"


def slow_statements(session: PgSession) -> list[Finding]:
    """The statements that took the most total time in this database
    (``pg_stat_statements``), or one ``info`` finding saying why they cannot
    be listed. The checks' own statements are left out."""
    opts = session.options
    if _statements_extension(session) is None:
        return [_missing("not installed", _PRELOAD + "CREATE EXTENSION pg_stat_statements;")]
    if "pg_stat_statements" not in session.setting("shared_preload_libraries"):
        return [_missing("installed but not loaded", _PRELOAD)]
    version = session.number("server_version_num")
    total_col = "total_exec_time" if version >= 130000 else "total_time"
    toplevel = " AND toplevel" if version >= 140000 else ""
    database = "(SELECT oid FROM pg_database WHERE datname = current_database())"
    rows = session.rows(
        f"SELECT queryid, query, calls, {total_col}::float8 AS total_ms, rows, "
        "shared_blks_hit, shared_blks_read, "
        f"sum({total_col}) OVER ()::float8 AS all_ms "
        f"FROM pg_stat_statements WHERE dbid = {database}{toplevel} "
        "AND query NOT LIKE %s ORDER BY total_ms DESC LIMIT %s",
        (f"%{MARK}%", opts.slow_statements),
    )
    since_s = _statements_age_s(session)
    findings = []
    for row in rows:
        query = str(row["query"] or "")
        total_ms, calls = float(row["total_ms"]), max(1, int(row["calls"]))
        if total_ms < opts.slow_statement_total_ms_min:
            break
        share = total_ms / float(row["all_ms"]) if row["all_ms"] else 0.0
        mean_ms = total_ms / calls
        text = redacted_query(query)
        findings.append(
            health_finding(
                "slow_statement",
                "medium" if share >= 0.25 else "low",
                f"A statement takes {share:.0%} of the database's time "
                f"({calls} calls, {mean_ms:.1f} ms each)",
                f"queryid {row['queryid']}",
                {
                    "queryid": row["queryid"],
                    "query": text,
                    "calls": calls,
                    "total_ms": round(total_ms, 3),
                    "mean_ms": round(mean_ms, 3),
                    "rows": int(row["rows"]),
                    "share_of_total_time": round(share, 4),
                    "shared_blocks_hit": int(row["shared_blks_hit"]),
                    "shared_blocks_read": int(row["shared_blks_read"]),
                    "stats_age_s": since_s,
                },
                "Look at its plan (with real values for the ?), then ask the index "
                "advisor: perfpilot db advise DSN --from-statements.",
                f"EXPLAIN (ANALYZE, BUFFERS) {text};",
                confidence=0.6,
                impact=Impact(
                    time_per_request_s=mean_ms / 1000.0,
                    requests_per_s=calls / since_s if since_s else 0.0,
                    note="mean execution time times calls per second since pg_stat_statements "
                    "was reset",
                ),
            )
        )
    return findings


def _statements_age_s(session: PgSession) -> float | None:
    if session.number("server_version_num") < 140000:
        return None  # pg_stat_statements_info came with PostgreSQL 14
    row = session.rows(
        "SELECT extract(epoch FROM clock_timestamp() - stats_reset)::float8 AS age_s "
        "FROM pg_stat_statements_info"
    )
    return float(row[0]["age_s"]) if row and row[0]["age_s"] is not None else None


CHECKS: list[tuple[str, Check]] = [
    ("cache_hit_ratio", cache_hit_ratio),
    ("connections", connections),
    ("long_running_queries", long_running_queries),
    ("slow_statements", slow_statements),
]
