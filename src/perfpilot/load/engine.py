"""The load engine of one worker process: virtual users and executors.

Closed model (``constant-vus``, ``ramping-vus``): each virtual user (VU) runs
iterations back to back on its own keep-alive connection. Open model
(``constant-arrival-rate``, ``ramping-arrival-rate``): iterations start on a
schedule whatever the server does; an idle VU takes each one, new VUs are
added up to ``max_vus``, and an iteration due when none is free is dropped and
counted. In the open model latency is measured from the *intended* start of
the iteration, so a stalled server shows in the percentiles (no coordinated
omission); the service time from the actual send is kept beside it.

A worker runs a *segment* ``[a, b)`` of the whole load: its share of VUs and
of the arrival rate, so several processes (or machines) add up to one test.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import math
import random
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urljoin

from perfpilot.load.client import (
    HTTPConnection,
    Origin,
    encode_request,
    error_kind,
    make_ssl_context,
    open_connection,
    perf,
    split_url,
)
from perfpilot.load.metrics import Chunk, NameAccumulator, Recorder, run_check
from perfpilot.load.plan import Check, LoadPlan, RequestSpec

FlowFunction = Callable[[Any], Awaitable[Any]]

CONNECT_ERROR_BACKOFF_S = 0.05
SWEEP_INTERVAL_S = 0.1
CONTROL_INTERVAL_S = 0.1
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CONNECT_ERRORS = frozenset({"refused", "dns", "unreachable", "connect", "tls", "connect_timeout"})


def segment_share(total: float, segment: tuple[float, float]) -> int:
    """This segment's whole share of ``total`` VUs (shares of all segments add up)."""
    a, b = segment
    eps = 1e-9
    return math.floor(total * b + eps) - math.floor(total * a + eps)


class PreparedRequest:
    """A :class:`RequestSpec` encoded once, with its accumulator."""

    __slots__ = ("acc", "checks", "data", "head", "origin", "spec", "templated")

    def __init__(self, spec: RequestSpec, acc: NameAccumulator, default_headers: Any) -> None:
        self.spec = spec
        self.origin, target = split_url(spec.url.replace("${", "_").replace("}", "_"))
        _, target = _split_target(spec.url)
        headers = [*default_headers, *spec.headers]
        self.data = encode_request(spec.method, self.origin, target, headers, spec.body)
        self.templated = b"${" in self.data
        self.head = spec.method == "HEAD"
        self.checks: tuple[Check, ...] = spec.checks
        self.acc = acc

    def render(self, vu: int, iteration: int, rng: random.Random) -> bytes:
        """The request bytes with ``${vu}``, ``${iter}`` and ``${rand}`` filled in."""
        data = self.data
        if b"${vu}" in data:
            data = data.replace(b"${vu}", str(vu).encode())
        if b"${iter}" in data:
            data = data.replace(b"${iter}", str(iteration).encode())
        while b"${rand}" in data:
            data = data.replace(b"${rand}", str(rng.randrange(1_000_000_000)).encode(), 1)
        return data


def _split_target(url: str) -> tuple[str, str]:
    """Split off the request target without validating placeholders in it."""
    scheme_end = url.index("://") + 3
    slash = url.find("/", scheme_end)
    query = url.find("?", scheme_end)
    cut = min(i for i in (slash, query, len(url)) if i >= 0)
    target = url[cut:] or "/"
    if target.startswith("?"):
        target = "/" + target
    return url[:cut], target


class VirtualUser:
    """State shared by both kinds of VU: identity, connections, busy flag."""

    def __init__(self, engine: Engine, vu_id: int) -> None:
        self.engine = engine
        self.id = vu_id
        self.conns: dict[Origin, HTTPConnection] = {}
        self.iteration = 0
        self.busy = False
        self.stopping = False
        self.parked = False

    def begin(self, intended: float | None) -> None:
        """Start one iteration; ``intended`` is its scheduled start (open model)."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop every connection."""
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()

    def sweep(self, now: float, timeout_s: float) -> None:
        """Fail requests that have been in flight longer than ``timeout_s``."""
        for conn in list(self.conns.values()):
            if conn.busy and now - conn.sent_at > timeout_s:
                conn.abort("timeout")


