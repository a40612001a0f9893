"""In-app overhead: perfpilot's middleware and SQL hook against OpenTelemetry and prometheus_client.

Everything runs in this process, with no network and no server: a request is
one call of the app with pre-built inputs, so what is measured is the
instrumentation itself, not a server or a socket.

- ASGI: a raw ASGI callable that sends a 200 with a small body, called as
  ``await app(scope, receive, send)`` in a loop inside one coroutine.
- WSGI: a plain WSGI callable, called with a pre-built environ and a no-op
  ``start_response``; the body iterable is consumed and closed, as a server does.
- SQL: the WSGI app running 10 distinct lookups on an in-memory sqlite3 table.

Variants, each wrapping the same app:

- ``bare``: nothing.
- ``perfpilot``: ``perfpilot.instrument.wrap_app(app, Recorder())`` (what
  ``perfpilot.instrument(app)`` serves for a raw callable, without the flusher
  thread); the recorder's interval is collected after each batch, as the
  flusher does every few seconds, so memory stays bounded, and that collection
  is timed with the batch (work deferred to it is not free). SQL: the sqlite3
  hook of ``perfpilot.instrument.sql.install()``.
- ``otel``: OpenTelemetry's ASGI/WSGI middleware with a ``TracerProvider`` and
  ``SimpleSpanProcessor(InMemorySpanExporter())`` (cleared between batches);
  its defaults, so the ASGI middleware also makes a span per ``send``. SQL:
  ``opentelemetry.instrumentation.dbapi.instrument_connection``.
  ``otel-lean`` (ASGI only, for reference) excludes the send/receive spans.
- ``prometheus``: a hand-written middleware timing each request into a
  ``prometheus_client.Histogram`` with route and method labels.
- ``perfpilot-n+1`` (reference): the same 10 lookups as one repeated
  statement, which perfpilot flags as an N+1 and traces.

Method (pyperf-like, for a noisy shared machine): a warm-up and calibration
pass sizes each variant's batch to about ``--batch-s`` seconds; then, for
several rounds, every variant runs one batch, in an order rotated each round,
with the garbage collector off while timing (and a collection between
batches). A variant's figure is the median over rounds of its per-round mean;
"added" is the median over rounds of (variant - bare of the same kind, same
round), which cancels drifts that hit both. Per query:
((sql variant - sql bare) - (wsgi variant - wsgi bare)) / 10.

Prints the table and the targets of the issue (perfpilot adds at most 5 µs per
request and 2 µs per query, at least 20x less than OpenTelemetry) with PASS or
FAIL. Always exits 0: it is a benchmark, not a test.

Usage::

    .venv/bin/python bench/instrument_overhead.py            # about 40 s
    .venv/bin/python bench/instrument_overhead.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUERIES_PER_REQUEST = 10
TARGET_REQUEST_US = 5.0
TARGET_QUERY_US = 2.0
TARGET_RATIO = 20.0

# -- the apps ---------------------------------------------------------------------------

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
REQUEST_MESSAGE = {"type": "http.request", "body": b"", "more_body": False}
ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/items/42",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": "bench",
    "HTTP_ACCEPT": "*/*",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.input": io.BytesIO(b""),
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI app: 200, two bytes."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    """A plain WSGI app: 200, two bytes."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


DISTINCT_SQL = [f"SELECT v, {i} AS n FROM t WHERE id = ?" for i in range(QUERIES_PER_REQUEST)]
REPEATED_SQL = ["SELECT v FROM t WHERE id = ?"] * QUERIES_PER_REQUEST


