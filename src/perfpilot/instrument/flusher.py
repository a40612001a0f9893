"""The background flusher: every few seconds, recorder → snapshot → store.

It runs in a daemon thread, so the request path never waits on I/O. When the
store cannot take a snapshot (locked, unreachable), snapshots wait in a bounded
queue and the oldest are dropped and counted past ``max_pending``; the problem
is logged once, never raised.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from perfpilot.app_records import (
    AppSnapshot,
    CacheRow,
    OutboundRow,
    PoolRow,
    ProfileRow,
    QueryRow,
    RequestRow,
    Span,
    Trace,
    UnitRow,
)
from perfpilot.instrument.aggregates import Interval
from perfpilot.instrument.context import warn_once
from perfpilot.instrument.profiler import Profiler
from perfpilot.instrument.recorder import Recorder

Sink = Callable[[AppSnapshot], None]
Fingerprinter = Callable[[str, str], tuple[str, str]]


class Flusher:
    """Moves what the recorder gathered into the store, off the request path.

    Args:
        recorder: Where events are aggregated.
        sink: Writes one snapshot (e.g. ``store.save_app_snapshot``); called
            only from the flusher's thread.
        fingerprint: ``(sql, db) -> (fingerprint id, normalized sql)``.
        interval_s: Seconds between flushes.
        max_pending: Snapshots kept while the sink fails.
        sampler: Called once per interval for a resource sample (or ``None``).
        observers: Called with every snapshot built (e.g. the Prometheus
            totals), in the flusher's thread, before it is written.
        profiler: The stack sampler whose counts go into each snapshot; the
            flusher starts it, stops it and restarts it after a fork.
    """

    def __init__(
        self,
        recorder: Recorder,
        sink: Sink,
        fingerprint: Fingerprinter,
        *,
        interval_s: float = 5.0,
        max_pending: int = 60,
        sampler: Callable[[], Any] | None = None,
        observers: Sequence[Callable[[AppSnapshot], None]] = (),
        profiler: Profiler | None = None,
    ) -> None:
        self.recorder = recorder
        self.sink = sink
        self.fingerprint = fingerprint
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.sampler = sampler
        self.observers = list(observers)
        self.profiler = profiler
        self.pending: collections.deque[AppSnapshot] = collections.deque()
        self.written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._host = socket.gethostname()
        self._registered = False
        self._stopped = False

    def start(self) -> None:
        """Start the thread (idempotent); flush at interpreter exit; restart after fork."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="perfpilot-flusher", daemon=True)
            self._thread.start()
            self._start_profiler()
            if self._registered:  # a forked child inherits both registrations
                return
            self._registered = True
        atexit.register(self.stop)
        os.register_at_fork(after_in_child=self._after_fork)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and flush what is left (once, from the flusher's thread).

        The last flush runs in the flusher's own thread, so the sink is only
        ever called from one thread (a SQLite connection refuses any other).
        A thread stuck in the sink past ``timeout_s`` is left behind: exit
        must not hang on a store that does not answer.
        """
        with self._lock:
            if self._stopped:  # at lifespan shutdown, then again at exit
                return
            self._stopped = True
        if self.profiler is not None:  # first: its last samples go in the last flush
            self.profiler.stop()
        self._stop.set()
        thread = self._thread
        if thread is None or not thread.is_alive():
            self.flush()  # never started (or gone): flush from here
            return
        if thread is threading.current_thread():
            return  # _run flushes once more when it sees the stop event
        thread.join(timeout_s)
        if thread.is_alive():
            warn_once("flush-stuck", "perfpilot: the store did not answer; last data not written")

    def _after_fork(self) -> None:
        # the child has the parent's memory but not its thread; the parent
        # flushes its own events, the child starts afresh
        self.recorder.reset_after_fork()
        if self.profiler is not None:
            self.profiler.after_fork()
        self.pending = collections.deque()
        reset_sink = getattr(self.sink, "after_fork", None)
        if reset_sink is not None:  # e.g. a store connection must not cross a fork
            try:
                reset_sink()
            except Exception as exc:
                warn_once("sink-fork", "perfpilot: store not reset after fork: %r", exc)
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self._stopped = False
        self.start()

    def _start_profiler(self) -> None:
        if self.profiler is not None:
            try:
                self.profiler.start()
            except Exception as exc:  # no thread to spare: run without profiles
                warn_once("profiler-start", "perfpilot: no stack sampling: %r", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Take one snapshot and write everything pending; never raises."""
        try:
            if self.sampler is not None:
                try:
                    sample = self.sampler()
                    if sample is not None:
                        self.recorder.resource_sample(sample)
                except Exception as exc:
                    warn_once("sampler", "perfpilot: resource sample failed: %r", exc)
            snapshot = self.build(self.recorder.collect())
            if not snapshot.empty:
                self.pending.append(snapshot)
            for observer in self.observers:
                try:
                    observer(snapshot)
                except Exception as exc:
                    warn_once(f"observer-{id(observer)}", "perfpilot: observer failed: %r", exc)
            while self.pending:
                self.sink(self.pending[0])
                self.pending.popleft()
                self.written += 1
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            warn_once("flush", "perfpilot: cannot write to the store (will retry): %s", reason)
            # bound what waits for the store only while it fails, so a store
            # that recovers gets everything still held
            while len(self.pending) > self.max_pending:
                self.pending.popleft()
                self.recorder.drop("snapshots")

    def build(self, interval: Interval) -> AppSnapshot:
        """Turn a raw interval into a snapshot: fingerprint SQL, redact literals;
        the profiler's samples since the last snapshot go with it."""
        profiles: tuple[ProfileRow, ...] = ()
        drops = dict(interval.drops)
        if self.profiler is not None:
            profiles, profile_drops = self.profiler.collect()
            for kind, n in profile_drops.items():
                drops[kind] = drops.get(kind, 0) + n
        fingerprint = self._fingerprint
        queries: dict[tuple[str, str, str], Any] = {}
        for (sql, route, db), agg in interval.queries.items():
            fid, normalized = fingerprint(sql, db)
            key = (fid, route, db)
            row = queries.get(key)
            if row is None:
                queries[key] = [normalized, agg.count, agg.errors, agg.latency.copy(), agg.rows,
                                self.recorder.call_sites.get(sql)]  # fmt: skip
            else:
                row[1] += agg.count
                row[2] += agg.errors
                row[3].merge(agg.latency)
                row[4] += agg.rows
        sites = self.recorder.outbound_sites
        return AppSnapshot(
            service=self.recorder.service,
            host=self._host,
            pid=os.getpid(),
            started_at=interval.started_at,
            ended_at=time.time(),
            requests=tuple(
                RequestRow(
                    route,
                    method,
                    sc,
                    a.count,
                    a.errors,
                    a.latency,
                    a.db_time,
                    a.db_count,
                    a.out_time,
                    a.out_count,
                    a.cost,
                    a.cache_hits,
                    a.cache_misses,
                    a.bytes_out,
                    a.uncompressed,
                    a.cache_time,
                )
                for (route, method, sc), a in interval.requests.items()
            ),
            queries=tuple(
                QueryRow(fid, v[0], db, route, v[1], v[2], v[3], v[4], v[5])
                for (fid, route, db), v in queries.items()
            ),
            outbound=tuple(
                OutboundRow(
                    host,
                    template,
                    method,
                    sc,
                    route,
                    a.count,
                    a.errors,
                    a.latency,
                    a.bytes_in,
                    a.bytes_out,
                    a.retries,
                    a.cost,
                    a.prompt_tokens,
                    a.completion_tokens,
                    a.model,
                    a.repeated,
                    a.repeated_across,
                    sites.get((method, host, template)),
                )
                for (host, template, method, sc, route), a in interval.outbound.items()
            ),
            caches=tuple(
                CacheRow(cache, command, prefix, route, hits, misses)
                for (cache, command, prefix, route), (hits, misses) in interval.caches.items()
            ),
            units=tuple(
                UnitRow(unit, route, int(s[0]), int(s[1]), s[2])
                for (unit, route), s in interval.units.items()
            ),
            pools=tuple(
                PoolRow(pool, int(v[0]), v[1], v[2], int(v[3]), int(v[4]), int(v[5]))
                for pool, v in interval.pools.items()
            ),
            resources=tuple(interval.resources),
            traces=tuple(self._trace(t) for t in interval.traces),
            drops=drops,
            profiles=profiles,
        )

    def _fingerprint(self, sql: str, db: str) -> tuple[str, str]:
        # one statement the fingerprinter cannot handle must not cost the snapshot
        try:
            return self.fingerprint(sql, db)
        except Exception as exc:
            warn_once("fingerprint-failed", "perfpilot: SQL not fingerprinted: %r", exc)
            digest = hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:16]
            return digest, "<unparsed sql>"

    def _trace(self, raw: dict[str, Any]) -> Trace:
        spans: list[Span] = []
        for sql, start, duration, rows, failed, db in raw["queries"]:
            _, normalized = self._fingerprint(sql, db)
            detail: dict[str, Any] = {"rows": rows, "db": db}
            if failed:
                detail["failed"] = True
            site = self.recorder.call_sites.get(sql)
            if site:
                detail["call_site"] = site
            spans.append(Span("db", normalized, start, duration, detail))
        for call in raw["calls"]:
            (method, host, template, status, duration, _bi, _bo, cost,
             _pt, _ct, model, _identity, start) = call  # fmt: skip
            detail = {"status": status}
            if cost:
                detail["cost_usd"] = cost
            if model:
                detail["model"] = model
            site = self.recorder.outbound_sites.get((method, host, template))
            if site:
                detail["call_site"] = site
            spans.append(Span("http", f"{method} {host}{template}", start, duration, detail))
        for cache, command, prefix, hit, start, duration in raw["cache_events"]:
            name = f"{cache} {command} {prefix}"
            spans.append(Span("cache", name, start, duration, {} if hit is None else {"hit": hit}))
        spans.sort(key=lambda span: span.start_s)
        return Trace(
            at=raw["at"],
            route=raw["route"],
            method=raw["method"],
            status=raw["status"],
            duration_s=raw["duration_s"],
            reasons=tuple(raw["reasons"]),
            spans=tuple(spans),
            spans_dropped=raw["dropped"],
        )