class RequestVU(VirtualUser):
    """A VU that sends one weighted request per iteration, driven by callbacks."""

    def __init__(self, engine: Engine, vu_id: int) -> None:
        super().__init__(engine, vu_id)
        self.req: PreparedRequest | None = None
        self.intended: float | None = None
        self.redirects = 0

    def begin(self, intended: float | None) -> None:
        """Start one iteration: pick a request and send it."""
        engine = self.engine
        self.busy = True
        self.iteration += 1
        self.intended = intended
        self.redirects = 0
        req = engine.pick()
        self.req = req
        data = req.render(self.id, self.iteration, engine.rng) if req.templated else req.data
        self._send(req.origin, data, req.head)

    def _send(self, origin: Origin, data: bytes, head: bool) -> None:
        conn = self.conns.get(origin)
        if conn is None or conn.closed:
            self.engine.spawn(self._connect_and_send(origin, data, head))
            return
        conn.send(data, head)

    async def _connect_and_send(self, origin: Origin, data: bytes, head: bool) -> None:
        engine = self.engine
        try:
            conn = await open_connection(
                origin,
                self,
                want_headers=engine.want_headers,
                want_body=engine.want_body,
                timeout_s=engine.plan.connect_timeout_s,
                ssl_context=engine.ssl_context,
            )
        except Exception as exc:
            kind = error_kind(exc)
            self._failed("connect_timeout" if kind == "timeout" else kind)
            return
        if not engine.running and engine.stopped:
            conn.close()
            return
        self.conns[origin] = conn
        conn.send(data, head)

    def on_response(
        self, conn: HTTPConnection, status: int, headers: dict[str, str] | None, body: bytes | None
    ) -> None:
        """Record the response and move on to the next iteration."""
        now = perf()
        req = self.req
        if req is None:
            return
        engine = self.engine
        if (
            status in REDIRECT_STATUSES
            and engine.plan.follow_redirects
            and headers
            and "location" in headers
            and self.redirects < MAX_REDIRECTS
        ):
            self._redirect(conn, headers["location"])
            return
        acc = req.acc
        service = now - conn.sent_at
        acc.svc.append(service)
        intended = self.intended
        acc.lat.append(service if intended is None else now - intended)
        acc.requests += 1
        if status >= 400:
            acc.add_error("status_5xx" if status >= 500 else "status_4xx")
        if req.checks:
            parsed: list[Any] = []
            for check in req.checks:
                acc.add_check(check.name, run_check(check, status, body, parsed))
        engine.iteration_done(self, False)

    def _redirect(self, conn: HTTPConnection, location: str) -> None:
        req = self.req
        assert req is not None
        if self.intended is None:
            # closed model: the first send time is the start of the whole exchange
            self.intended = conn.sent_at
        self.redirects += 1
        try:
            origin, target = split_url(urljoin(req.spec.url, location))
        except Exception:
            self._failed("redirect")
            return
        data = encode_request("GET", origin, target, self.engine.plan.default_headers)
        self._send(origin, data, False)

    def on_error(self, conn: HTTPConnection, kind: str) -> None:
        """Count the failure and move on."""
        self._failed(kind)

    def _failed(self, kind: str) -> None:
        req = self.req
        if req is None:
            return
        acc = req.acc
        acc.requests += 1
        acc.add_error(kind)
        self.engine.iteration_done(self, kind in CONNECT_ERRORS)


