"""Metrics in the Prometheus text exposition format (0.0.4), served by a tiny app.

:func:`make_metrics_app` returns an ASGI or WSGI app that answers every ``GET``
(any path) with the process's :class:`~perfpilot.instrument.totals.Totals`
rendered by :func:`render`. Mount it on its own port or under ``/metrics``::

    from perfpilot.instrument import metrics_app
    app.mount("/metrics", metrics_app())            # Starlette / FastAPI

Counters come from the flusher's snapshots, so they move once per flush
interval. Each worker process serves its own totals, as Prometheus client
libraries do without their multiprocess mode.

No dependency on ``prometheus_client``: the format is a few lines of text.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

from perfpilot.instrument.context import warn_once
from perfpilot.instrument.totals import Totals, TotalsView, process_totals
from perfpilot.stats.histogram import Histogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (``le``) of the request-duration histogram, in seconds; +Inf is implied."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def make_metrics_app(recorder_or_totals: Any = None, *, kind: str = "asgi") -> Any:
    """A small ASGI or WSGI app serving the metrics (any path, ``GET`` or ``HEAD``).

    Args:
        recorder_or_totals: The :class:`Totals` to serve. Anything else
            (``None``, or the app's ``Recorder``) means the process-wide totals
            that ``perfpilot.instrument(app)`` feeds: see :func:`process_totals`.
        kind: ``"asgi"`` or ``"wsgi"``.

    Returns:
        The app.

    Raises:
        ValueError: If ``kind`` is neither ``"asgi"`` nor ``"wsgi"``.

    Example:
        >>> app = make_metrics_app(Totals(), kind="wsgi")
    """
    totals = recorder_or_totals if isinstance(recorder_or_totals, Totals) else None

    def body() -> bytes:
        return render(totals if totals is not None else process_totals()).encode()

    if kind == "asgi":
        return MetricsASGIApp(body)
    if kind == "wsgi":
        return MetricsWSGIApp(body)
    raise ValueError(f"metrics app kind must be 'asgi' or 'wsgi', not {kind!r}")


class MetricsASGIApp:
    """ASGI app answering every HTTP ``GET`` with the metrics; handles lifespan."""

    def __init__(self, body: Callable[[], bytes]) -> None:
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection scope."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        status, headers, body = _respond(scope.get("method", "GET"), self.body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsWSGIApp:
    """WSGI app answering every ``GET`` with the metrics."""

    def __init__(self, body: Callable[[], bytes]) -> None:
        self.body = body

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Serve one request."""
        status, headers, body = _respond(environ.get("REQUEST_METHOD", "GET"), self.body)
        reason = {200: "OK", 405: "Method Not Allowed"}.get(status, "Internal Server Error")
        start_response(f"{status} {reason}", headers)
        return [body]


def _respond(method: str, body: Callable[[], bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
    if method not in ("GET", "HEAD"):
        text = b"method not allowed\n"
        return 405, _headers("text/plain; charset=utf-8", len(text), allow="GET, HEAD"), text
    try:
        payload = body()
    except Exception as exc:  # a scrape must never take the app down
        warn_once("metrics-render", "perfpilot: metrics not rendered: %r", exc)
        text = b"perfpilot: metrics not available\n"
        return 500, _headers("text/plain; charset=utf-8", len(text)), text
    return 200, _headers(CONTENT_TYPE, len(payload)), b"" if method == "HEAD" else payload


def _headers(content_type: str, length: int, allow: str | None = None) -> list[tuple[str, str]]:
    headers = [("Content-Type", content_type), ("Content-Length", str(length))]
    if allow:
        headers.append(("Allow", allow))
    return headers


# -- the text format ----------------------------------------------------------------


def render(totals: Totals | TotalsView) -> str:
    """The totals in Prometheus text exposition format 0.0.4.

    Args:
        totals: Live totals (a consistent copy is taken) or a copy.

    Returns:
        The exposition text, ending with a newline.
    """
    view = totals.view() if isinstance(totals, Totals) else totals
    out = _Exposition()

    requests = sorted(view.requests.items())
    labels = [
        ({"route": route, "method": method, "status_class": f"{sc}xx"}, agg)
        for (route, method, sc), agg in requests
    ]
    out.family("perfpilot_http_requests_total", "counter", "HTTP requests served.")
    for lab, agg in labels:
        out.sample("perfpilot_http_requests_total", lab, agg.count)
    out.family(
        "perfpilot_http_request_errors_total",
        "counter",
        "HTTP requests that raised or answered 5xx.",
    )
    for lab, agg in labels:
        out.sample("perfpilot_http_request_errors_total", lab, agg.errors)
    name = "perfpilot_http_request_duration_seconds"
    out.family(name, "histogram", "Server-side HTTP request duration in seconds.")
    for lab, agg in labels:
        hist = agg.latency
        for le, n in zip(
            DURATION_BUCKETS_S, cumulative_counts(hist, DURATION_BUCKETS_S), strict=True
        ):
            out.sample(f"{name}_bucket", {**lab, "le": _number(le)}, n)
        out.sample(f"{name}_bucket", {**lab, "le": "+Inf"}, hist.count)
        out.sample(f"{name}_sum", lab, hist.sum_s)
        out.sample(f"{name}_count", lab, hist.count)
    out.family(
        "perfpilot_http_request_cost_usd_total",
        "counter",
        "US dollars spent on outbound API calls by HTTP requests.",
    )
    for lab, agg in labels:
        out.sample("perfpilot_http_request_cost_usd_total", lab, agg.cost_usd)

    queries = sorted(view.queries.items())
    out.family("perfpilot_db_queries_total", "counter", "SQL statements executed, by fingerprint.")
    for (fingerprint, db), q in queries:
        out.sample("perfpilot_db_queries_total", {"fingerprint": fingerprint, "db": db}, q.count)
    out.family("perfpilot_db_query_errors_total", "counter", "SQL statements that raised.")
    for (fingerprint, db), q in queries:
        out.sample(
            "perfpilot_db_query_errors_total", {"fingerprint": fingerprint, "db": db}, q.errors
        )
    out.family("perfpilot_db_query_seconds_total", "counter", "Seconds spent in SQL statements.")
    for (fingerprint, db), q in queries:
        out.sample(
            "perfpilot_db_query_seconds_total", {"fingerprint": fingerprint, "db": db}, q.time_s
        )

    outbound = [({"host": h, "template": t}, o) for (h, t), o in sorted(view.outbound.items())]
    for metric, help_text, field in (
        ("perfpilot_outbound_requests_total", "Outbound HTTP calls.", "count"),
        ("perfpilot_outbound_errors_total", "Outbound HTTP calls failed or 5xx.", "errors"),
        ("perfpilot_outbound_seconds_total", "Seconds spent in outbound HTTP calls.", "time_s"),
        ("perfpilot_outbound_cost_usd_total", "US dollars spent on outbound calls.", "cost_usd"),
    ):
        out.family(metric, "counter", help_text)
        for lab, o in outbound:
            out.sample(metric, lab, getattr(o, field))
    out.family("perfpilot_outbound_tokens_total", "counter", "Tokens reported by LLM APIs.")
    for lab, o in outbound:
        if o.prompt_tokens or o.completion_tokens:
            out.sample(
                "perfpilot_outbound_tokens_total", {**lab, "kind": "prompt"}, o.prompt_tokens
            )
            out.sample(
                "perfpilot_outbound_tokens_total",
                {**lab, "kind": "completion"},
                o.completion_tokens,
            )

    caches = sorted(view.caches.items())
    out.family("perfpilot_cache_hits_total", "counter", "Cache hits.")
    for cache, c in caches:
        out.sample("perfpilot_cache_hits_total", {"cache": cache}, c.hits)
    out.family("perfpilot_cache_misses_total", "counter", "Cache misses.")
    for cache, c in caches:
        out.sample("perfpilot_cache_misses_total", {"cache": cache}, c.misses)

    out.family(
        "perfpilot_dropped_total", "counter", "Items perfpilot dropped instead of blocking the app."
    )
    for kind, n in sorted(view.drops.items()):
        out.sample("perfpilot_dropped_total", {"kind": kind}, n)

    sample = view.resources
    if sample is not None:
        for metric, kind, help_text, value in (
            ("perfpilot_process_resident_memory_bytes", "gauge", "Resident memory.",
             sample.rss_bytes),
            ("perfpilot_process_cpu_percent", "gauge",
             "Process CPU use over the last flush interval, percent of one core.",
             sample.cpu_percent),
            ("perfpilot_process_threads", "gauge", "Threads.", sample.threads),
            ("perfpilot_process_open_fds", "gauge", "Open file descriptors.", sample.open_files),
            ("perfpilot_host_cpu_percent", "gauge",
             "Host CPU use over the last flush interval, percent of all cores.",
             sample.host_cpu_percent),
            ("perfpilot_host_memory_used_bytes", "gauge", "Host memory in use.",
             sample.host_memory_used_bytes),
            ("perfpilot_host_memory_total_bytes", "gauge", "Host memory.",
             sample.host_memory_total_bytes),
            ("perfpilot_host_disk_read_bytes_total", "counter", "Host disk bytes read.",
             sample.disk_read_bytes),
            ("perfpilot_host_disk_written_bytes_total", "counter", "Host disk bytes written.",
             sample.disk_write_bytes),
            ("perfpilot_host_network_sent_bytes_total", "counter", "Host network bytes sent.",
             sample.net_sent_bytes),
            ("perfpilot_host_network_received_bytes_total", "counter",
             "Host network bytes received.", sample.net_recv_bytes),
        ):  # fmt: skip
            out.family(metric, kind, help_text)
            out.sample(metric, {}, value)
    return out.text()


def cumulative_counts(hist: Histogram, bounds: Sequence[float]) -> list[int]:
    """How many values of ``hist`` are ``<= le``, for each ascending ``le`` in ``bounds``.

    perfpilot's buckets do not line up with Prometheus bounds, so each of its
    buckets counts as lying at its midpoint. A perfpilot bucket is at most
    1/64 of its lower bound wide, so these counts are exact except for values
    within 1 % (at most 0.8 %) of a bound; bounds at or beyond the exact
    maximum count everything, and bounds below the exact minimum nothing.

    Args:
        hist: The histogram (seconds).
        bounds: Ascending upper bounds in seconds.

    Returns:
        One cumulative count per bound, never decreasing.
    """
    total = hist.count
    if total == 0:
        return [0] * len(bounds)
    low, high = hist.min_s, hist.max_s
    buckets = list(hist.buckets())
    counts: list[int] = []
    i = 0
    running = 0
    for le in bounds:
        if le >= high:
            counts.append(total)
            continue
        if le < low:
            counts.append(0)
            continue
        while i < len(buckets) and (buckets[i][0] + buckets[i][1]) / 2 <= le:
            running += buckets[i][2]
            i += 1
        counts.append(running)
    return counts


class _Exposition:
    """Builds exposition text line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        if labels:
            pairs = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{pairs}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def escape_label_value(value: str) -> str:
    r"""Escape a label value as the format requires.

    Backslash becomes ``\\``, double quote ``\"`` and newline ``\n``.
    """
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    """A sample value as Prometheus writes it (Go float syntax; integers as is)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
