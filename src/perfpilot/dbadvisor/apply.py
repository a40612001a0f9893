"""Creating the recommended indexes (``perfpilot db advise --apply``).

The advisor itself never changes a database. Applying runs each recommended
statement on a separate, writable connection: on PostgreSQL in autocommit
mode, since ``CREATE INDEX CONCURRENTLY`` cannot run inside a transaction
(it builds without blocking writes; a failed build leaves an invalid index
that is dropped again here); on SQLite as a plain ``CREATE INDEX`` followed
by ``ANALYZE`` of the new index, as in the what-if trial.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from perfpilot.dbadvisor.advisor import Recommendation
from perfpilot.dbadvisor.catalog import quote_identifier
from perfpilot.dbadvisor.database import open_writable


@dataclasses.dataclass(frozen=True)
class Applied:
    """The result of creating one index.

    Attributes:
        ddl: The statement run.
        ok: Whether it succeeded.
        error: The database's message when it failed (password scrubbed).
    """

    ddl: str
    ok: bool
    error: str = ""


def apply_recommendations(dsn: str, recommendations: Sequence[Recommendation]) -> list[Applied]:
    """Create each recommended index on the database ``dsn`` names.

    Args:
        dsn: The database (the same one that was advised).
        recommendations: What to create.

    Returns:
        One :class:`Applied` per recommendation, in order; a failure does not
        stop the others.

    Raises:
        UsageError: The database cannot be reached.
    """
    results: list[Applied] = []
    with open_writable(dsn) as db:
        for rec in recommendations:
            ddl = rec.ddl.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
            if db.kind == "postgresql":
                ddl = rec.ddl.replace(
                    "CREATE INDEX CONCURRENTLY ", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ", 1
                )
            try:
                db.conn.execute(ddl)
            except Exception as exc:
                message = db.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
                if db.kind == "postgresql":
                    _drop_invalid(db.conn, rec.candidate.name)
                results.append(Applied(ddl, False, message))
            else:
                if db.kind == "sqlite":
                    db.conn.execute(f"ANALYZE {quote_identifier(rec.candidate.name)}")
                results.append(Applied(ddl, True))
    return results


def _drop_invalid(conn: object, name: str) -> None:
    """Drop an index a failed concurrent build left invalid."""
    execute = getattr(conn, "execute")  # noqa: B009 - a psycopg connection
    try:
        row = execute(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            (name,),
        ).fetchone()
        if row is not None and row[0]:
            execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote_identifier(name)}")
    except Exception:  # best effort: the first error is the one reported
        return
