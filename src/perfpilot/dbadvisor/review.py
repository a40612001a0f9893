"""Everything the database part of a report needs, in one call.

:func:`review_database` connects to the database read-only, runs the index
advisor (and the query hints) on the statements the in-app recorder saw in
one window of the store, then the health checks, and returns their findings
with one-line notes on what was read. ``perfpilot report --db DSN`` merges
them into the window's report (:mod:`perfpilot.report.database`).
"""

from __future__ import annotations

import dataclasses

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.advice_findings import advice_findings
from perfpilot.dbadvisor.advisor import AdviceOptions, advise
from perfpilot.dbadvisor.database import open_database
from perfpilot.dbadvisor.health import HealthOptions, check_health
from perfpilot.dbadvisor.workload import app_data_workload

__all__ = ["DatabaseReview", "review_database"]


@dataclasses.dataclass(frozen=True)
class DatabaseReview:
    """The advisor's and the health checks' findings for one database.

    Attributes:
        database: The DSN without its password, or the SQLite path.
        findings: Index advice and query hints, then health findings.
        notes: What was read, one line each.
    """

    database: str
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()


def review_database(
    dsn: str,
    app: AppData,
    *,
    options: AdviceOptions | None = None,
    health_options: HealthOptions | None = None,
    statement_timeout_s: float = 30.0,
) -> DatabaseReview:
    """Advise on the queries of ``app`` against ``dsn``, and check the database's health.

    Args:
        dsn: A PostgreSQL URL or a SQLite path; the password appears in no
            output.
        app: One window of in-app data: its query aggregates of the
            database's kind are the workload (values sampled from the tables,
            as the store keeps none).
        options: The advisor's thresholds.
        health_options: The health checks' thresholds.
        statement_timeout_s: The limit on each statement the advisor runs.

    Returns:
        The findings and notes.

    Raises:
        UsageError, ConfigError: The database cannot be opened, or (PostgreSQL)
            hypopg is missing.
    """
    findings: list[Finding] = []
    with open_database(dsn, statement_timeout_s=statement_timeout_s) as db:
        display = db.display
        workload = app_data_workload(app, dialect=db.kind)
        if workload.queries:
            advice = advise(db, workload, options)
            findings += advice_findings(advice)
            note = advice.summary()
        else:
            note = (
                f"No {db.kind} statements were recorded in this window: no index advice "
                "or query hints, only the health checks."
            )
    findings += check_health(dsn, options=health_options)
    return DatabaseReview(display, tuple(findings), (note,))
