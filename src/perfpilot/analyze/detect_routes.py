"""Route detectors: CPU hotspots, large uncompressed responses, error bursts."""

from __future__ import annotations

import statistics
import time

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.breakdown import merge_by, route_breakdown
from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.analyze.hotframes import HotFrame, hot_frames, route_samples
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.analyze.remedies import compression_code, profile_code
from perfpilot.analyze.traffic import PSEUDO_ROUTES
from perfpilot.app_records import RequestRow, Trace

#: Bandwidth assumed when turning bytes into transfer time (100 Mbit/s).
ASSUMED_BYTES_PER_S = 100e6 / 8
#: Share of a JSON/text body that compression typically removes.
TYPICAL_COMPRESSION_SAVING = 0.8


def cpu_hotspots(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Routes whose time is mostly application code (not database, not outbound calls).

    Application time is what remains of the mean request time after database
    and outbound time; in a threaded server it includes waiting for the GIL, so
    the thresholds ask for both a share and an absolute time per request.

    When the in-app sampler recorded at least ``cpu_min_profile_samples``
    samples of the route, ``evidence["top_frames"]`` lists its hot functions
    (:func:`~perfpilot.analyze.hotframes.hot_frames`) and the fix names the
    hottest application function and line.
    """
    findings = []
    routes = [
        r
        for r in route_breakdown(app.requests)
        if r.route not in PSEUDO_ROUTES and r.requests >= options.min_requests
    ]
    for route in routes:
        share = route.app_ms / route.mean_ms if route.mean_ms else 0.0
        if share < options.cpu_min_app_share or route.app_ms < options.cpu_min_app_ms:
            continue
        others = [r.app_ms for r in routes if r is not route]
        if others and route.app_ms < options.cpu_baseline_factor * statistics.median(others):
            continue
        label = f"{route.method} {route.route}"
        code, language = profile_code(label)
        samples = route_samples(app.profiles, route.route)
        frames = (
            hot_frames(app.profiles, route.route)
            if samples >= options.cpu_min_profile_samples
            else []
        )
        top = next((f for f in frames if f.location is not None), None)
        if top is not None:
            code = f"# Hot frame: {top.frame} ({top.self_share:.0%} of the samples)\n" + code
        findings.append(
            Finding(
                id=finding_id("cpu_hotspot", route.route, route.method),
                kind="cpu_hotspot",
                severity="high" if route.app_ms >= 200 else "medium",
                title=(
                    f"CPU hotspot on {label}: {route.app_ms:.0f} ms of application code per "
                    f"request ({share:.0%} of its time)"
                    + (f", mostly in {_short(top.function)}" if top is not None else "")
                ),
                subject=label,
                evidence={
                    "route": route.route,
                    "method": route.method,
                    "requests": route.requests,
                    "mean_ms": route.mean_ms,
                    "p95_ms": route.p95_ms,
                    "app_ms": route.app_ms,
                    "db_ms": route.db_ms,
                    "cache_ms": route.cache_ms,
                    "outbound_ms": route.outbound_ms,
                    "app_share": round(share, 3),
                    "profile_samples": samples,
                    "top_frames": [f.to_dict() for f in frames] or None,
                },
                impact=Impact(
                    time_per_request_s=route.app_ms / 1000,
                    requests_per_s=route.requests / app.duration_s,
                    note="the route's application time (upper bound of the saving)",
                ),
                fix=Fix(
                    summary=_hotspot_summary(top),
                    code=code,
                    language=language,
                    location=None if top is None else top.location,
                ),
                confidence=0.6 if top is None else 0.8,
            )
        )
    return findings


def _short(function: str) -> str:
    """``create_app.<locals>.stats_similar`` -> ``stats_similar``."""
    return function.rsplit(".", 1)[-1]


def _hotspot_summary(top: HotFrame | None) -> str:
    if top is None:
        return (
            "Profile the handler (no profile sample was recorded) and remove the hot "
            "loop: push the work into the database or numpy, precompute, or cache."
        )
    via = f", mostly inside {top.via}" if top.via else ""
    return (
        f"{top.self_share:.0%} of the route's samples are in {_short(top.function)} "
        f"({top.location}{via}): remove the hot loop there: push the work into the "
        "database or numpy, precompute, or cache."
    )


def large_responses(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Routes sending large bodies without ``Content-Encoding``.

    Reported when the mean body is at least ``large_response_bytes`` and most
    responses (of at least 1 KiB, in a compressible type) went out uncompressed.
    """
    findings = []
    merged = merge_by(app.requests, lambda r: (r.route, r.method))
    for row in merged.values():
        if row.route in PSEUDO_ROUTES or row.count < options.min_requests:
            continue
        mean_bytes = row.bytes_out / row.count
        share = row.uncompressed / row.count
        if mean_bytes < options.large_response_bytes or share < 0.5:
            continue
        label = f"{row.method} {row.route}"
        saved_s = mean_bytes * TYPICAL_COMPRESSION_SAVING / ASSUMED_BYTES_PER_S
        code, language = compression_code()
        paginate = " Also paginate: one response of several MB is a large result set." * (
            mean_bytes >= 1e6
        )
        findings.append(
            Finding(
                id=finding_id("large_response", row.route, row.method),
                kind="large_response",
                severity="high" if mean_bytes >= 1e6 else "medium",
                title=(
                    f"Large uncompressed responses on {label}: {mean_bytes / 1e3:,.0f} kB on "
                    f"average, {share:.0%} sent without compression"
                ),
                subject=label,
                evidence={
                    "route": row.route,
                    "method": row.method,
                    "requests": row.count,
                    "mean_bytes": round(mean_bytes),
                    "bytes_out": row.bytes_out,
                    "uncompressed": row.uncompressed,
                    "uncompressed_share": round(share, 3),
                },
                impact=Impact(
                    time_per_request_s=saved_s,
                    requests_per_s=row.count / app.duration_s,
                    note=(
                        f"transfer time saved at 100 Mbit/s if compression removes "
                        f"{TYPICAL_COMPRESSION_SAVING:.0%} of the bytes (typical for JSON)"
                    ),
                ),
                fix=Fix(
                    summary="Compress responses (gzip/brotli middleware)." + paginate,
                    code=code,
                    language=language,
                ),
                confidence=0.8,
            )
        )
    return findings


def error_bursts(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Routes answering 5xx (or raising): their rate and the minutes it peaked.

    A route is reported with at least ``error_min_count`` failures and a rate
    of at least ``error_min_rate``; minutes with ``error_burst_factor`` times
    the route's mean failures per minute are named as bursts.
    """
    per_minute: dict[str, dict[float, int]] = {}
    for minute, row in app.timeline:
        if row.errors:
            minutes = per_minute.setdefault(row.route, {})
            minutes[minute] = minutes.get(minute, 0) + row.errors
    findings = []
    merged = merge_by(app.requests, lambda r: (r.route,))
    for row in merged.values():
        if row.route in PSEUDO_ROUTES or row.errors < options.error_min_count:
            continue
        rate = row.errors / row.count
        if rate < options.error_min_rate:
            continue
        minutes = per_minute.get(row.route, {})
        mean = sum(minutes.values()) / max(1, len(minutes))
        bursts = sorted(
            minute
            for minute, n in minutes.items()
            if len(minutes) > 1
            and n >= options.error_min_count
            and n >= options.error_burst_factor * mean
        )
        statuses = sorted({r.status_class for r in app.requests if r.route == row.route})
        sample = _error_trace(app.traces, row)
        cause, summary = _error_cause(sample)
        when = (
            ", peaking in the minute of "
            + ", ".join(time.strftime("%H:%M", time.gmtime(m)) + " UTC" for m in bursts[:3])
            if bursts
            else ""
        )
        findings.append(
            Finding(
                id=finding_id("error_burst", row.route),
                kind="error_burst",
                severity="critical" if rate >= 0.1 else "high" if rate >= 0.05 else "medium",
                title=(
                    f"Server errors on {row.method} {row.route}: {row.errors} of {row.count} "
                    f"requests ({rate:.1%}){when}"
                ),
                subject=f"{row.method} {row.route}",
                evidence={
                    "route": row.route,
                    "method": row.method,
                    "requests": row.count,
                    "errors": row.errors,
                    "error_rate": round(rate, 4),
                    "status_classes": statuses,
                    "errors_per_minute": {str(int(m)): n for m, n in sorted(minutes.items())},
                    "burst_minutes": [int(m) for m in bursts],
                    "cause": cause,
                },
                impact=Impact(
                    time_per_request_s=row.latency.mean_s * rate,
                    requests_per_s=row.count / app.duration_s,
                    note="time spent on requests that failed",
                ),
                fix=Fix(summary=summary, language="text"),
                confidence=0.6 if cause == "unknown" else 0.7,
                trace=sample,
            )
        )
    return findings


def _error_trace(traces: tuple[Trace, ...], row: RequestRow) -> Trace | None:
    for trace in traces:
        if trace.route == row.route and (trace.status >= 500 or "error" in trace.reasons):
            return trace
    return None


def _error_cause(trace: Trace | None) -> tuple[str, str]:
    if trace is None:
        return "unknown", (
            "No failing request was traced: look at the application log for the "
            "exceptions of this route."
        )
    for span in trace.spans:
        status = span.detail.get("status")
        if span.kind == "http" and isinstance(status, int) and (status == 0 or status >= 500):
            return "outbound", (
                f"The call {span.name} fails: set a timeout, retry idempotent calls with "
                "backoff, and add a circuit breaker or a fallback answer."
            )
        if span.kind == "db" and span.detail.get("failed"):
            return "database", (
                f"The statement `{span.name[:80]}` fails: check the log for the database "
                "error (locks, timeouts, constraint violations)."
            )
    return "application", (
        "The failing requests raise in application code (no failing query or call in the "
        "trace): see the exception in the application log."
    )
