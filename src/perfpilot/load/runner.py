"""Run a load plan: in this process or in one event loop per process.

The runner checks that the target answers before anything starts, splits the
plan's segment among worker processes, gathers their per-second chunks into
one :class:`LoadResult` (exactly, through the histograms), shows a live line
while the test runs, stops early on an ``abort_on_fail`` threshold or Ctrl-C,
and evaluates the thresholds at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

from perfpilot.errors import ConnectError, InternalError, PerfpilotError
from perfpilot.load.client import Origin, perf, probe, split_url
from perfpilot.load.engine import Engine, FlowFunction
from perfpilot.load.live import LiveView
from perfpilot.load.metrics import Chunk
from perfpilot.load.plan import LoadPlan, redact_url
from perfpilot.records import LoadResult

START_DELAY_S = 0.2
READY_TIMEOUT_S = 60.0


def default_processes() -> int:
    """One process per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def split_segment(segment: tuple[float, float], parts: int) -> list[tuple[float, float]]:
    """Cut ``segment`` into ``parts`` equal, adjacent sub-segments."""
    a, b = segment
    width = (b - a) / parts
    edges = [a + width * i for i in range(parts)] + [b]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def plan_origins(plan: LoadPlan) -> list[Origin]:
    """Every origin the plan sends to that is known before the run."""
    origins: dict[Origin, None] = {}
    for request in plan.requests:
        origin, _ = split_url(_untemplated(request.url))
        origins[origin] = None
    if plan.base_url:
        origins[split_url(plan.base_url)[0]] = None
    return list(origins)


def _untemplated(url: str) -> str:
    return url.replace("${", "_").replace("}", "_")


def preflight(plan: LoadPlan) -> None:
    """Fail fast, with exit code 2, when a target cannot be reached at all.

    Raises:
        ConnectError: a TCP connect to one of the plan's origins fails.
    """
    for origin in plan_origins(plan):
        kind = probe(origin, plan.connect_timeout_s)
        if kind is not None:
            words = {
                "refused": "connection refused",
                "dns": "host not found",
                "timeout": "connect timed out",
                "unreachable": "network unreachable",
            }
            raise ConnectError(f"cannot connect to {origin}: {words.get(kind, kind)}")


class Aggregator:
    """Merges chunks into the result, drives the live view, decides aborts."""

    def __init__(
        self, plan: LoadPlan, result: LoadResult, workers: int, live: LiveView | None
    ) -> None:
        self.plan = plan
        self.result = result
        self.workers = workers
        self.live = live
        self.seen: dict[int, int] = {}
        self.vus_max: dict[int, int] = {}
        self.complete = -1
        self.abort_reason: str | None = None
        self._abort_specs = [t for t in plan.thresholds if t.abort_on_fail]

    def add(self, worker: int, chunk: Chunk) -> None:
        """Merge one worker's second."""
        chunk.merge_into(self.result)
        self.vus_max[worker] = chunk.vus_max
        self.result.counters["vus_max"] = sum(self.vus_max.values())
        self.seen[chunk.second] = self.seen.get(chunk.second, 0) + 1
        if self.seen[chunk.second] >= self.workers and chunk.second > self.complete:
            self.complete = chunk.second
            self._second_complete(chunk.second)

    def _second_complete(self, second: int) -> None:
        if self.live is not None:
            self.live.update(self.result, second)
        if self._abort_specs and self.abort_reason is None:
            from perfpilot.load.thresholds import evaluate

            for spec in self._abort_specs:
                if second + 1 < spec.delay_abort_eval_s:
                    continue
                verdict = evaluate(spec, self.result, end_second=second + 1)
                if not verdict.passed:
                    self.abort_reason = f"threshold {spec.source!r} failed (abort_on_fail)"
                    break