class Engine:
    """Runs one segment of a :class:`LoadPlan` on the current event loop.

    Args:
        plan: What to run.
        segment: This worker's share ``[a, b)`` of the whole load.
        emit: Called with one :class:`Chunk` per second of the run.
        flow: The flow function, when the plan has one.
        seed: Seed for request picks and think times.
    """

    def __init__(
        self,
        plan: LoadPlan,
        segment: tuple[float, float],
        emit: Callable[[Chunk], None],
        *,
        flow: FlowFunction | None = None,
        seed: int | None = None,
    ) -> None:
        self.plan = plan
        self.executor = plan.executor
        self.segment = segment
        self.emit = emit
        self.flow = flow
        self.rng = random.Random(seed)
        self.recorder = Recorder()
        self.vus: list[VirtualUser] = []
        self.idle: list[VirtualUser] = []
        self.running = False
        self.stopped = False
        self.in_flight = 0
        self.ssl_context = make_ssl_context(plan.insecure) if _uses_tls(plan) else None
        checks = [c for r in plan.requests for c in r.checks]
        self.want_body = flow is not None or any(c.kind != "status" for c in checks)
        self.want_headers = (
            flow is not None
            or plan.follow_redirects
            or any(r.method == "HEAD" for r in plan.requests)
        )
        self.requests = [
            PreparedRequest(r, self.recorder.accumulator(r.name, {**r.tags}), plan.default_headers)
            for r in plan.requests
        ]
        weights = [r.weight for r in plan.requests]
        self._cum = [sum(weights[: i + 1]) for i in range(len(weights))]
        self._total_weight = self._cum[-1] if self._cum else 0.0
        think_min, think_max = plan.think_time_s
        self._think = (think_min, think_max) if think_max > 0 else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drained: asyncio.Event | None = None
        self._start = 0.0
        self._second = 0
        self.flow_errors = 0
        self.iterations = 0
        self.backlog: collections.deque[float] = collections.deque()
        self.open_model = self.executor.open_model
        self._back_to_back = not self.open_model and self._think is None

    # helpers used by VUs -------------------------------------------------
    def pick(self) -> PreparedRequest:
        """The next request, by weight."""
        requests = self.requests
        if len(requests) == 1:
            return requests[0]
        index = bisect.bisect_right(self._cum, self.rng.random() * self._total_weight)
        return requests[min(index, len(requests) - 1)]

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a task the engine keeps track of."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def think_time(self) -> float:
        """Seconds to pause after an iteration."""
        if self._think is None:
            return 0.0
        low, high = self._think
        return low if high <= low else self.rng.uniform(low, high)

    def new_vu(self) -> VirtualUser:
        """Create a VU of the kind the plan needs."""
        vu_id = len(self.vus) + 1
        vu: VirtualUser
        if self.flow is not None:
            from perfpilot.load.session import FlowVU

            vu = FlowVU(self, vu_id)
        else:
            vu = RequestVU(self, vu_id)
        self.vus.append(vu)
        return vu

    def iteration_done(self, vu: VirtualUser, connect_failed: bool) -> None:
        """A VU finished an iteration: start the next one or park the VU."""
        self.iterations += 1
        if self._back_to_back and not connect_failed and self.running and not vu.stopping:
            vu.begin(None)  # the hot path: closed model, no think time
            return
        delay = self.think_time()
        if connect_failed:
            delay += CONNECT_ERROR_BACKOFF_S
        if self.open_model:
            if delay > 0 and self.running:
                asyncio.get_running_loop().call_later(delay, self._release, vu)
            else:
                self._release(vu)
            return
        if not self.running or vu.stopping:
            self._park(vu)
            return
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._resume, vu)
        else:
            vu.begin(None)

    def _resume(self, vu: VirtualUser) -> None:
        if not self.running or vu.stopping:
            self._park(vu)
        else:
            vu.begin(None)

    def _park(self, vu: VirtualUser) -> None:
        vu.busy = False
        vu.stopping = False
        if not vu.parked:
            vu.parked = True
            self.idle.append(vu)
        self._check_drained()

    def _release(self, vu: VirtualUser) -> None:
        """Open model: a VU is free; give it the oldest waiting iteration, if any."""
        if self.running and self.backlog:
            vu.begin(self.backlog.popleft())
        else:
            self._park(vu)

    def _unpark(self) -> VirtualUser:
        """An idle VU, or a new one."""
        vu = self.idle.pop() if self.idle else self.new_vu()
        vu.parked = False
        vu.stopping = False
        return vu

    def _check_drained(self) -> None:
        if self._drained is not None and not any(vu.busy for vu in self.vus):
            self._drained.set()

    def flow_failed(self, exc: BaseException) -> None:
        """A flow function raised: count it, and say so once."""
        self.flow_errors += 1
        self.recorder.count("flow_errors")
        if self.flow_errors == 1:
            print(
                f"perfpilot: flow raised {type(exc).__name__}: {exc} "
                "(counted as flow_errors; further ones are counted silently)",
                file=sys.stderr,
            )

    # running ---------------------------------------------------------------
    async def run(self, start: float, stop: asyncio.Event) -> None:
        """Run the segment from perf-counter time ``start`` until done or ``stop`` is set.

        Args:
            start: ``time.perf_counter()`` value at which second 0 begins.
            stop: Set by the caller to end the run early.
        """
        loop = asyncio.get_running_loop()
        self._start = start
        wait = start - perf()
        if wait > 0:
            await asyncio.sleep(wait)
        self.running = True
        ticker = loop.call_later(max(0.0, start + 1 - perf()), self._tick)
        sweeper = loop.call_later(SWEEP_INTERVAL_S, self._sweep)
        duration = self.executor.total_duration_s
        try:
            driver = self._drive_open() if self.executor.open_model else self._drive_closed()
            driver_task = asyncio.ensure_future(driver)
            stop_task = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {driver_task, stop_task},
                timeout=max(0.0, start + duration - perf()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in (driver_task, stop_task):
                task.cancel()
            self.running = False
            if self.backlog:
                self.recorder.count("dropped_iterations", len(self.backlog))
                self.backlog.clear()
            await self._drain()
        finally:
            self.running = False
            self.stopped = True
            ticker.cancel()
            sweeper.cancel()
            for vu in self.vus:
                vu.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._flush()

    async def _drain(self) -> None:
        """Let in-flight iterations finish, for at most ``graceful_stop_s``."""
        busy = [vu for vu in self.vus if vu.busy]
        if not busy:
            return
        self._drained = asyncio.Event()
        try:
            await asyncio.wait_for(self._drained.wait(), self.executor.graceful_stop_s)
        except TimeoutError:
            interrupted = sum(1 for vu in self.vus if vu.busy)
            self.recorder.count("interrupted_iterations", interrupted)

    def _tick(self) -> None:
        self._flush()
        if self.running:
            loop = asyncio.get_running_loop()
            loop.call_later(max(0.0, self._start + self._second + 1 - perf()), self._tick)

    def _flush(self) -> None:
        if self.iterations:
            self.recorder.count("iterations", self.iterations)
            self.iterations = 0
        active = sum(1 for vu in self.vus if not vu.parked)
        chunk = self.recorder.flush(self._second, active, len(self.vus))
        self._second += 1
        self.emit(chunk)

    def _sweep(self) -> None:
        now = perf()
        timeout = self.plan.request_timeout_s
        for vu in self.vus:
            if vu.busy:
                vu.sweep(now, timeout)
        if not self.stopped:
            asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)

    async def _drive_closed(self) -> None:
        """Keep the number of active VUs at the executor's target."""
        executor = self.executor
        constant = executor.kind == "constant-vus"
        while self.running:
            elapsed = perf() - self._start
            target = segment_share(executor.target_at(elapsed), self.segment)
            active = [vu for vu in self.vus if not vu.parked and not vu.stopping]
            if len(active) < target:
                for _ in range(target - len(active)):
                    self._unpark().begin(None)
            elif len(active) > target:
                for vu in active[target:]:
                    vu.stopping = True
            if constant:
                await asyncio.Event().wait()  # nothing more to do until the end
            await asyncio.sleep(CONTROL_INTERVAL_S)

    def _stopped_while_waiting(self) -> bool:
        """``running`` as it is now (mypy cannot see other callbacks change it)."""
        return not self.running

    async def _drive_open(self) -> None:
        """Start iterations on the arrival schedule.

        An iteration due while every VU (up to ``max_vus``) is busy waits in a
        backlog for the next free VU, and its latency counts from when it was
        due, so a stall of up to a second shows in full in the percentiles.
        The backlog holds one second of arrivals at the peak rate (at least
        ``max_vus``); past that iterations are dropped and counted in
        ``dropped_iterations``.
        """
        executor = self.executor
        a, b = self.segment
        share = b - a
        max_vus = max(1, segment_share(executor.max_vus, self.segment)) if share > 0 else 0
        for _ in range(min(segment_share(executor.pre_allocated_vus, self.segment), max_vus)):
            vu = self.new_vu()
            vu.parked = True
            self.idle.append(vu)
        # the backlog holds up to one second of arrivals (at least max_vus)
        backlog_max = max(max_vus, math.ceil(executor.peak() * share))
        phase = a % 1.0
        schedule = arrival_times(executor.kind, executor.rate, executor.stages, share, phase)
        loop = asyncio.get_running_loop()
        start = self._start
        end = start + executor.total_duration_s
        for offset in schedule:
            due = start + offset
            if due >= end or not self.running:
                break
            # uvloop's timers have millisecond resolution and may fire a little
            # early: never start an iteration before it is due.
            while (wait := due - perf()) > 0:
                wake = loop.create_future()
                loop.call_later(wait + 0.0005, _set_result, wake)
                await wake
            if self._stopped_while_waiting():
                break
            if self.idle or len(self.vus) < max_vus:
                self._unpark().begin(due)
            elif len(self.backlog) < backlog_max:
                # Every VU is busy (a slow or stalled server): the iteration waits,
                # and its latency counts from ``due``, so the stall shows.
                self.backlog.append(due)
            else:
                self.recorder.count("dropped_iterations")
        while self.running:
            await asyncio.sleep(CONTROL_INTERVAL_S)


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _uses_tls(plan: LoadPlan) -> bool:
    urls = [r.url for r in plan.requests]
    if plan.base_url:
        urls.append(plan.base_url)
    return plan.flow is not None or any(u.startswith("https://") for u in urls)


