"""The stack sampler's cost: CPU of its thread, and what the request threads lose.

The sampler costs nothing per request (it finds each thread's route from the
stack), so this measures what it costs the process instead:

- ``N`` request threads serve CPU-bound requests through perfpilot's WSGI
  middleware (about ``--work-ms`` of pure-Python work each, ``--depth`` frames
  deep, the route set as a framework integration sets it), plus ``M`` idle
  threads blocked on an event (a thread pool's idle workers).
- Each variant runs for ``--seconds``: no sampler, then the sampler at each
  interval of ``--intervals``; the order is rotated each round.
- Reported per variant: requests per second over all threads, the sampler
  thread's CPU time as a percentage of one core (``time.thread_time`` around
  every pass, inside the sampler thread), passes per second, CPU microseconds
  per pass, and the throughput change against no sampler (medians over rounds;
  on a shared machine differences under about 2 % are noise).

Usage::

    .venv/bin/python bench/profiler_overhead.py                 # about a minute
    .venv/bin/python bench/profiler_overhead.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from perfpilot.instrument.context import current_request
from perfpilot.instrument.profiler import Profiler
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware


def _nest(depth: int, work: Any) -> int:
    """``depth`` frames of calls, then the work (a framework's stack is 30-80 deep)."""
    if depth <= 0:
        return int(work())
    return _nest(depth - 1, work)


def _busy(seconds: float) -> int:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x += i * i
    return x


class Load:
    """Request threads and idle threads, counting finished requests."""

    def __init__(self, threads: int, idle: int, work_s: float, depth: int) -> None:
        self.done = [0] * threads
        self.stop = threading.Event()
        self._idle_stop = threading.Event()

        def app(environ: Any, start_response: Any) -> list[bytes]:
            ctx = current_request.get()
            if ctx is not None:
                ctx.route = "/bench"
            _nest(depth, lambda: _busy(work_s))
            start_response("200 OK", [])
            return [b"ok"]

        self.middleware = PerfpilotWSGIMiddleware(app, Recorder())
        self.workers = [threading.Thread(target=self._serve, args=(i,)) for i in range(threads)]
        self.idle = [threading.Thread(target=self._idle_stop.wait) for _ in range(idle)]
        for thread in self.workers + self.idle:
            thread.start()

    def _serve(self, i: int) -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/bench"}
        while not self.stop.is_set():
            body = self.middleware(environ, lambda *a: None)
            for _ in body:
                pass
            body.close()  # type: ignore[attr-defined]
            self.done[i] += 1
            if i == 0 and self.done[0] % 1000 == 0:
                self.middleware.recorder.collect()  # as the flusher does

    def close(self) -> None:
        self.stop.set()
        self._idle_stop.set()
        for thread in self.workers + self.idle:
            thread.join()


def run_variant(load: Load, interval_ms: float, seconds: float) -> dict[str, float]:
    """One variant: throughput, and the sampler's CPU when ``interval_ms`` > 0."""
    cpu = [0.0]
    profiler = None
    if interval_ms > 0:
        profiler = Profiler(interval_ms / 1000, endpoints=dict)
        sample = profiler.sample

        def timed() -> int:
            start = time.thread_time()
            try:
                return sample()
            finally:
                cpu[0] += time.thread_time() - start

        profiler.sample = timed  # type: ignore[method-assign]
        profiler.start()
    before = sum(load.done)
    started = time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - started
    requests = sum(load.done) - before
    result = {"rps": requests / elapsed, "cpu_pct": 0.0, "passes_s": 0.0, "us_pass": 0.0}
    if profiler is not None:
        profiler.stop()
        passes = profiler.passes
        result.update(
            cpu_pct=100 * cpu[0] / elapsed,
            passes_s=passes / elapsed,
            us_pass=1e6 * cpu[0] / max(1, passes),
        )
        rows, _ = profiler.collect()
        result["samples"] = sum(r.samples for r in rows)
    return result


def main() -> None:
    """Run the variants and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    parser.add_argument("--idle", type=int, default=32, help="idle threads (default 32)")
    parser.add_argument("--work-ms", type=float, default=2.0, help="CPU work per request")
    parser.add_argument("--depth", type=int, default=50, help="stack depth of the work")
    parser.add_argument("--seconds", type=float, default=3.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--intervals", default="10,20,5", help="sampler intervals, ms")
    parser.add_argument("--quick", action="store_true", help="1 s per variant, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 1.0, 2
    intervals = [0.0] + [float(x) for x in args.intervals.split(",")]
    load = Load(args.threads, args.idle, args.work_ms / 1000, args.depth)
    results: dict[float, list[dict[str, float]]] = {i: [] for i in intervals}
    try:
        time.sleep(0.5)  # warm-up
        for r in range(args.rounds):
            order = intervals[r % len(intervals) :] + intervals[: r % len(intervals)]
            for interval in order:
                results[interval].append(run_variant(load, interval, args.seconds))
    finally:
        load.close()
    base = statistics.median(x["rps"] for x in results[0.0])
    print(
        f"{args.threads} request threads ({args.work_ms:g} ms of CPU each, {args.depth} frames "
        f"deep), {args.idle} idle threads; {args.rounds} rounds of {args.seconds:g} s; medians"
    )
    print(f"{'sampler':<12}{'req/s':>10}{'change':>9}{'CPU %':>8}{'passes/s':>10}{'µs/pass':>9}")
    for interval in intervals:
        rows = results[interval]
        rps = statistics.median(x["rps"] for x in rows)
        name = "off" if interval == 0 else f"{interval:g} ms"
        change = f"{100 * (rps / base - 1):+.1f}%" if interval else ""
        if interval == 0:
            print(f"{name:<12}{rps:>10,.0f}{change:>9}")
            continue
        cpu = statistics.median(x["cpu_pct"] for x in rows)
        passes = statistics.median(x["passes_s"] for x in rows)
        per_pass = statistics.median(x["us_pass"] for x in rows)
        print(f"{name:<12}{rps:>10,.0f}{change:>9}{cpu:>8.2f}{passes:>10.0f}{per_pass:>9.1f}")


if __name__ == "__main__":
    main()
