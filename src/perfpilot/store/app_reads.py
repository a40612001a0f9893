"""The in-app read API over SQL tables, shared by the SQLite and PostgreSQL stores.

A backend supplies :meth:`SQLAppReads._select` (run one ``SELECT``, return its
rows) and its placeholder style; everything else (which rows, how they merge)
lives here and in :mod:`perfpilot.store.app_rows`, so both backends answer
every read identically.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

from perfpilot.app_records import (
    CacheRow,
    OutboundRow,
    PoolRow,
    ProfileRow,
    QueryRow,
    RequestRow,
    ResourceSample,
    Trace,
    UnitRow,
)
from perfpilot.errors import StoreError
from perfpilot.store import app_rows
from perfpilot.store.app_rows import AppTable
from perfpilot.store.base import Store


class SQLAppReads(Store):
    """:class:`Store`'s app reads for a backend with the :data:`app_rows.TABLES`."""

    #: The DB-API placeholder of the backend (``?`` for sqlite3, ``%s`` for psycopg).
    placeholder: ClassVar[str] = "?"

    @abc.abstractmethod
    def _select(self, doing: str, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """Run one ``SELECT`` and return all its rows; errors become :class:`StoreError`."""

    def _app_rows(
        self,
        table: AppTable,
        doing: str,
        *,
        since: float | None,
        until: float | None,
        service: str | None,
        **options: Any,
    ) -> list[Sequence[Any]]:
        sql, params = app_rows.select_sql(
            table, mark=self.placeholder, since=since, until=until, service=service, **options
        )
        return self._select(doing, sql, params)

    def app_span(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> tuple[float, float] | None:
        """When the recorded requests' intervals began and ended; see :class:`Store`."""
        sql, params = app_rows.span_sql(
            app_rows.REQUESTS, mark=self.placeholder, since=since, until=until, service=service
        )
        found = self._select("read the time span of the requests", sql, params)
        if not found or found[0][0] is None or found[0][1] is None:
            return None
        return float(found[0][0]), float(found[0][1])

    def app_requests(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[RequestRow]:
        """Request aggregates merged per (route, method, status class); see :class:`Store`."""
        found = self._app_rows(
            app_rows.REQUESTS, "read requests", since=since, until=until, service=service
        )
        return app_rows.merge_requests(found)

    def app_queries(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[QueryRow]:
        """Query aggregates merged per (fingerprint, route, db); see :class:`Store`."""
        found = self._app_rows(
            app_rows.QUERIES, "read queries", since=since, until=until, service=service
        )
        return app_rows.merge_queries(found)

    def app_outbound(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[OutboundRow]:
        """Outbound-call aggregates merged per call key; see :class:`Store`."""
        found = self._app_rows(
            app_rows.OUTBOUND, "read outbound calls", since=since, until=until, service=service
        )
        return app_rows.merge_outbound(found)

    def app_caches(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[CacheRow]:
        """Cache counters merged per (cache, command, prefix, route); see :class:`Store`."""
        found = self._app_rows(
            app_rows.CACHES, "read caches", since=since, until=until, service=service
        )
        return app_rows.merge_caches(found)

    def app_units(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[UnitRow]:
        """Business units merged per (unit, route); see :class:`Store`."""
        found = self._app_rows(
            app_rows.UNITS, "read units", since=since, until=until, service=service
        )
        return app_rows.merge_units(found)

    def app_pools(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[PoolRow]:
        """Connection-pool figures merged per pool; see :class:`Store`."""
        found = self._app_rows(
            app_rows.POOLS, "read pools", since=since, until=until, service=service
        )
        return app_rows.merge_pools(found)

    def app_resources(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[ResourceSample]:
        """Resource samples, oldest first; see :class:`Store`."""
        found = self._app_rows(
            app_rows.RESOURCES,
            "read resource samples",
            since=since,
            until=until,
            service=service,
            order_by="sampled_at, id",
        )
        return [app_rows.resource_from_row(row) for row in found]

    def app_traces(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        service: str | None = None,
        limit: int = 100,
    ) -> list[Trace]:
        """Kept traces, newest first; see :class:`Store`."""
        if limit < 0:
            raise StoreError(f"limit must be 0 or more, got {limit}")
        found = self._app_rows(
            app_rows.TRACES,
            "read traces",
            since=since,
            until=until,
            service=service,
            order_by="request_at DESC, id DESC",
            limit=limit,
        )
        return [app_rows.trace_from_row(row) for row in found]

    def app_drops(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> dict[str, int]:
        """Dropped items summed per kind; see :class:`Store`."""
        found = self._app_rows(
            app_rows.DROPS, "read drops", since=since, until=until, service=service
        )
        return app_rows.merge_drops(found)

    def app_profiles(
        self, *, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[ProfileRow]:
        """Stack samples summed per (route, stack, via); see :class:`Store`."""
        found = self._app_rows(
            app_rows.PROFILES, "read profiles", since=since, until=until, service=service
        )
        return app_rows.merge_profiles(found)

    def app_timeline(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        service: str | None = None,
        route: str | None = None,
    ) -> list[tuple[float, RequestRow]]:
        """Request aggregates per minute; see :class:`Store`."""
        found = self._app_rows(
            app_rows.REQUESTS,
            "read the request timeline",
            since=since,
            until=until,
            service=service,
            route=route,
            lead=("minute",),
        )
        return app_rows.merge_timeline(found)
