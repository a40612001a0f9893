"""The advisor's conclusions as :class:`~perfpilot.analyze.findings.Finding` objects.

* ``missing_index``: one per recommended index. Evidence: the queries it
  serves (fingerprints, SQL, cost before and after, whether the values were
  real or sampled), the cost unit, the table's size and write rate, the
  estimated index size and the write overhead. Fix: the ``CREATE INDEX
  CONCURRENTLY`` (PostgreSQL) or ``CREATE INDEX`` (SQLite) statement.
* ``no_index_helps``: one per query above the cost floor that no btree index
  helps, saying so and what would help instead: a trigram index for
  leading-wildcard patterns, a summary table or materialized view for
  whole-table aggregates, keyset pagination for deep ``OFFSET``, a narrower
  filter (or a partial index on the rare values) for unselective filters.
* the query hints of the workload's statements (``select_star``,
  ``function_on_column``, ``implicit_cast``...), one per kind and
  fingerprint, after the index findings (:mod:`~perfpilot.dbadvisor.workload_hints`).

Impact is known when the workload measured time and counted calls (the store,
``pg_stat_statements``, a log): time saved per execution is the measured mean
time times the cost drop.
"""

from __future__ import annotations

import math
from typing import Any

from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.dbadvisor.advisor import Advice, QueryOutcome, Recommendation
from perfpilot.dbadvisor.catalog import quote_identifier


def advice_findings(advice: Advice) -> list[Finding]:
    """Findings for every recommendation, every query no index helps, and the hints.

    Args:
        advice: The result of :func:`~perfpilot.dbadvisor.advisor.advise`.

    Returns:
        ``missing_index`` findings first (in the order chosen), then
        ``no_index_helps`` ones, then the query hints (the costliest
        statement's first).
    """
    findings = [_missing_index(advice, rec) for rec in advice.recommendations]
    findings += [
        _no_index_helps(advice, outcome)
        for outcome in advice.outcomes
        if outcome.status == "no_index_helps"
    ]
    return findings + list(advice.hints)


def fix_code(rec: Recommendation, kind: str) -> str:
    """The SQL to paste: on SQLite, ``ANALYZE`` follows, as in the trial (the
    planner's choice between index and scan depends on those statistics)."""
    if kind == "sqlite":
        return f"{rec.ddl}\nANALYZE {quote_identifier(rec.candidate.name)};"
    return rec.ddl


def write_overhead(rec: Recommendation, kind: str) -> str:
    """One line on what the index costs writers."""
    if rec.table_writes_per_s is None:
        why = "SQLite keeps no write statistics" if kind == "sqlite" else "no statistics"
        return (
            f"write rate of {rec.candidate.table} unknown ({why}); every insert and delete, "
            "and every update of an indexed column, also writes this index"
        )
    rate = rec.table_writes_per_s
    return (
        f"{rec.candidate.table} takes {rate:.3g} row writes/s since statistics were reset; "
        f"each insert and delete (and update of an indexed column) also writes this index, "
        f"about {rate:.3g} index entries/s at most"
    )


def _missing_index(advice: Advice, rec: Recommendation) -> Finding:
    queries: list[dict[str, Any]] = []
    saved_ms = 0.0
    calls = 0
    measured = False
    sampled = False
    for trial in rec.trials:
        outcome = advice.outcomes[trial.query]
        query = outcome.query
        sampled = sampled or outcome.values == "sampled"
        queries.append(
            {
                "fingerprint": query.fingerprint,
                "sql": query.sql,
                "values": outcome.values,
                "cost_before": round(trial.before, 3),
                "cost_after": round(trial.after, 3),
                "gain": round(trial.gain, 4),
                "calls": query.calls,
                "mean_time_ms": query.mean_time_ms,
            }
        )
        mean = query.mean_time_ms
        if advice.kind == "sqlite":
            mean = trial.before
        if mean is not None:
            measured = True
            saved_ms += mean * trial.gain * query.calls
            calls += query.calls
    gain = min(t.gain for t in rec.trials)
    evidence: dict[str, Any] = {
        "table": rec.candidate.table,
        "columns": list(rec.candidate.columns),
        "include": list(rec.candidate.include),
        "cost_unit": advice.unit,
        "queries": queries,
        "table_rows": rec.table_rows,
        "table_writes_per_s": rec.table_writes_per_s,
        "index_size_bytes": rec.size_bytes,
        "write_overhead": write_overhead(rec, advice.kind),
    }
    rate = 0.0
    if advice.window_s and calls:
        rate = calls / advice.window_s
    impact = Impact(
        time_per_request_s=(saved_ms / calls / 1000.0) if calls else 0.0,
        requests_per_s=rate,
        note=(
            "measured mean time × cost drop, per execution"
            if measured
            else "no measured times in this workload: gain in planner cost only"
        ),
    )
    confidence = 0.6 + 0.3 * min(1.0, gain)
    if sampled:
        confidence -= 0.1
    severity = "high" if gain >= 0.9 and len(rec.trials) > 1 else "medium"
    if advice.kind == "postgresql":
        how = "online, without blocking writes (outside a transaction)"
    else:
        how = "it locks the database for writes while it builds"
    served = len(rec.trials)
    title = (
        f"Missing index {rec.candidate.label}: {served} "
        f"{'query' if served == 1 else 'queries'} at least {math.floor(gain * 100)}% cheaper"
    )
    return Finding(
        id=finding_id("missing_index", advice.kind, rec.candidate.label),
        kind="missing_index",
        severity=severity,
        title=title,
        subject=rec.candidate.label,
        evidence=evidence,
        impact=impact,
        fix=Fix(
            summary=f"Create the index ({how}).", code=fix_code(rec, advice.kind), language="sql"
        ),
        confidence=round(max(0.3, min(0.95, confidence)), 2),
    )


