"""Query hints for a whole workload: one finding per (hint kind, statement fingerprint).

:func:`perfpilot.dbadvisor.hints.query_hints` reads one SQL text. Here it runs
over every query of a :class:`~perfpilot.dbadvisor.workload.Workload` (the
example with its real values when the source kept one, else the normalized
text) and the results are tied to the workload:

- the evidence names the query's fingerprint (the id the in-app recorder, the
  store and the index advice use), its normalized SQL, where it was seen and,
  when the source measured them, its calls and time;
- several hints of one kind on one statement (two functions on columns, say)
  become one finding, their fixes one after the other, so a statement never
  gets the same advice twice;
- the findings are ordered by the statement's total time (most first), then
  severity: the hint on the statement that costs most comes first.

A hint's impact is left unknown (zero): the text alone does not say how much
a rewrite saves, so in a report hints rank after findings whose saving is
estimated. The statement's own figures are in the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perfpilot.analyze.findings import SEVERITIES, Finding, Fix, finding_id
from perfpilot.dbadvisor.hints import query_hints
from perfpilot.dbadvisor.workload import Query, Workload

__all__ = ["workload_hints"]

#: Longest subject (normalized SQL) a hint keeps.
MAX_SUBJECT_CHARS = 200


def workload_hints(
    workload: Workload,
    dialect: str,
    *,
    schema: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Finding]:
    """Hints for every query of ``workload``, one per (kind, fingerprint).

    Args:
        workload: The queries.
        dialect: ``postgresql`` or ``sqlite`` (as :attr:`Database.kind`).
        schema: Column types by table then column
            (:meth:`perfpilot.dbadvisor.catalog.Catalog.column_types`), which
            make ``implicit_cast`` hints exact.

    Returns:
        The hints, the costliest statement's first (total time, then calls),
        then by severity.

    Example:
        >>> from perfpilot.dbadvisor.workload import Query, Workload
        >>> q = Query("0123456789abcdef", "SELECT * FROM t WHERE lower(a) = ?", None)
        >>> [f.kind for f in workload_hints(Workload("sql", (q,)), "sqlite")]
        ['function_on_column', 'select_star']
    """
    order = {name: i for i, name in enumerate(SEVERITIES)}
    ranked: list[tuple[tuple[float, int, int, str], Finding]] = []
    seen: set[tuple[str, str]] = set()
    for query in workload.queries:
        for kind, hints in _by_kind(query, dialect, schema).items():
            if (kind, query.fingerprint) in seen:
                continue
            seen.add((kind, query.fingerprint))
            finding = _merged(query, dialect, hints)
            key = (
                -(query.total_time_ms or 0.0),
                -query.calls,
                order[finding.severity],
                finding.kind,
            )
            ranked.append((key, finding))
    ranked.sort(key=lambda pair: pair[0])
    return [finding for _, finding in ranked]


def _by_kind(
    query: Query, dialect: str, schema: Mapping[str, Mapping[str, str]] | None
) -> dict[str, list[Finding]]:
    groups: dict[str, list[Finding]] = {}
    for hint in query_hints(query.example or query.sql, dialect, schema=schema):
        groups.setdefault(hint.kind, []).append(hint)
    return groups


def _merged(query: Query, dialect: str, hints: list[Finding]) -> Finding:
    """One finding of ``hints`` (all of one kind, on ``query``), tied to the query."""
    order = {name: i for i, name in enumerate(SEVERITIES)}
    hints = sorted(hints, key=lambda h: (order[h.severity], -h.confidence))
    first = hints[0]
    # The hint's own fingerprint is of the text it parsed; the workload's is the one
    # the store and the index advice use.
    evidence: dict[str, Any] = {
        "fingerprint": query.fingerprint,
        "sql": query.sql,
        "location": query.location,
        "calls": query.calls,
        "total_time_ms": query.total_time_ms,
        "mean_time_ms": query.mean_time_ms,
        **{key: value for key, value in first.evidence.items() if key != "fingerprint"},
    }
    title = first.title
    if len(hints) > 1:
        evidence["also"] = [h.title for h in hints[1:]]
        title = f"{title} (and {len(hints) - 1} more)"
    codes = list(dict.fromkeys(h.fix.code for h in hints if h.fix.code))
    subject = query.sql if len(query.sql) <= MAX_SUBJECT_CHARS else query.sql[:199] + "…"
    return Finding(
        id=finding_id(first.kind, dialect, query.fingerprint),
        kind=first.kind,
        severity=first.severity,
        title=title,
        subject=subject,
        evidence=evidence,
        impact=first.impact,
        fix=Fix(first.fix.summary, "\n".join(codes), "sql" if codes else "text"),
        confidence=max(h.confidence for h in hints),
    )
