"""Gather a report's inputs from a store: the window's in-app data, the load run, the diagnosis.

This is the I/O side of reporting; :func:`perfpilot.report.model.build_report`
is the pure side. A report covers either one stored load run (and the in-app
data recorded during it) or a window of time ending now. Given a database
(``database=``), the index advisor runs on the window's recorded queries and
the health checks on the database, and their findings join the report's
(:func:`perfpilot.dbadvisor.review.review_database`,
:func:`perfpilot.report.database.with_database_findings`).

Example:
    >>> from perfpilot.store import open_store
    >>> with open_store("sqlite://") as store:  # doctest: +IGNORE_EXCEPTION_DETAIL
    ...     collect_report(store, since=3600)
    Traceback (most recent call last):
    UsageError: nothing was recorded ...
"""

from __future__ import annotations

from perfpilot.clock import Clock, SystemClock
from perfpilot.errors import UsageError
from perfpilot.records import LoadResult
from perfpilot.report.assessment import Targets
from perfpilot.report.model import Report, build_report
from perfpilot.report.numbers import utc
from perfpilot.store.app_data import read_app_data
from perfpilot.store.base import Store


def collect_report(
    store: Store,
    *,
    run_id: int | None = None,
    since: float | None = None,
    service: str | None = None,
    targets: Targets | None = None,
    clock: Clock | None = None,
    database: str | None = None,
) -> Report:
    """Read one window from ``store``, diagnose it and build its report.

    Args:
        store: An open store.
        run_id: A stored load run: the report covers it and the in-app data
            of the flush intervals that started during it.
        since: Otherwise, the window is this many seconds back from now.
        service: Only this service's in-app data (all services when ``None``).
        targets: What healthy means (defaults of :class:`Targets` when ``None``).
        clock: Source of "now" (the system clock when ``None``).
        database: A database URL or SQLite path: add its index advice (on the
            window's recorded queries), query hints and health findings.

    Returns:
        The report.

    Raises:
        UsageError: Both or neither of ``run_id`` and ``since`` are given, or
            nothing was recorded in the window, or the database cannot be
            opened.
        StoreError: The store cannot be read, or has no run ``run_id``.
    """
    if (run_id is None) == (since is None):
        raise UsageError("give either a run id or a window (since), not both or neither")
    now = (clock or SystemClock()).time()
    if run_id is not None:
        load = store.get_run(run_id)
        return window_report(
            store,
            start=load.started_at,
            end=load.ended_at,
            load=load,
            service=service,
            targets=targets,
            generated_at=now,
            database=database,
        )
    assert since is not None
    return window_report(
        store,
        start=now - since,
        end=now,
        service=service,
        targets=targets,
        generated_at=now,
        database=database,
    )


def window_report(
    store: Store,
    *,
    start: float,
    end: float,
    load: LoadResult | None = None,
    service: str | None = None,
    targets: Targets | None = None,
    generated_at: float | None = None,
    database: str | None = None,
) -> Report:
    """The report of the in-app data between ``start`` and ``end`` (and ``load``).

    Args:
        store: An open store.
        start: Start of the window, Unix time (flush intervals that started at
            or after it count).
        end: End of the window, Unix time.
        load: The load run over the window, when there was one.
        service: Only this service's in-app data (all services when ``None``).
        targets: What healthy means.
        generated_at: When the report is made (``end`` when ``None``).
        database: A database URL or SQLite path whose findings join the report.

    Returns:
        The report, with the findings of
        :func:`perfpilot.analyze.diagnose.diagnose` (and of the database).

    Raises:
        UsageError: Nothing was recorded in the window, or the database
            cannot be opened.
        StoreError: The store cannot be read.
    """
    from perfpilot.analyze.diagnose import diagnose

    app = read_app_data(store, since=start, until=end, service=service)
    if app.empty and (load is None or load.totals().requests == 0):
        who = f" for service {service!r}" if service else ""
        raise UsageError(
            f"nothing was recorded{who} between {utc(start)} and {utc(end)} "
            "(run 'perfpilot load', or instrument the app with perfpilot.instrument)"
        )
    findings = diagnose(app, load)
    report = build_report(app, load, findings, targets, generated_at=generated_at)
    if database is None:
        return report
    from perfpilot.dbadvisor.review import review_database
    from perfpilot.report.database import with_database_findings

    review = review_database(database, app)
    return with_database_findings(
        report,
        review.findings,
        database=review.database,
        notes=review.notes,
        observed={q.fingerprint for q in app.queries},
    )
