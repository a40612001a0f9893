"""Read one window of in-app monitoring data out of a store, for analysis."""

from __future__ import annotations

import time

from perfpilot.analyze.appdata import AppData
from perfpilot.store.base import Store


def read_app_data(
    store: Store,
    *,
    since: float | None = None,
    until: float | None = None,
    service: str | None = None,
    trace_limit: int = 200,
) -> AppData:
    """Everything the store holds for ``service`` between ``since`` and ``until``.

    Args:
        store: An open store.
        since: Start of the window (Unix time); the earliest data when ``None``.
        until: End of the window; now when ``None``.
        service: One service, or all of them when ``None``.
        trace_limit: The most traces to read (newest first).

    Returns:
        The data. Its ``since`` and ``until`` are narrowed to the flush
        intervals that recorded requests (:meth:`Store.app_span`), so rates
        are per second of recorded traffic; without requests, ``since`` is
        the first resource sample or minute seen when it was not given.

    Raises:
        StoreError: The store cannot be read.
    """
    timeline = tuple(store.app_timeline(since=since, until=until, service=service))
    resources = tuple(store.app_resources(since=since, until=until, service=service))
    end = time.time() if until is None else until
    start = since
    if start is None:
        firsts = [t for t, _ in timeline[:1]] + [s.at for s in resources[:1]]
        start = min(firsts) if firsts else end
    span = store.app_span(since=since, until=until, service=service)
    if span is not None:  # rates divide by the time that has data, not the time asked for
        start = max(start, span[0])
        end = max(start, min(end, span[1]))
    return AppData(
        since=start,
        until=end,
        service=service,
        requests=tuple(store.app_requests(since=since, until=until, service=service)),
        queries=tuple(store.app_queries(since=since, until=until, service=service)),
        outbound=tuple(store.app_outbound(since=since, until=until, service=service)),
        caches=tuple(store.app_caches(since=since, until=until, service=service)),
        units=tuple(store.app_units(since=since, until=until, service=service)),
        pools=tuple(store.app_pools(since=since, until=until, service=service)),
        resources=resources,
        traces=tuple(
            store.app_traces(since=since, until=until, service=service, limit=trace_limit)
        ),
        timeline=timeline,
        drops=store.app_drops(since=since, until=until, service=service),
        profiles=tuple(store.app_profiles(since=since, until=until, service=service)),
    )
