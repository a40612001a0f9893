"""Outbound-call detectors: repeated identical calls, slow calls that dominate a
route, and independent calls made one after the other.

The recorder counts repeats (same method, URL and body) in two ways: calls
identical to an earlier call of the same request (``repeated``), and calls
identical to a successful call another request made earlier in the same flush
interval, a few seconds (``repeated_across``). Either kind a cache would have
served: per request (hoist the call out of the loop) or shared by requests (a
TTL cache keyed by the request). Identical calls further apart than one flush
interval are not seen, so the cross-request figure is a lower bound.

Each finding names where the application makes the call (the endpoint's
``call_site``, innermost application frame first) in its evidence and as the
fix's location, when the recorder found one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.breakdown import merge_by
from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.analyze.remedies import concurrent_calls_code, memoize_code, slow_call_code
from perfpilot.analyze.traffic import PSEUDO_ROUTES, RouteTraffic, route_traffic
from perfpilot.app_records import OutboundRow, Span, Trace


def _per_endpoint(app: AppData) -> dict[Hashable, OutboundRow]:
    """Outbound rows merged per (route, host, template, method), status classes together."""
    return merge_by(app.outbound, lambda r: (r.route, r.host, r.template, r.method))


def _endpoints(app: AppData) -> Iterator[tuple[OutboundRow, RouteTraffic]]:
    """Each route's calls to each endpoint, with the route's traffic (pseudo routes,
    and routes without requests, left out)."""
    traffic = route_traffic(app)
    for row in _per_endpoint(app).values():
        route = traffic.get(row.route)
        if row.route not in PSEUDO_ROUTES and route is not None and route.requests:
            yield row, route


def _endpoint_name(row: OutboundRow) -> str:
    return f"{row.method} {row.host}{row.template}"


def _evidence(row: OutboundRow, **extra: Any) -> dict[str, Any]:
    """What every outbound finding shows first: the route, the endpoint, the calls,
    where the app makes them."""
    return {
        "route": row.route,
        "host": row.host,
        "template": row.template,
        "method": row.method,
        "calls": row.count,
        "call_site": row.call_site,
        **extra,
    }


def _http_trace(app: AppData, row: OutboundRow) -> Trace | None:
    name = _endpoint_name(row)
    best: tuple[int, Trace] | None = None
    for trace in app.traces:
        if trace.route != row.route:
            continue
        n = sum(1 for s in trace.spans if s.kind == "http" and s.name == name)
        if n and (best is None or n > best[0]):
            best = (n, trace)
    return None if best is None else best[1]


def repeated_calls(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Calls repeating an identical call made earlier in the same request, or by
    another request a few seconds before.

    Reported when repeats of both kinds together are at least
    ``outbound_min_repeated_share`` of an endpoint's calls from a route; the
    saving is their time and money.
    """
    findings = []
    for row, route in _endpoints(app):
        if not row.count:
            continue
        cacheable = row.repeated + row.repeated_across
        share = cacheable / row.count
        if cacheable < 2 or share < options.outbound_min_repeated_share:
            continue
        name = _endpoint_name(row)
        mean_s = row.latency.mean_s
        per_request = row.count / route.requests
        repeats_per_request = cacheable / route.requests
        across = row.repeated_across > row.repeated
        # A cache serves reads: GET and HEAD, and paid API calls (LLM
        # completions and embeddings are POSTs that read). Another method may
        # change state at each call, so caching it is advice to check first.
        read = row.method in SAFE_METHODS or row.cost_usd > 0 or row.prompt_tokens > 0
        code, language = memoize_code("fetch_" + _identifier(row.template), method=row.method)
        if not read:
            code, language = "", "text"
        kinds = (
            f" ({row.repeated / row.count:.0%} within a request, "
            f"{row.repeated_across / row.count:.0%} repeating another request's)"
            if row.repeated_across
            else ""
        )
        findings.append(
            Finding(
                id=finding_id("repeated_outbound", row.route, row.host, row.template, row.method),
                kind="repeated_outbound",
                severity=(
                    "low"
                    if not read
                    else "high"
                    if row.cost_usd > 0 or repeats_per_request >= 2
                    else "medium"
                ),
                title=(
                    f"Repeated identical calls on {route.label}: {name} "
                    f"{per_request:.1f} times per request, {share:.0%} of them repeats{kinds}"
                ),
                subject=f"{route.label} {name}",
                evidence=_evidence(
                    row,
                    repeated=row.repeated,
                    repeated_across=row.repeated_across,
                    retries=row.retries,
                    calls_per_request=round(per_request, 2),
                    repeats_per_request=round(repeats_per_request, 2),
                    mean_ms=mean_s * 1000,
                    cost_usd=row.cost_usd,
                    repeated_cost_usd=row.cost_usd * share,
                ),
                impact=Impact(
                    time_per_request_s=repeats_per_request * mean_s,
                    requests_per_s=route.requests_per_s,
                    usd_per_request=row.cost_usd * share / route.requests,
                    note=(
                        "the repeats' time and money, if each identical call is made once"
                        + (" per flush interval (seconds)" if row.repeated_across else "")
                    ),
                ),
                fix=Fix(
                    summary=(
                        f"The repeated call is a {row.method}, which may change state at each "
                        "call: check that it is idempotent (the same body has the same effect) "
                        "before removing repeats; if it is, make it once per request and reuse "
                        "the answer, and cache it across requests only if the API documents it "
                        "as a read."
                        if not read
                        else "Other requests made the identical call seconds before: serve it from "
                        "a cache shared by requests, a bounded TTL cache keyed by the request "
                        "(method, URL, body), with a time to live as long as an answer may be "
                        "stale (cachetools.TTLCache; functools.lru_cache if it never changes)."
                        if across
                        else "Make each identical call once: hoist it out of the loop, or "
                        "memoize it with a bounded TTL cache (cachetools.TTLCache, "
                        "functools.lru_cache)."
                    ),
                    code=code,
                    language=language,
                    location=row.call_site,
                ),
                confidence=0.9 if read else 0.4,
                trace=_http_trace(app, row),
            )
        )
    return findings