def arrival_times(
    kind: str,
    rate: float,
    stages: tuple[Any, ...],
    share: float,
    phase: float,
) -> Iterator[float]:
    """Yield intended start offsets (seconds from the run start) of one segment.

    Iteration ``k`` of a segment is due when the integral of the segment's
    rate (the whole rate times ``share``) reaches ``k + phase``; ``phase`` in
    ``[0, 1)`` staggers segments so that together they interleave evenly
    instead of bunching at the same instants.
    """
    if share <= 0:
        return
    if kind == "constant-arrival-rate":
        seg_rate = rate * share
        if seg_rate <= 0:
            return
        k = 0
        while True:
            yield (k + phase) / seg_rate
            k += 1
    level = rate * share
    elapsed = 0.0
    cumulative = 0.0
    k = 0
    for stage in stages:
        target = stage.target * share
        duration = stage.duration_s
        if duration <= 0:
            level = target
            continue
        slope = (target - level) / duration
        area = (level + target) / 2 * duration
        while k + phase < cumulative + area - 1e-12:
            need = k + phase - cumulative
            if abs(slope) < 1e-12:
                t = need / level
            else:
                t = (-level + math.sqrt(max(0.0, level * level + 2 * slope * need))) / slope
            yield elapsed + min(max(t, 0.0), duration)
            k += 1
        cumulative += area
        elapsed += duration
        level = target
