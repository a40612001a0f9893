"""Database health checks: one entry point for PostgreSQL and SQLite.

:func:`check_health` takes a connection URL, a SQLite file path or an open
connection, picks the dialect and runs every check of that dialect
(:mod:`perfpilot.dbadvisor.health_pg`, :mod:`perfpilot.dbadvisor.health_sqlite`).
Checks only read: on PostgreSQL in one read-only transaction with a statement
timeout, rolled back at the end; on SQLite through a read-only connection (or
``PRAGMA query_only`` on a connection it is given). Every problem found is a
:class:`~perfpilot.analyze.findings.Finding` with its evidence and the SQL
that fixes it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any

from perfpilot.analyze.findings import SEVERITIES, Finding, Fix, Impact, finding_id
from perfpilot.dbadvisor.database import database_kind
from perfpilot.errors import UsageError

__all__ = [
    "DIALECTS",
    "HealthOptions",
    "check_health",
    "detect_dialect",
    "failed_check",
    "health_finding",
    "sort_findings",
]

#: Dialect names :func:`check_health` accepts, with their aliases.
DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "sqlite": "sqlite"}

_MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class HealthOptions:
    """Thresholds and limits of the health checks.

    Attributes:
        statement_timeout_s: Longest any one check query may run.
        long_running_s: A query active this long is reported.
        idle_in_transaction_s: A session idle inside a transaction this long
            is reported.
        connections_used_max: Fraction of the usable ``max_connections``
            above which connections are reported.
        cache_hit_ratio_min: Buffer cache hit ratio (tables, and indexes,
            separately) below which it is reported.
        cache_blocks_min: Block reads (hits plus misses) needed before a
            cache hit ratio means anything.
        sequence_used_max: Fraction of a sequence's usable range (the
            sequence's own limit or its column type's) above which it is
            reported.
        bloat_ratio_min: Estimated wasted fraction of a table or index above
            which it is reported, when ...
        bloat_bytes_min: ... the estimated waste is also at least this many
            bytes.
        dead_tuples_min: Tables with fewer dead (or, for analyze, modified)
            rows than this are never reported as overdue for vacuum or
            analyze.
        slow_statements: How many of the slowest statements (by total time,
            from ``pg_stat_statements``) to report.
        slow_statement_total_ms_min: A statement's total time must reach
            this to be reported.
    """

    statement_timeout_s: float = 5.0
    long_running_s: float = 60.0
    idle_in_transaction_s: float = 60.0
    connections_used_max: float = 0.8
    cache_hit_ratio_min: float = 0.99
    cache_blocks_min: int = 10_000
    sequence_used_max: float = 0.75
    bloat_ratio_min: float = 0.5
    bloat_bytes_min: int = 100 * _MIB
    dead_tuples_min: int = 1_000
    slow_statements: int = 5
    slow_statement_total_ms_min: float = 1_000.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthOptions:
        """Inverse of :meth:`to_dict`; missing keys take their defaults.

        Raises:
            UsageError: An unknown key.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UsageError(f"unknown health option(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = int(value) if known[name].type == "int" else float(value)
        return cls(**values)


def detect_dialect(target: object) -> str:
    """The dialect of a target: ``postgres`` or ``sqlite``.

    A ``postgres://``/``postgresql://`` URL (``+driver`` allowed) or a
    psycopg connection is PostgreSQL; a ``sqlite://`` URL, any other string
    (a file path) or a :class:`sqlite3.Connection` is SQLite.

    Raises:
        UsageError: The target is neither a string nor a known connection.
    """
    if isinstance(target, str):
        return "postgres" if database_kind(target) == "postgresql" else "sqlite"
    if isinstance(target, sqlite3.Connection):
        return "sqlite"
    if type(target).__module__.split(".")[0] == "psycopg":
        return "postgres"
    raise UsageError(f"cannot check the health of a {type(target).__name__}: give a DSN or path")


def check_health(
    target: str | Any,
    *,
    dialect: str | None = None,
    options: HealthOptions | None = None,
) -> list[Finding]:
    """Run every health check of the target's dialect.

    Args:
        target: A PostgreSQL URL (``postgresql://user:pw@host/db``), a SQLite
            path or ``sqlite:///path`` URL, or an open ``psycopg.Connection``
            or :class:`sqlite3.Connection` (which must not be inside a
            transaction; it is left as it was found).
        dialect: ``postgres`` or ``sqlite``; guessed from ``target`` when
            ``None``.
        options: Thresholds; the defaults of :class:`HealthOptions` otherwise.

    Returns:
        The findings, most severe first. A check that could not run (say, for
        lack of privileges) is one ``health_check_failed`` finding of severity
        ``info``.

    Raises:
        UsageError: Unknown dialect, unreachable server, or the connection
            given is inside a transaction. No message contains a password.
        ConfigError: The SQLite file is missing or not a database.

    Example:
        >>> for finding in check_health("app.db"):  # doctest: +SKIP
        ...     print(finding.severity, finding.title)
        medium Foreign key orders(user_id) → users has no index
    """
    name = detect_dialect(target) if dialect is None else DIALECTS.get(dialect.lower())
    if name is None:
        raise UsageError(f"unknown dialect {dialect!r}: use postgres or sqlite")
    opts = HealthOptions() if options is None else options
    if name == "postgres":
        from perfpilot.dbadvisor import health_pg

        findings = health_pg.check_postgres(target, opts)
    else:
        from perfpilot.dbadvisor import health_sqlite

        findings = health_sqlite.check_sqlite(target, opts)
    return sort_findings(findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by kind and subject (stable, for output and tests)."""
    order = {name: i for i, name in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order[f.severity], f.kind, f.subject))


def health_finding(
    kind: str,
    severity: str,
    title: str,
    subject: str,
    evidence: Mapping[str, Any],
    fix: str,
    code: str = "",
    *,
    confidence: float = 0.8,
    impact: Impact | None = None,
    language: str = "sql",
    key: tuple[str, ...] | None = None,
) -> Finding:
    """A finding of a health check or hint, its id derived from ``kind`` and ``key``.

    Args:
        kind: Check name, e.g. ``unused_index``.
        severity: One of :data:`~perfpilot.analyze.findings.SEVERITIES`.
        title: One line a person reads first.
        subject: What it is about (a qualified table or index name, a pid, a
            statement fingerprint).
        evidence: The numbers behind it, units in the key names.
        fix: One sentence: what to change.
        code: The SQL (or configuration) that makes the change.
        confidence: How sure the check is that the fix helps.
        impact: Estimated cost, when it can be estimated.
        language: Language of ``code`` (``text`` when there is no code).
        key: What the id is derived from; ``(subject,)`` when ``None``.
    """
    return Finding(
        id=finding_id(kind, *((subject,) if key is None else key)),
        kind=kind,
        severity=severity,
        title=title,
        subject=subject,
        evidence=dict(evidence),
        impact=Impact() if impact is None else impact,
        fix=Fix(summary=fix, code=code, language=language if code else "text"),
        confidence=confidence,
    )


def failed_check(name: str, reason: str, code: str = "") -> Finding:
    """The ``info`` finding that says a check could not run, and why.

    Args:
        name: The check's name.
        reason: The database's error, one line, without secrets.
        code: What grants the missing access, when known.
    """
    return health_finding(
        "health_check_failed",
        "info",
        f"Health check {name} could not run: {reason}",
        name,
        {"check": name, "error": reason},
        "Run the checks as a role that may read the statistics and catalog views, "
        "or raise the statement timeout.",
        code,
        confidence=0.5,
    )
