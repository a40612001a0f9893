"""How much traffic each route had in a window: the denominator of every per-request figure.

Query, outbound and cache rows carry a route but no method, so detectors that
turn them into per-request figures need the route's request count (all methods
and status classes together) and its rate over the window.
"""

from __future__ import annotations

import dataclasses

from perfpilot.analyze.appdata import AppData

#: Routes that are not real routes: work outside requests, folded keys, 404s.
PSEUDO_ROUTES = frozenset(("<none>", "<other>", "<unmatched>"))


@dataclasses.dataclass(frozen=True)
class RouteTraffic:
    """One route's requests over the window (all methods, all status classes).

    Attributes:
        route: Route template.
        methods: HTTP methods seen, sorted.
        requests: Requests.
        errors: Requests that failed (5xx or raised).
        total_s: Time spent serving them, summed.
        db_time_s: Database time, summed.
        outbound_time_s: Outbound-call time, summed.
        cost_usd: Outbound cost, summed.
        requests_per_s: Requests over the window's length.
    """

    route: str
    methods: tuple[str, ...]
    requests: int
    errors: int
    total_s: float
    db_time_s: float
    outbound_time_s: float
    cost_usd: float
    requests_per_s: float

    @property
    def mean_s(self) -> float:
        """Mean request duration (0 without requests)."""
        return self.total_s / self.requests if self.requests else 0.0

    @property
    def label(self) -> str:
        """``GET /orders`` (``GET,POST /orders`` for several methods)."""
        return f"{','.join(self.methods)} {self.route}"


def route_traffic(app: AppData) -> dict[str, RouteTraffic]:
    """Requests, time and rate per route, pseudo routes included (callers skip them)."""
    sums: dict[str, list[float]] = {}
    methods: dict[str, set[str]] = {}
    for row in app.requests:
        acc = sums.setdefault(row.route, [0, 0, 0.0, 0.0, 0.0, 0.0])
        acc[0] += row.count
        acc[1] += row.errors
        acc[2] += row.latency.sum_s
        acc[3] += row.db_time_s
        acc[4] += row.outbound_time_s
        acc[5] += row.cost_usd
        methods.setdefault(row.route, set()).add(row.method)
    window = app.duration_s
    return {
        route: RouteTraffic(
            route=route,
            methods=tuple(sorted(methods[route])),
            requests=int(acc[0]),
            errors=int(acc[1]),
            total_s=acc[2],
            db_time_s=acc[3],
            outbound_time_s=acc[4],
            cost_usd=acc[5],
            requests_per_s=acc[0] / window,
        )
        for route, acc in sums.items()
    }


def label(traffic: dict[str, RouteTraffic], route: str) -> str:
    """The route's label, or the bare route when it had no requests."""
    known = traffic.get(route)
    return known.label if known is not None else route