def sql_app(conn: Any, statements: list[str]) -> Callable[[Any, Any], list[bytes]]:
    """A WSGI app that runs one lookup per statement, fetching each row."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        cursor = conn.cursor()
        for i, sql in enumerate(statements):
            cursor.execute(sql, (i,))
            cursor.fetchone()
        cursor.close()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    return app


def prepare(conn: Any) -> Any:
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(100)])
    conn.commit()
    return conn


# -- drivers ----------------------------------------------------------------------------


async def _receive() -> dict[str, Any]:
    return REQUEST_MESSAGE


async def _send(message: Any) -> None:
    return None


def asgi_runner(app: Any, loop: asyncio.AbstractEventLoop) -> Callable[[int], None]:
    async def drive(n: int) -> None:
        scope, receive, send = SCOPE, _receive, _send
        for _ in range(n):
            await app(dict(scope), receive, send)

    def run(n: int) -> None:
        loop.run_until_complete(drive(n))

    return run


def wsgi_runner(app: Any) -> Callable[[int], None]:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def run(n: int) -> None:
        environ = ENVIRON
        for _ in range(n):
            body = app(dict(environ), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return run


# -- the other middlewares ---------------------------------------------------------------


class PrometheusASGI:
    """What people write: time the request, observe into a labelled Histogram."""

    def __init__(self, app: Any, histogram: Any) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.histogram.labels(scope["path"], scope["method"]).observe(
                time.perf_counter() - start
            )


class PrometheusWSGI:
    """The WSGI twin of :class:`PrometheusASGI`."""

    def __init__(self, app: Any, histogram: Any) -> None:
        self.app = app
        self.histogram = histogram

    def __call__(self, environ: Any, start_response: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            self.histogram.labels(environ["PATH_INFO"], environ["REQUEST_METHOD"]).observe(
                time.perf_counter() - start
            )


# -- the variants ------------------------------------------------------------------------


@dataclass
class Variant:
    kind: str  # asgi, wsgi, sql
    name: str  # bare, perfpilot, otel, ...
    run: Callable[[int], None]
    after_batch: Callable[[], None] = lambda: None
    batch: int = 0
    means_us: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def build_variants(loop: asyncio.AbstractEventLoop) -> tuple[list[Variant], list[str]]:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGI
    from opentelemetry.instrumentation.dbapi import instrument_connection
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry, Histogram

    from perfpilot.config import Settings
    from perfpilot.instrument import wrap_app
    from perfpilot.instrument.context import active
    from perfpilot.instrument.recorder import Recorder

    notes: list[str] = []
    settings = Settings()
    recorder = Recorder(
        settings.service,
        slow_s=settings.slow_request_ms / 1000,
        sample_rate=settings.trace_sample_rate,
    )
    seen = {"requests": 0, "queries": 0, "traces": 0}

    def collect() -> None:  # what the flusher does every few seconds
        interval = recorder.collect()
        seen["requests"] += sum(a.count for a in interval.requests.values())
        seen["queries"] += sum(a.count for a in interval.queries.values())
        seen["traces"] += len(interval.traces)

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = {"n": 0}

    def clear_spans() -> None:
        spans["n"] += len(exporter.get_finished_spans())
        exporter.clear()

    registry = CollectorRegistry()
    prom = Histogram(
        "bench_http_request_duration_seconds",
        "Request duration.",
        ["route", "method"],
        registry=registry,
    )

    variants = [
        Variant("asgi", "bare", asgi_runner(asgi_app, loop)),
        Variant("asgi", "perfpilot", asgi_runner(wrap_app(asgi_app, recorder), loop), collect),
        Variant(
            "asgi",
            "otel",
            asgi_runner(OtelASGI(asgi_app, tracer_provider=provider), loop),
            clear_spans,
        ),
        Variant(
            "asgi",
            "otel-lean",
            asgi_runner(
                OtelASGI(asgi_app, tracer_provider=provider, exclude_spans=["receive", "send"]),
                loop,
            ),
            clear_spans,
        ),
        Variant("asgi", "prometheus", asgi_runner(PrometheusASGI(asgi_app, prom), loop)),
        Variant("wsgi", "bare", wsgi_runner(wsgi_app)),
        Variant("wsgi", "perfpilot", wsgi_runner(wrap_app(wsgi_app, recorder)), collect),
        Variant(
            "wsgi", "otel", wsgi_runner(OtelWSGI(wsgi_app, tracer_provider=provider)), clear_spans
        ),
        Variant("wsgi", "prometheus", wsgi_runner(PrometheusWSGI(wsgi_app, prom))),
    ]

    # SQL: connections made with the original connect before perfpilot hooks sqlite3
    bare_connect = sqlite3.connect
    bare_conn = prepare(bare_connect(":memory:", check_same_thread=False))
    otel_conn = instrument_connection(
        "bench",
        prepare(bare_connect(":memory:", check_same_thread=False)),
        "sqlite",
        tracer_provider=provider,
    )
    variants.append(Variant("sql", "bare", wsgi_runner(sql_app(bare_conn, DISTINCT_SQL))))
    active.recorder = recorder  # the recorder perfpilot's library hooks report to
    try:
        from perfpilot.instrument import sql as pp_sql

        hooked = pp_sql.install()
    except Exception as exc:
        pp_sql = None
        notes.append(f"perfpilot SQL hook skipped: perfpilot.instrument.sql unusable ({exc!r})")
    if pp_sql is not None:
        pp_conn = prepare(sqlite3.connect(":memory:", check_same_thread=False))
        if sqlite3.connect is bare_connect and type(pp_conn) is sqlite3.Connection:
            notes.append(f"perfpilot sql.install() returned {hooked!r}; sqlite3 looks unhooked")
        pp_sql_app = wrap_app(sql_app(pp_conn, DISTINCT_SQL), recorder)
        variants.append(Variant("sql", "perfpilot", wsgi_runner(pp_sql_app), collect))
    variants.append(
        Variant(
            "sql",
            "otel",
            wsgi_runner(OtelWSGI(sql_app(otel_conn, DISTINCT_SQL), tracer_provider=provider)),
            clear_spans,
        )
    )
    if pp_sql is not None:
        n1_app = wrap_app(sql_app(pp_conn, REPEATED_SQL), recorder)
        variants.append(Variant("sql", "perfpilot-n+1", wsgi_runner(n1_app), collect))

    def check() -> None:
        """Each instrumented variant really recorded what it ran (printed, not asserted)."""
        for v in variants:
            v.after_batch()
        before = dict(seen), spans["n"]
        for v in variants:
            v.run(10)
            v.after_batch()
        got = {k: seen[k] - before[0][k] for k in seen}
        pp = [v for v in variants if v.name.startswith("perfpilot")]
        want_q = sum(10 * QUERIES_PER_REQUEST for v in pp if v.kind == "sql")
        observed = registry.get_sample_value(
            "bench_http_request_duration_seconds_count", {"route": "/items/42", "method": "GET"}
        )
        notes.append(
            f"sanity: perfpilot recorded {got['requests']} of {10 * len(pp)} requests and "
            f"{got['queries']} of {want_q} queries; OpenTelemetry exported "
            f"{spans['n'] - before[1]} spans for {10 * 4} requests (+{10 * QUERIES_PER_REQUEST} "
            f"queries); prometheus_client observed {int(observed or 0)} of 20 requests"
        )

    check()
    return variants, notes


# -- measuring ---------------------------------------------------------------------------


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def timed(variant: Variant, n: int, clock: Callable[[], float]) -> float:
    """Seconds for ``n`` requests and the batch's bookkeeping, gc off while timing."""
    gc.collect()
    gc.disable()
    try:
        start = clock()
        variant.run(n)
        # inside the timing: whatever perfpilot defers to collect() is paid here
        variant.after_batch()
        elapsed = clock() - start
    finally:
        gc.enable()
    return elapsed