#: HTTP methods that read without changing state (RFC 9110, 9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _identifier(template: str) -> str:
    words = [w for w in "".join(c if c.isalnum() else " " for c in template).split() if w]
    return "_".join(w for w in words if not w.startswith("v") or not w[1:].isdigit()) or "call"


def slow_calls(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """An outbound endpoint slow at p95 that takes most of a route's time."""
    findings = []
    for row, route in _endpoints(app):
        if not route.total_s:
            continue
        p95_ms = row.latency.percentile(95) * 1000
        share = row.latency.sum_s / route.total_s
        if p95_ms < options.outbound_slow_p95_ms or share < options.outbound_min_share:
            continue
        name = _endpoint_name(row)
        per_request_s = row.latency.sum_s / route.requests
        code, language = slow_call_code()
        findings.append(
            Finding(
                id=finding_id("slow_outbound", row.route, row.host, row.template, row.method),
                kind="slow_outbound",
                severity="high" if share >= 0.8 else "medium",
                title=(
                    f"Slow outbound call on {route.label}: {name} p95 {p95_ms:.0f} ms, "
                    f"{share:.0%} of the route's time"
                ),
                subject=f"{route.label} {name}",
                evidence=_evidence(
                    row,
                    errors=row.errors,
                    p50_ms=row.latency.percentile(50) * 1000,
                    p95_ms=p95_ms,
                    share_of_route_time=round(share, 3),
                    cost_usd=row.cost_usd,
                    cost_per_request_usd=row.cost_usd / route.requests,
                    model=row.model,
                ),
                impact=Impact(
                    time_per_request_s=per_request_s,
                    requests_per_s=route.requests_per_s,
                    usd_per_request=row.cost_usd / route.requests,
                    note="all of the call's time and money: the saving when a cache serves it",
                ),
                fix=Fix(
                    summary=(
                        "Serve repeated inputs from a cache keyed by the input, set a timeout, "
                        "and move answers that need not be live to a background job."
                    ),
                    code=code,
                    language=language,
                    location=row.call_site,
                ),
                confidence=0.7,
                trace=_http_trace(app, row),
            )
        )
    return findings


def _sequential_runs(spans: tuple[Span, ...]) -> list[list[Span]]:
    """Runs of ``http`` spans, each starting after the previous ended, with no
    ``db`` span in between (a query between two calls may feed the second)."""
    runs: list[list[Span]] = []
    current: list[Span] = []
    for span in spans:
        if span.kind == "db":
            if len(current) > 1:
                runs.append(current)
            current = []
        elif span.kind == "http":
            if current and span.start_s < current[-1].start_s + current[-1].duration_s:
                current = [span]  # overlaps: already concurrent
                continue
            current.append(span)
    if len(current) > 1:
        runs.append(current)
    return runs


def sequential_calls(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Outbound calls made one after the other with nothing between them.

    In each kept trace, a run of at least ``sequential_min_calls`` ``http``
    spans that do not overlap and have no database work between them could run
    concurrently, saving ``sum - max`` of their durations. Reported per route
    when the mean saving over the traces that show it is at least
    ``sequential_min_saving_ms``.
    """
    traffic = route_traffic(app)
    savings: dict[str, list[tuple[float, Trace, list[Span]]]] = {}
    for trace in app.traces:
        if trace.route in PSEUDO_ROUTES:
            continue
        for run in _sequential_runs(trace.spans):
            if len(run) < options.sequential_min_calls:
                continue
            saving = sum(s.duration_s for s in run) - max(s.duration_s for s in run)
            savings.setdefault(trace.route, []).append((saving, trace, run))
    findings = []
    for route_name, found in savings.items():
        mean_saving = sum(f[0] for f in found) / len(found)
        if mean_saving * 1000 < options.sequential_min_saving_ms:
            continue
        route = traffic.get(route_name)
        saving, sample, run = max(found, key=lambda f: f[0])
        traced = sum(1 for t in app.traces if t.route == route_name)
        code, language = concurrent_calls_code()
        label = route.label if route is not None else route_name
        sites = [s.detail.get("call_site") for s in run]
        findings.append(
            Finding(
                id=finding_id("sequential_outbound", route_name),
                kind="sequential_outbound",
                severity="medium",
                title=(
                    f"Sequential outbound calls on {label}: {len(run)} calls one after the "
                    f"other, {mean_saving * 1000:.0f} ms to save by running them together"
                ),
                subject=label,
                evidence={
                    "route": route_name,
                    "traces_with_pattern": len(found),
                    "traces_of_route": traced,
                    "calls": [s.name for s in run],
                    "call_sites": sites,
                    "mean_saving_ms": mean_saving * 1000,
                    "max_saving_ms": saving * 1000,
                },
                impact=Impact(
                    time_per_request_s=mean_saving * len(found) / max(1, traced),
                    requests_per_s=route.requests_per_s if route is not None else 0.0,
                    note="latency saved (sum minus max of the calls), in the traces showing it",
                ),
                fix=Fix(
                    summary=(
                        "The calls do not wait on each other's results: start them together "
                        "(asyncio.gather, or a thread pool in sync code)."
                    ),
                    code=code,
                    language=language,
                    location=next((site for site in sites if isinstance(site, str)), None),
                ),
                confidence=0.5,
                trace=sample,
            )
        )
    return findings
