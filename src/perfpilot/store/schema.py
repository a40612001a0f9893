"""The store schema, as an ordered list of migrations.

Migration ``i`` (0-based) takes a store from schema version ``i`` to ``i + 1``;
SQLite keeps the applied version in ``PRAGMA user_version``. Released
migrations are never edited: a schema change is a new script appended to
:data:`MIGRATIONS`. The PostgreSQL backend (:mod:`perfpilot.store.pg_schema`)
keeps the same tables, columns and version numbers in PostgreSQL types.

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

Tables (version 2), in-app monitoring (:class:`~perfpilot.app_records.AppSnapshot`):
every row is a delta of one process's flush interval and carries ``service``,
``host``, ``pid``, ``started_at`` and ``ended_at`` of that interval and its
``minute`` (``floor(started_at / 60) * 60``, for per-minute reads). Rows are
only ever appended; readers add them up. Histograms are binary blobs, spans
and reasons compact JSON.

``app_requests``, ``app_queries``, ``app_outbound``, ``app_caches``, ``app_units``, ``app_pools``
    One row per aggregate row of the snapshot (the fields of
    :class:`~perfpilot.app_records.RequestRow` and its siblings; an outbound
    call's host is ``remote_host``, a query's row count ``row_count``).
``app_resources``
    One row per resource sample (``sampled_at``, the sampled ``sample_pid``).
``app_traces``
    One row per kept trace (``request_at``; ``reasons_json``, ``spans_json``).
``app_drops``
    One row per kind of item dropped during the interval, with its count.

Each app table is indexed by ``(service, minute)`` and ``(minute)``; those with
a route also by ``(route, minute)``.

Version 3 adds to ``app_requests`` the response body bytes sent (``bytes_out``)
and the count of large responses sent uncompressed (``uncompressed``); rows
written before it read as 0.

Version 4 adds ``app_profiles``, the stack sampler's counts (one row per
route, ``stack`` of innermost application frames, ``via`` library frame;
``samples``), indexed like the other tables with a route, and to
``app_outbound`` the calls identical to another request's (``repeated_across``;
0 in rows written before it).

Version 5 adds to ``app_requests`` the time spent in timed cache commands
(``cache_time_s``; 0 in rows written before it) and to ``app_outbound`` the
application call site of the endpoint's calls (``call_site``; NULL before).
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
    # 2: in-app monitoring (append-only deltas of flush intervals).
    """
    CREATE TABLE app_requests (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        route TEXT NOT NULL,
        method TEXT NOT NULL,
        status_class INTEGER NOT NULL,
        count INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latency BLOB NOT NULL,
        db_time_s REAL NOT NULL,
        db_count INTEGER NOT NULL,
        outbound_time_s REAL NOT NULL,
        outbound_count INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        cache_hits INTEGER NOT NULL,
        cache_misses INTEGER NOT NULL
    );
    CREATE INDEX app_requests_by_service ON app_requests (service, minute);
    CREATE INDEX app_requests_by_minute ON app_requests (minute);
    CREATE INDEX app_requests_by_route ON app_requests (route, minute);
    CREATE TABLE app_queries (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        sql TEXT NOT NULL,
        db TEXT NOT NULL,
        route TEXT NOT NULL,
        count INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latency BLOB NOT NULL,
        row_count INTEGER NOT NULL,
        call_site TEXT
    );
    CREATE INDEX app_queries_by_service ON app_queries (service, minute);
    CREATE INDEX app_queries_by_minute ON app_queries (minute);
    CREATE INDEX app_queries_by_route ON app_queries (route, minute);
    CREATE INDEX app_queries_by_fingerprint ON app_queries (fingerprint, minute);
    CREATE TABLE app_outbound (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        remote_host TEXT NOT NULL,
        template TEXT NOT NULL,
        method TEXT NOT NULL,
        status_class INTEGER NOT NULL,
        route TEXT NOT NULL,
        count INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latency BLOB NOT NULL,
        bytes_in INTEGER NOT NULL,
        bytes_out INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        model TEXT,
        repeated INTEGER NOT NULL
    );
    CREATE INDEX app_outbound_by_service ON app_outbound (service, minute);
    CREATE INDEX app_outbound_by_minute ON app_outbound (minute);
    CREATE INDEX app_outbound_by_route ON app_outbound (route, minute);
    CREATE TABLE app_caches (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        cache TEXT NOT NULL,
        command TEXT NOT NULL,
        prefix TEXT NOT NULL,
        route TEXT NOT NULL,
        hits INTEGER NOT NULL,
        misses INTEGER NOT NULL
    );
    CREATE INDEX app_caches_by_service ON app_caches (service, minute);
    CREATE INDEX app_caches_by_minute ON app_caches (minute);
    CREATE INDEX app_caches_by_route ON app_caches (route, minute);
    CREATE TABLE app_units (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        unit TEXT NOT NULL,
        route TEXT NOT NULL,
        units INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        cost_usd REAL NOT NULL
    );
    CREATE INDEX app_units_by_service ON app_units (service, minute);
    CREATE INDEX app_units_by_minute ON app_units (minute);
    CREATE INDEX app_units_by_route ON app_units (route, minute);
    CREATE TABLE app_pools (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        pool TEXT NOT NULL,
        checkouts INTEGER NOT NULL,
        wait_s REAL NOT NULL,
        max_wait_s REAL NOT NULL,
        checked_out_max INTEGER NOT NULL,
        overflow_max INTEGER NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE INDEX app_pools_by_service ON app_pools (service, minute);
    CREATE INDEX app_pools_by_minute ON app_pools (minute);
    CREATE TABLE app_resources (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        sampled_at REAL NOT NULL,
        sample_pid INTEGER NOT NULL,
        rss_bytes INTEGER NOT NULL,
        cpu_percent REAL NOT NULL,
        threads INTEGER NOT NULL,
        open_files INTEGER NOT NULL,
        host_cpu_percent REAL NOT NULL,
        host_memory_used_bytes INTEGER NOT NULL,
        host_memory_total_bytes INTEGER NOT NULL,
        disk_read_bytes INTEGER NOT NULL,
        disk_write_bytes INTEGER NOT NULL,
        net_sent_bytes INTEGER NOT NULL,
        net_recv_bytes INTEGER NOT NULL
    );
    CREATE INDEX app_resources_by_service ON app_resources (service, minute);
    CREATE INDEX app_resources_by_minute ON app_resources (minute);
    CREATE TABLE app_traces (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        request_at REAL NOT NULL,
        route TEXT NOT NULL,
        method TEXT NOT NULL,
        status INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        reasons_json TEXT NOT NULL,
        spans_json TEXT NOT NULL,
        spans_dropped INTEGER NOT NULL
    );
    CREATE INDEX app_traces_by_service ON app_traces (service, minute);
    CREATE INDEX app_traces_by_minute ON app_traces (minute);
    CREATE INDEX app_traces_by_route ON app_traces (route, minute);
    CREATE TABLE app_drops (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL
    );
    CREATE INDEX app_drops_by_service ON app_drops (service, minute);
    CREATE INDEX app_drops_by_minute ON app_drops (minute);
    """,
    # 3: response sizes and uncompressed responses per request aggregate.
    """
    ALTER TABLE app_requests ADD COLUMN bytes_out INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE app_requests ADD COLUMN uncompressed INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: stack samples per route; identical outbound calls across requests.
    """
    CREATE TABLE app_profiles (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        minute INTEGER NOT NULL,
        route TEXT NOT NULL,
        stack TEXT NOT NULL,
        via TEXT NOT NULL,
        samples INTEGER NOT NULL
    );
    CREATE INDEX app_profiles_by_service ON app_profiles (service, minute);
    CREATE INDEX app_profiles_by_minute ON app_profiles (minute);
    CREATE INDEX app_profiles_by_route ON app_profiles (route, minute);
    ALTER TABLE app_outbound ADD COLUMN repeated_across INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: time in cache commands per request aggregate; outbound call sites.
    """
    ALTER TABLE app_requests ADD COLUMN cache_time_s REAL NOT NULL DEFAULT 0;
    ALTER TABLE app_outbound ADD COLUMN call_site TEXT;
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