def calibrate(variants: list[Variant], batch_s: float, clock: Callable[[], float]) -> None:
    for v in variants:
        timed(v, 200, clock)  # warm-up: caches, lazy imports, first-call paths
        n = 200
        elapsed = timed(v, n, clock)
        while elapsed < 0.02:
            n *= 4
            elapsed = timed(v, n, clock)
        v.batch = max(100, int(n * batch_s / elapsed))


def measure(variants: list[Variant], rounds: int, clock: Callable[[], float]) -> None:
    for r in range(rounds):
        k = r % len(variants)
        order = variants[k:] + variants[:k]
        if r % 2:
            order.reverse()
        for v in order:
            v.means_us.append(timed(v, v.batch, clock) / v.batch * 1e6)


# -- reporting ---------------------------------------------------------------------------


def median_diff(a: list[float], b: list[float]) -> float:
    return statistics.median(x - y for x, y in zip(a, b, strict=True))


def spread(values: list[float]) -> str:
    if len(values) < 4:
        return ""
    q = statistics.quantiles(values, n=4)
    return f"[{q[0]:.2f} .. {q[2]:.2f}]"


def report(
    variants: list[Variant], notes: list[str], rounds: int, batch_s: float, clock: str
) -> None:
    by = {v.key: v for v in variants}
    print(
        f"perfpilot in-app overhead: Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {rounds} rounds x ~{batch_s:g} s per variant, "
        f"{clock} time, gc off while timing, in-process calls (no network)"
    )
    for note in notes:
        print(f"  {note}")
    print()
    print(
        f"{'variant':<20} {'requests/batch':>14} {'µs/req median':>14} {'min':>8} "
        f"{'added µs/req':>13}  IQR of added"
    )
    added: dict[str, list[float]] = {}
    for v in variants:
        bare = by[f"{v.kind}/bare"]
        diffs = [x - y for x, y in zip(v.means_us, bare.means_us, strict=True)]
        added[v.key] = diffs
        extra = "" if v.name == "bare" else f"{statistics.median(diffs):>+13.2f}  {spread(diffs)}"
        print(
            f"{v.key:<20} {v.batch:>14,} {statistics.median(v.means_us):>14.2f} "
            f"{min(v.means_us):>8.2f} {extra}"
        )

    def per_query(name: str) -> list[float] | None:
        if f"sql/{name}" not in by:
            return None
        base = name if name != "perfpilot-n+1" else "perfpilot"
        return [
            (s - w) / QUERIES_PER_REQUEST
            for s, w in zip(added[f"sql/{name}"], added[f"wsgi/{base}"], strict=True)
        ]

    print()
    print("added per query: ((sql variant - sql bare) - (wsgi variant - wsgi bare)) / 10")
    pq: dict[str, float] = {}
    for name in ("perfpilot", "otel", "perfpilot-n+1"):
        values = per_query(name)
        if values is not None:
            pq[name] = statistics.median(values)
            print(f"  {name:<16} {pq[name]:>+8.2f} µs/query  {spread(values)}")

    def med(key: str) -> float:
        return statistics.median(added[key])

    print()
    print("targets")
    for kind in ("asgi", "wsgi"):
        got = med(f"{kind}/perfpilot")
        verdict = "PASS" if got <= TARGET_REQUEST_US else "FAIL"
        print(
            f"  perfpilot {kind.upper()} adds <= {TARGET_REQUEST_US:g} µs/request: "
            f"{got:.2f} µs  {verdict}"
        )
    if "perfpilot" in pq:
        verdict = "PASS" if pq["perfpilot"] <= TARGET_QUERY_US else "FAIL"
        print(
            f"  perfpilot adds <= {TARGET_QUERY_US:g} µs/query: {pq['perfpilot']:.2f} µs  {verdict}"
        )
    else:
        print("  perfpilot adds <= 2 µs/query: SKIPPED (no perfpilot.instrument.sql)")
    ratios = [
        ("ASGI request (OTel defaults)", med("asgi/otel"), med("asgi/perfpilot")),
        ("WSGI request", med("wsgi/otel"), med("wsgi/perfpilot")),
    ]
    if "perfpilot" in pq:
        ratios.append(("SQL query", pq["otel"], pq["perfpilot"]))
    for label, otel, pp in ratios:
        ratio = otel / pp if pp > 0 else float("inf")
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        print(
            f"  OTel-added / perfpilot-added >= {TARGET_RATIO:g}x, {label}: "
            f"{otel:.2f} / {pp:.2f} = {ratio:.1f}x  {verdict}"
        )
    lean, pp = med("asgi/otel-lean"), med("asgi/perfpilot")
    print(
        f"  (reference) OTel ASGI without send/receive spans: {lean:.2f} µs added, "
        f"{lean / pp if pp > 0 else float('inf'):.1f}x perfpilot"
    )
    prom_a, prom_w = med("asgi/prometheus"), med("wsgi/prometheus")
    print(
        f"  (reference) prometheus_client Histogram middleware: ASGI {prom_a:.2f}, "
        f"WSGI {prom_w:.2f} µs added"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds (a few seconds)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 15)")
    parser.add_argument("--batch-s", type=float, default=None, help="seconds per batch")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: this thread's CPU time, immune to other processes taking the core "
        "(default); wall: perf_counter",
    )
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    rounds = args.rounds or (3 if args.quick else 15)
    batch_s = args.batch_s or (0.03 if args.quick else 0.15)

    loop = asyncio.new_event_loop()
    try:
        variants, notes = build_variants(loop)
        calibrate(variants, batch_s, clock)
        measure(variants, rounds, clock)
        report(variants, notes, rounds, batch_s, args.clock)
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
