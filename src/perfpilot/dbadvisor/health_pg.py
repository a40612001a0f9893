"""PostgreSQL health checks (PgHero-class), run read-only.

:func:`check_postgres` connects (or takes a psycopg connection), opens one
transaction, makes it ``READ ONLY`` with a ``statement_timeout`` and a
``lock_timeout``, runs every check inside its own savepoint so one failing
check (a timeout, a missing privilege) does not stop the others, and always
rolls back. The checks live beside this module, one family each:

- :mod:`~perfpilot.dbadvisor.health_pg_indexes`: unused, duplicate,
  redundant-prefix and invalid indexes, unindexed foreign keys;
- :mod:`~perfpilot.dbadvisor.health_pg_bloat`: table and index bloat estimates;
- :mod:`~perfpilot.dbadvisor.health_pg_tables`: tables overdue for vacuum or
  analyze, sequences near their limit;
- :mod:`~perfpilot.dbadvisor.health_pg_activity`: cache hit ratio,
  connections, long-running and idle-in-transaction sessions, the slowest
  statements (``pg_stat_statements``).

Every query carries the comment ``/* perfpilot health */`` so the slowest
statement check can leave the checks' own statements out. psycopg is an
optional dependency, imported only here and only when a check runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.database import connect_postgres
from perfpilot.dbadvisor.health import HealthOptions, failed_check
from perfpilot.errors import UsageError
from perfpilot.store.dsn import scrub, secrets_of

if TYPE_CHECKING:
    import psycopg

__all__ = ["MARK", "PgSession", "check_postgres", "pg_checks"]

#: Comment put on every check query, to recognise them in pg_stat_statements.
MARK = "/* perfpilot health */"

#: What lets a role read every statistics view the checks use.
GRANT_MONITOR = "GRANT pg_monitor TO <role>;"

#: Schemas that belong to PostgreSQL itself, as a SQL condition on ``n.nspname``.
USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"
)


class PgSession:
    """What a check gets: a way to query, the settings, and the options.

    Args:
        conn: A psycopg connection inside the checks' read-only transaction.
        options: The thresholds.
        secrets: Passwords to scrub from error messages.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        options: HealthOptions,
        secrets: Sequence[str] = (),
    ) -> None:
        self.conn = conn
        self.options = options
        self.secrets = list(secrets)
        self._settings: dict[str, str] | None = None
        #: Results shared between checks (say, the list of indexes), by name.
        self.cache: dict[str, Any] = {}

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one check query (``MARK`` is prepended) and return its rows as dicts."""
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(f"{MARK} {sql}".encode(), params)
            return list(cursor.fetchall())

    def setting(self, name: str) -> str:
        """A server setting (``pg_settings.setting``, in its base unit), or ``""``."""
        if self._settings is None:
            found = self.rows("SELECT name, setting FROM pg_settings")
            self._settings = {str(r["name"]): str(r["setting"]) for r in found}
        return self._settings.get(name, "")

    def number(self, name: str, default: float = 0.0) -> float:
        """A numeric server setting, or ``default`` when absent or not a number."""
        try:
            return float(self.setting(name))
        except ValueError:
            return default


Check = Callable[[PgSession], list[Finding]]


def pg_checks() -> list[tuple[str, Check]]:
    """Every PostgreSQL check, by name, in the order they run."""
    from perfpilot.dbadvisor import (
        health_pg_activity,
        health_pg_bloat,
        health_pg_indexes,
        health_pg_tables,
    )

    return [
        *health_pg_indexes.CHECKS,
        *health_pg_bloat.CHECKS,
        *health_pg_tables.CHECKS,
        *health_pg_activity.CHECKS,
    ]


def check_postgres(target: str | psycopg.Connection[Any], options: HealthOptions) -> list[Finding]:
    """Run every PostgreSQL check on a URL or an open psycopg connection.

    A connection given is used as it is (autocommit or not) but must be idle,
    outside any transaction; the checks' transaction is rolled back.

    Raises:
        UsageError: psycopg is missing, the server cannot be reached
            (:class:`~perfpilot.errors.ConnectError`, the message shows the URL
            without its password), or the connection given is inside a
            transaction.
    """
    if not isinstance(target, str):
        return _run(target, options, ())
    conn = connect_postgres(target, application_name="perfpilot health", autocommit=True)
    with conn:
        return _run(conn, options, secrets_of(target))


def _run(
    conn: psycopg.Connection[Any], options: HealthOptions, secrets: Sequence[str]
) -> list[Finding]:
    import psycopg
    from psycopg.pq import TransactionStatus

    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise UsageError("health checks need a connection that is not inside a transaction")
    session = PgSession(conn, options, secrets)
    timeout_ms = str(max(1, round(options.statement_timeout_s * 1000)))
    findings: list[Finding] = []
    with conn.transaction(force_rollback=True):
        conn.execute(f"{MARK} SET TRANSACTION READ ONLY")
        conn.execute(f"{MARK} SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
        conn.execute(f"{MARK} SELECT set_config('lock_timeout', %s, true)", (timeout_ms,))
        for name, check in pg_checks():
            try:
                with conn.transaction():
                    findings.extend(check(session))
            except psycopg.Error as exc:
                findings.append(failed_check(name, _reason(exc, secrets), GRANT_MONITOR))
    return findings


def _reason(exc: Exception, secrets: Sequence[str]) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return scrub(" ".join(first.split()), secrets)


def seconds(value: Any) -> float:
    """A duration column (seconds as a number, or ``None``) as a float."""
    return 0.0 if value is None else float(value)


def pretty_bytes(size: float) -> str:
    """``1536`` → ``1.5 KiB``: for titles only (evidence keeps the exact bytes)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns
