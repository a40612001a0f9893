"""The database's findings in a report: alone (``perfpilot db ... --format html``) or
merged into a window's report (``perfpilot report --db DSN``). Pure: no I/O.

:func:`findings_report` makes a :class:`~perfpilot.report.model.Report` of
findings only (index advice, health checks, query hints): there are no
requests, so the assessment, bottleneck and monitoring sections say so and
draw no chart, and the findings fill the Optimization Plan and the
Implementation Guide.

:func:`with_database_findings` adds the database's findings to a report built
from the store. The in-app detectors and the database advisor can speak of
one statement: the advisor's costed findings win over the detectors' guesses
(:func:`superseded`), and a query hint repeats no detector finding of the same
kind on the same statement.

Example:
    >>> report = findings_report([], title="Database health", database="shop.db",
    ...                          generated_at=0.0)
    >>> report.notes[0]
    'Database: shop.db. The report holds its findings only: no requests were read.'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding, rank
from perfpilot.report.model import Report, build_report

__all__ = ["findings_report", "statement_fingerprints", "superseded", "with_database_findings"]

#: In-app finding kinds that a costed advisor finding on the same statement replaces:
#: the detectors' index guess, and the slow query whose fix is to run the advisor.
SUPERSEDED_KINDS = frozenset({"missing_index", "slow_query"})

#: Query hint kinds and the in-app detector kind that says the same thing.
HINT_TWINS = {"select_star": "select_star", "unbounded_select": "unbounded_result"}

#: Advisor finding kinds that cost a statement against the database.
COSTED_KINDS = frozenset({"missing_index", "no_index_helps"})


def findings_report(
    findings: Iterable[Finding],
    *,
    title: str,
    database: str,
    generated_at: float,
    notes: Sequence[str] = (),
) -> Report:
    """A report holding ``findings`` and nothing else.

    Args:
        findings: The database's findings, in the order to show them (the
            advisor's: index advice, then hints; health checks: most severe
            first). They are not ranked again: without requests most have no
            measured impact, and ranking would put a hint before the index it
            follows.
        title: The report's title.
        database: The database, its password already removed.
        generated_at: When the findings were made, Unix time.
        notes: Caveats to add after the line naming the database.

    Returns:
        The report: empty assessment, bottlenecks and monitoring sections.
    """
    report = build_report(
        AppData(since=generated_at, until=generated_at), title=title, generated_at=generated_at
    )
    first = f"Database: {database}. The report holds its findings only: no requests were read."
    return dataclasses.replace(report, findings=tuple(findings), notes=(first, *notes))


def statement_fingerprints(finding: Finding) -> set[str]:
    """The statement fingerprints a finding is about (from its evidence)."""
    found = set()
    fingerprint = finding.evidence.get("fingerprint")
    if isinstance(fingerprint, str):
        found.add(fingerprint)
    for query in finding.evidence.get("queries") or ():
        if isinstance(query, dict) and isinstance(query.get("fingerprint"), str):
            found.add(query["fingerprint"])
    return found


def superseded(
    app_findings: Iterable[Finding],
    db_findings: Iterable[Finding],
    observed: Iterable[str] = (),
) -> set[str]:
    """Ids of the findings, in-app or hint, that another finding already covers.

    - An in-app ``missing_index`` or ``slow_query`` finding on a statement the
      advisor costed (``missing_index`` or ``no_index_helps``): the advisor
      measured what the detector could only suggest.
    - A query hint on a statement the in-app detectors reported with the
      same meaning (``select_star``; ``unbounded_select`` as
      ``unbounded_result``): the detector's finding has the observed rows and
      rate.
    - A query hint of such a kind on a statement the app recorded (its
      fingerprint is in ``observed``) that the detectors judged and did not
      report: they saw its real rows and time, the hint only its text.
    """
    app = list(app_findings)
    seen = set(observed)
    database = list(db_findings)
    costed: set[str] = set()
    for finding in database:
        if finding.kind in COSTED_KINDS:
            costed |= statement_fingerprints(finding)
    reported = {(f.kind, fp) for f in app for fp in statement_fingerprints(f)}
    gone = {f.id for f in app if f.kind in SUPERSEDED_KINDS and statement_fingerprints(f) & costed}
    for finding in database:
        twin = HINT_TWINS.get(finding.kind)
        prints = statement_fingerprints(finding)
        if twin and any((twin, fp) in reported or fp in seen for fp in prints):
            gone.add(finding.id)
    return gone


def with_database_findings(
    report: Report,
    findings: Sequence[Finding],
    *,
    database: str,
    notes: Sequence[str] = (),
    observed: Iterable[str] = (),
) -> Report:
    """``report`` with the database's ``findings`` merged into its plan and guide.

    Args:
        report: A report built from the store.
        findings: The advisor's and the health checks' findings for its window.
        database: The database, its password already removed.
        notes: Caveats of the database's part (what the workload was).
        observed: Fingerprints of the statements the app recorded in the
            report's window (see :func:`superseded`).

    Returns:
        The report, findings ranked again, with a note on what was merged and
        what was left out as covered by another finding.
    """
    gone = superseded(report.findings, findings, observed)
    kept = [f for f in findings if f.id not in gone]
    merged = [f for f in report.findings if f.id not in gone] + kept
    line = (
        f"Database {database}: {len(kept)} finding(s) from the index advisor, query hints "
        "and health checks"
    )
    replaced = len(report.findings) + len(kept) - len(merged)
    if replaced:
        line += f"; {replaced} in-app finding(s) replaced by the advisor's costed ones"
    return dataclasses.replace(
        report, findings=tuple(rank(merged)), notes=(*report.notes, line + ".", *notes)
    )
