"""The store schema, as an ordered list of migrations.

Migration ``i`` (0-based) takes a store from schema version ``i`` to ``i + 1``;
SQLite keeps the applied version in ``PRAGMA user_version``. Released
migrations are never edited: a schema change is a new script appended to
:data:`MIGRATIONS`. The PostgreSQL backend will keep the same tables and
columns (with ``BYTEA`` for ``BLOB``) and the same version numbers.

Tables (version 1):

``runs``
    One row per run: label, kind, start and end (Unix seconds), the run
    configuration, counters and active virtual users as JSON, why it was
    aborted, and summary columns for listing (``requests``, ``errors``,
    ``passed`` -- NULL when there were no thresholds -- and ``p95_ms``).
``run_names``
    One row per request name of a run: its tags and checks as JSON.
``run_series``
    One row per request name and second of a run: finished requests, errors by
    kind as JSON, and the two latency histograms (intended-time ``latency`` and
    ``service``) in their binary form.
``run_thresholds``
    One row per threshold verdict, in the run's order (``idx``).
"""

from __future__ import annotations

import sqlite3

#: Marks a SQLite file as a perfpilot store (``PRAGMA application_id``): "pfpl".
APPLICATION_ID = 0x7066706C

MIGRATIONS: tuple[str, ...] = (
    # 1: load runs.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        config_json TEXT NOT NULL,
        counters_json TEXT NOT NULL,
        vus_json TEXT NOT NULL,
        aborted TEXT,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        passed INTEGER,
        p95_ms REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX runs_by_start ON runs (started_at DESC, id DESC);
    CREATE TABLE run_names (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        tags_json TEXT NOT NULL,
        checks_json TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE run_series (
        run_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        second INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors_json TEXT NOT NULL,
        latency BLOB NOT NULL,
        service BLOB NOT NULL,
        PRIMARY KEY (run_id, name, second),
        FOREIGN KEY (run_id, name) REFERENCES run_names (run_id, name) ON DELETE CASCADE
    );
    CREATE TABLE run_thresholds (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        metric TEXT NOT NULL,
        expression TEXT NOT NULL,
        passed INTEGER NOT NULL,
        observed REAL,
        aborted INTEGER NOT NULL,
        PRIMARY KEY (run_id, idx)
    );
    """,
)

#: The schema version this code writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    """Split a migration script into single SQL statements.

    Statements are cut where ``sqlite3.complete_statement`` says one ends, so
    semicolons inside strings and trigger bodies are kept whole. Running them
    one by one (instead of ``executescript``, which commits first) lets a
    migration share one transaction with its ``user_version`` bump.

    Args:
        script: Statements separated by semicolons at line ends.

    Returns:
        The statements, stripped, without empty ones.
    """
    result: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            result.append(pending.strip())
            pending = ""
    if pending.strip():
        result.append(pending.strip())
    return result