def _no_index_helps(advice: Advice, outcome: QueryOutcome) -> Finding:
    query = outcome.query
    summary, code, language = _remedy(advice.kind, outcome)
    before = outcome.before
    evidence: dict[str, Any] = {
        "fingerprint": query.fingerprint,
        "sql": query.sql,
        "reason": outcome.reason,
        "remedy": outcome.remedy,
        "cost_unit": advice.unit,
        "cost": None if before is None else round(before.cost, 3),
        "rows": None if before is None else before.rows,
        "calls": query.calls,
        "mean_time_ms": query.mean_time_ms,
    }
    rate = query.calls / advice.window_s if advice.window_s else 0.0
    mean = query.mean_time_ms
    if mean is None and advice.kind == "sqlite" and before is not None:
        mean = before.cost
    impact = Impact(
        time_per_request_s=(mean or 0.0) / 1000.0,
        requests_per_s=rate,
        note="the query's whole time: what a rewrite could save at most",
    )
    return Finding(
        id=finding_id("no_index_helps", advice.kind, query.fingerprint),
        kind="no_index_helps",
        severity="low",
        title=f"No index helps: {outcome.reason}",
        subject=query.fingerprint,
        evidence=evidence,
        impact=impact,
        fix=Fix(summary=summary, code=code, language=language),
        confidence=0.7,
    )


def _remedy(kind: str, outcome: QueryOutcome) -> tuple[str, str, str]:
    """``(summary, code, language)`` for what would help instead of a btree index."""
    remedy = outcome.remedy
    table = outcome.tables[0] if outcome.tables else "the_table"
    if remedy == "trigram":
        column = outcome.reason.rsplit(" on ", 1)[-1].split(",")[0].strip()
        name, _, col = column.partition(".")
        if kind == "postgresql":
            code = (
                "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"
                f"CREATE INDEX CONCURRENTLY {quote_identifier(f'idx_{name}_{col}_trgm')} "
                f"ON {quote_identifier(name)} USING gin ({quote_identifier(col)} gin_trgm_ops);"
            )
            return (
                "A btree cannot search inside strings: a trigram (pg_trgm) GIN index serves "
                "LIKE/ILIKE '%...%'.",
                code,
                "sql",
            )
        code = (
            f"CREATE VIRTUAL TABLE {name}_fts USING fts5({col}, content={quote_identifier(name)});"
        )
        return ("A btree cannot search inside strings: use an FTS5 full-text table.", code, "sql")
    if remedy == "summary":
        view = "MATERIALIZED VIEW" if kind == "postgresql" else "TABLE"
        code = f"CREATE {view} {table}_summary AS\n{outcome.query.example or outcome.query.sql};"
        return (
            "It reads every row by design: keep a summary table (or materialized view) "
            "refreshed on a schedule, or maintain counters on write.",
            code,
            "sql",
        )
    if remedy == "keyset":
        return (
            "Paginate by key instead of OFFSET: remember the last row's sort key and ask for "
            "rows after it (WHERE (created_at, id) < (:last_created_at, :last_id) ORDER BY "
            "created_at DESC, id DESC LIMIT n).",
            "",
            "text",
        )
    if remedy == "unbounded":
        return (
            "It has no filter, so it reads the whole table: add a WHERE clause or paginate "
            "with LIMIT and a key.",
            "",
            "text",
        )
    return (
        "The filter matches a large share of the table, so scanning it is cheapest. Filter "
        "on something more selective, paginate, precompute the result, or use a partial "
        "index if the app asks only for the rare values.",
        "",
        "text",
    )