def run_load(
    plan: LoadPlan,
    *,
    processes: int | None = None,
    segment: tuple[float, float] = (0.0, 1.0),
    live: LiveView | None = None,
    flow: FlowFunction | None = None,
    check_target: bool = True,
) -> LoadResult:
    """Run ``plan`` and return its result, thresholds evaluated.

    Args:
        plan: What to run.
        processes: Worker processes (one event loop each); ``None`` means one
            per core; 1 runs in this process.
        segment: The share ``[a, b)`` of the whole test this invocation runs
            (``--segment i/N``).
        live: Where to show progress, or ``None``.
        flow: The already-imported flow function (in-process runs).
        check_target: Refuse to start when a target does not accept connections.

    Returns:
        The :class:`LoadResult` (``aborted`` says why it stopped early).

    Raises:
        ConnectError: the target is unreachable before the run starts.
        ConfigError: the flow file does not import.
    """
    if check_target:
        preflight(plan)
    if plan.flow is not None and flow is None:
        from perfpilot.load.scenario import load_flow

        flow = load_flow(plan.flow)
    count = processes if processes is not None else default_processes()
    config = plan.describe()
    config["processes"] = count
    config["segment"] = list(segment)
    result = LoadResult(name=redact_url(plan.name), started_at=0.0, ended_at=0.0, config=config)
    aggregator = Aggregator(plan, result, count, live)
    if count <= 1:
        _run_here(plan, segment, aggregator, flow)
    else:
        _run_workers(plan, split_segment(segment, count), aggregator)
    result.ended_at = time.time()
    if result.aborted is None:
        result.aborted = aggregator.abort_reason
    from perfpilot.load.thresholds import evaluate_all

    verdicts = evaluate_all(plan.thresholds, result)
    if aggregator.abort_reason is not None:
        verdicts = [
            dataclasses.replace(verdict, aborted=True)
            if spec.abort_on_fail and not verdict.passed
            else verdict
            for spec, verdict in zip(plan.thresholds, verdicts, strict=True)
        ]
    result.thresholds = verdicts
    return result


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _run_here(
    plan: LoadPlan,
    segment: tuple[float, float],
    aggregator: Aggregator,
    flow: FlowFunction | None,
) -> None:
    """Run the whole segment on an event loop in this process."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_chunk(chunk: Chunk) -> None:
            aggregator.add(0, chunk)
            if aggregator.abort_reason is not None:
                stop.set()

        def on_interrupt() -> None:
            aggregator.result.aborted = "interrupted"
            stop.set()

        engine = Engine(plan, segment, on_chunk, flow=flow)
        with _signal_handler(loop, on_interrupt):
            start_wall = time.time() + START_DELAY_S
            aggregator.result.started_at = start_wall
            await engine.run(perf() + START_DELAY_S, stop)

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(main())


@contextlib.contextmanager
def _signal_handler(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> Iterator[None]:
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
        loop.add_signal_handler(signal.SIGTERM, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)


def _run_workers(
    plan: LoadPlan, segments: list[tuple[float, float]], aggregator: Aggregator
) -> None:
    """Run one worker process per segment and gather their chunks."""
    context = multiprocessing.get_context("spawn")
    pipes: list[multiprocessing.connection.Connection] = []
    procs: list[Any] = []
    try:
        for index, seg in enumerate(segments):
            parent, child = context.Pipe()
            proc = context.Process(
                target=worker_main,
                args=(plan, seg, child, index),
                name=f"perfpilot-load-{index}",
                daemon=True,
            )
            proc.start()
            child.close()
            pipes.append(parent)
            procs.append(proc)
        _await_ready(pipes, procs)
        start_wall = time.time() + START_DELAY_S
        aggregator.result.started_at = start_wall
        for pipe in pipes:
            pipe.send(("start", start_wall))
        _gather(pipes, aggregator)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in pipes:
            pipe.close()


def _await_ready(pipes: list[multiprocessing.connection.Connection], procs: list[Any]) -> None:
    pending = set(range(len(pipes)))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise InternalError("load workers did not start in time")
        ready = multiprocessing.connection.wait([pipes[i] for i in pending], timeout=left)
        for index in [i for i in pending if pipes[i] in ready]:
            try:
                message = pipes[index].recv()
            except EOFError:
                raise InternalError(f"load worker {index} exited while starting") from None
            if message[0] == "error":
                _raise_worker_error(message)
            pending.discard(index)


def _raise_worker_error(message: tuple[Any, ...]) -> None:
    _, exit_code, text = message
    error = PerfpilotError(text)
    error.exit_code = exit_code
    raise error


def _gather(pipes: list[multiprocessing.connection.Connection], aggregator: Aggregator) -> None:
    running = set(range(len(pipes)))
    stopping = False

    def stop_all(reason: str) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        if aggregator.result.aborted is None:
            aggregator.result.aborted = reason
        for i in running:
            with contextlib.suppress(OSError):
                pipes[i].send(("stop",))

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: stop_all("interrupted"))
    try:
        while running:
            ready = multiprocessing.connection.wait([pipes[i] for i in running], timeout=1.0)
            for index in [i for i in running if pipes[i] in ready]:
                try:
                    message = pipes[index].recv()
                except EOFError:
                    running.discard(index)
                    continue
                kind = message[0]
                if kind == "chunk":
                    aggregator.add(index, message[1])
                    if aggregator.abort_reason is not None:
                        stop_all(aggregator.abort_reason)
                elif kind == "done":
                    running.discard(index)
                elif kind == "error":
                    running.discard(index)
                    stop_all("worker failed")
                    _raise_worker_error(message)
    finally:
        signal.signal(signal.SIGINT, previous)


def worker_main(
    plan: LoadPlan,
    segment: tuple[float, float],
    pipe: multiprocessing.connection.Connection,
    index: int,
) -> None:
    """Entry point of a worker process: run one segment, stream chunks to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        flow = None
        if plan.flow is not None:
            from perfpilot.load.scenario import load_flow

            flow = load_flow(plan.flow)
        pipe.send(("ready",))
        message = pipe.recv()
        if message[0] != "start":
            return
        start_wall = float(message[1])

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()

            def on_pipe() -> None:
                try:
                    if pipe.poll():
                        pipe.recv()
                except (EOFError, OSError):
                    pass
                loop.remove_reader(pipe.fileno())
                stop.set()

            loop.add_reader(pipe.fileno(), on_pipe)
            engine = Engine(plan, segment, lambda chunk: pipe.send(("chunk", chunk)), flow=flow)
            start_perf = perf() + (start_wall - time.time())
            try:
                await engine.run(start_perf, stop)
            finally:
                with contextlib.suppress(Exception):
                    loop.remove_reader(pipe.fileno())

        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(main())
        pipe.send(("done",))
    except PerfpilotError as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", exc.exit_code, str(exc)))
    except Exception as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", 3, f"load worker {index} failed: {type(exc).__name__}: {exc}"))
    finally:
        pipe.close()
