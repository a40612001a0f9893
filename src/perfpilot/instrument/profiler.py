"""The stack sampler: where the threads serving requests spend their time, per route.

A daemon thread wakes every ``interval_s`` (with ±10 % jitter, so it does not
beat in step with periodic work), takes :func:`sys._current_frames` and, for
each thread serving a request, counts one sample under the request's route and
its innermost application frames (a :class:`~perfpilot.app_records.ProfileRow`
key). The request path pays nothing: the sampler finds the route from the
stack itself.

* **Route of a thread.** Walking the stack from its innermost frame outwards:
  the outermost frame that runs a known endpoint function gives the route
  (Starlette and FastAPI, from the apps' routes; see
  :func:`perfpilot.instrument.routes.endpoint_routes`): a synchronous endpoint
  runs in a worker thread of the thread pool, whose stack holds no middleware
  frame. Otherwise the frame of perfpilot's WSGI or ASGI middleware (or of the
  WSGI body iterator) gives it: the request's context is one of that frame's
  locals, read only from frames that are calling something (never from a frame
  still starting up). A thread with neither is not serving a request and is
  skipped (idle workers, the event loop between requests, background threads).
* **Wall clock.** A thread is sampled whatever it is doing: running, waiting
  for the GIL or a lock, or in a call that no hook times. That is what the
  route's application time (its time minus database and outbound time) is
  made of. C functions have no frame: time in ``sqlite3`` or a compiled
  library counts at the Python frame that called it.
* **Bounds.** At most ``max_keys`` keys per interval (then ``<other>`` per
  route, drops counted as ``profile_keys``); at collection, the
  ``top_per_route`` largest keys of each route are kept and the rest folded
  into ``<other>`` (counted as ``profile_frames``). Stacks deeper than
  ``max_depth`` frames are walked only that far.
* **Never into the app.** Each pass catches everything (logged once); the
  thread stops with the flusher and restarts after a fork with it.

Cost: one pass walks every thread's stack with a dictionary lookup per frame
(code objects are classified once). See ``bench/profiler_overhead.py``.
"""

from __future__ import annotations

import os
import random
import sys
import sysconfig
import threading
import time
from types import CodeType, FrameType
from typing import Any

from perfpilot.app_records import NO_APP_FRAME, ProfileRow
from perfpilot.instrument.callsite import is_library
from perfpilot.instrument.context import RequestContext, warn_once
from perfpilot.instrument.recorder import OTHER

#: Application frames kept per sample, innermost first.
STACK_FRAMES = 3
#: Seconds between refreshes of the endpoint map (apps may add routes late).
ENDPOINTS_REFRESH_S = 5.0
#: Frame names cached before the cache is cleared.
MAX_NAMES = 50_000

_LIBRARY, _APP, _MIDDLEWARE = 0, 1, 2

# sys.path entries of installed code, longest first, for short library names
_SITE_DIRS = sorted(
    {
        os.path.join(p, "")
        for p in (
            sysconfig.get_paths().get("stdlib"),
            sysconfig.get_paths().get("platstdlib"),
            sysconfig.get_paths().get("purelib"),
            sysconfig.get_paths().get("platlib"),
        )
        if p
    },
    key=len,
    reverse=True,
)


def _middleware_codes() -> set[CodeType]:
    """Code objects of perfpilot's frames that hold a request's context."""
    from perfpilot.instrument import asgi, wsgi

    functions = (
        asgi.PerfpilotASGIMiddleware.__dict__.get("__call__"),
        wsgi.PerfpilotWSGIMiddleware.__dict__.get("__call__"),
        getattr(wsgi, "_ClosingIterable", object).__dict__.get("__iter__"),
        getattr(wsgi, "_ContextIterable", object).__dict__.get("__iter__"),  # generator bodies
    )
    codes = (getattr(f, "__code__", None) for f in functions)
    return {code for code in codes if isinstance(code, CodeType)}


class Profiler:
    """Samples the stacks of threads serving requests and counts them per route.

    Args:
        interval_s: Seconds between samples (about: each wait is jittered by
            ±10 %).
        max_keys: Distinct (route, stack, via) keys per interval.
        top_per_route: Keys kept per route at each :meth:`collect`.
        max_depth: Frames walked per stack.
        endpoints: Returns the code objects of endpoint functions with their
            route templates (default: every Starlette/FastAPI app's routes).
    """

    def __init__(
        self,
        interval_s: float = 0.01,
        *,
        max_keys: int = 5000,
        top_per_route: int = 50,
        max_depth: int = 256,
        endpoints: Any = None,
    ) -> None:
        if endpoints is None:
            from perfpilot.instrument.routes import endpoint_routes

            endpoints = endpoint_routes
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.top_per_route = top_per_route
        self.max_depth = max_depth
        self.passes = 0
        self._endpoint_source = endpoints
        self._endpoints: dict[CodeType, str | None] = {}
        self._endpoints_at = -float("inf")
        self._kinds: dict[CodeType, int | str] = dict.fromkeys(_middleware_codes(), _MIDDLEWARE)
        self._names: dict[tuple[CodeType, int], str] = {}
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._drops: dict[str, int] = {}
        # per thread: (innermost frame, its f_lasti, key) of the last pass
        self._last: dict[int, tuple[FrameType, int, tuple[str, str, str] | None]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ---------------------------------------------------------------
    def start(self) -> None:
        """Start the sampling thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, name="perfpilot-profiler", daemon=True
            )
            self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the sampling thread; what it counted stays for :meth:`collect`."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self._last = {}  # frames of the last pass: let them go

    def after_fork(self) -> None:
        """In a forked child: forget the parent's samples and thread (start again after)."""
        self._lock = threading.Lock()
        self._counts = {}
        self._drops = {}
        self._last = {}
        self._stop = threading.Event()
        self._thread = None

    def _run(self) -> None:
        jitter = random.Random().random
        stop = self._stop
        while not stop.wait(self.interval_s * (0.9 + 0.2 * jitter())):
            try:
                self.sample()
            except Exception as exc:  # never let the thread die of one bad pass
                warn_once("profiler", "perfpilot: profile sample failed: %r", exc)

    # -- one pass -----------------------------------------------------------------
    def sample(self) -> int:
        """Sample every other thread once; returns the samples counted."""
        now = time.monotonic()
        if now - self._endpoints_at >= ENDPOINTS_REFRESH_S:
            self._endpoints_at = now
            try:
                endpoints = self._endpoint_source()
            except Exception as exc:
                warn_once("profiler-endpoints", "perfpilot: endpoints not read: %r", exc)
            else:
                if endpoints != self._endpoints:  # classify code objects again
                    self._endpoints = endpoints
                    self._kinds = dict.fromkeys(_middleware_codes(), _MIDDLEWARE)
        me = threading.get_ident()
        frames = sys._current_frames()
        found: list[tuple[str, str, str]] = []
        last = self._last
        current: dict[int, tuple[FrameType, int, tuple[str, str, str] | None]] = {}
        for ident, frame in frames.items():
            if ident == me:
                continue
            lasti = frame.f_lasti
            previous = last.get(ident)
            if previous is not None and previous[0] is frame and previous[1] == lasti:
                # no Python code ran in this thread since (blocked, or idle):
                # the same stack, so the same key, without the walk
                key = previous[2]
            else:
                key = self._key(frame)
            current[ident] = (frame, lasti, key)
            if key is not None:
                found.append(key)
        self._last = current
        del frames, last
        self.passes += 1
        if found:
            with self._lock:
                counts = self._counts
                for sampled in found:
                    key = sampled
                    n = counts.get(key)
                    if n is None:
                        if len(counts) >= self.max_keys:
                            self._drops["profile_keys"] = self._drops.get("profile_keys", 0) + 1
                            key = (key[0], OTHER, "")
                            n = counts.get(key, 0)
                        else:
                            n = 0
                    counts[key] = n + 1
        return len(found)

    def _key(self, leaf: FrameType) -> tuple[str, str, str] | None:
        """The (route, stack, via) of one thread's stack, or ``None`` outside requests."""
        # the hot loop of the sampler: one attribute read and one dict lookup
        # per frame; a kind is _LIBRARY, _APP, _MIDDLEWARE or an endpoint's template
        kinds = self._kinds
        app: list[FrameType] = []
        app_done = False
        route: str | None = None
        middleware: FrameType | None = None
        frame: FrameType | None = leaf
        for _ in range(self.max_depth):
            if frame is None:
                break
            kind = kinds.get(frame.f_code)
            if kind is None:
                kind = self._classify(frame.f_code)
            if kind == _LIBRARY:
                if app:  # the app's own frames end where a framework called them
                    app_done = True
            elif kind == _MIDDLEWARE:
                if app:
                    app_done = True
                if middleware is None and frame is not leaf:
                    middleware = frame
            else:
                if not app_done and len(app) < STACK_FRAMES:
                    app.append(frame)
                if kind.__class__ is str:
                    route = kind  # an endpoint: the outermost one wins
            frame = frame.f_back
        if route is None:
            if middleware is None:
                return None
            route = _route_in(middleware)
            if route is None:
                return None
        if not app:
            return route, NO_APP_FRAME, self._name(leaf, library=True)
        stack = " < ".join(self._name(f) for f in app)
        via = "" if app[0] is leaf else self._name(leaf, library=True)
        return route, stack, via

    def _classify(self, code: CodeType) -> int | str:
        kind: int | str = _LIBRARY
        if not is_library(code.co_filename):
            template = self._endpoints.get(code)
            kind = _APP if template is None else template
        if len(self._kinds) >= MAX_NAMES:
            self._kinds = dict.fromkeys(_middleware_codes(), _MIDDLEWARE)
        self._kinds[code] = kind
        return kind

    def _name(self, frame: FrameType, *, library: bool = False) -> str:
        code = frame.f_code
        key = (code, frame.f_lineno or 0)
        name = self._names.get(key)
        if name is None:
            filename = code.co_filename
            if library:
                for prefix in _SITE_DIRS:
                    if filename.startswith(prefix):
                        filename = filename[len(prefix) :]
                        break
            name = f"{filename}:{key[1]} {getattr(code, 'co_qualname', code.co_name)}"
            if len(self._names) >= MAX_NAMES:
                self._names = {}
            self._names[key] = name
        return name

    # -- the flusher's side ---------------------------------------------------------
    def collect(self) -> tuple[tuple[ProfileRow, ...], dict[str, int]]:
        """Swap out the counts: the rows (the largest keys of each route) and drops."""
        with self._lock:
            counts, self._counts = self._counts, {}
            drops, self._drops = self._drops, {}
        by_route: dict[str, list[tuple[int, str, str]]] = {}
        for (route, stack, via), n in counts.items():
            by_route.setdefault(route, []).append((n, stack, via))
        rows: list[ProfileRow] = []
        for route in sorted(by_route):
            items = by_route[route]
            other = sum(n for n, stack, _via in items if stack == OTHER)
            items = sorted((i for i in items if i[1] != OTHER), key=lambda i: (-i[0], i[1], i[2]))
            kept, rest = items[: self.top_per_route], items[self.top_per_route :]
            rows.extend(ProfileRow(route, stack, via, n) for n, stack, via in kept)
            if rest:
                drops["profile_frames"] = drops.get("profile_frames", 0) + len(rest)
                other += sum(n for n, _stack, _via in rest)
            if other:
                rows.append(ProfileRow(route, OTHER, "", other))
        return tuple(rows), drops


def _route_in(frame: FrameType) -> str | None:
    """The route of the request whose context a perfpilot middleware frame holds."""
    local = frame.f_locals
    owner = local.get("self")
    ctx = local.get("ctx")
    if not isinstance(ctx, RequestContext):
        ctx = getattr(owner, "_ctx", None)
        if not isinstance(ctx, RequestContext):
            return None
    if ctx.route:
        return ctx.route
    # not routed yet, or routed only at the end (Starlette): resolve from the request
    middleware = getattr(owner, "_middleware", owner)
    resolve = getattr(middleware, "resolve_route", None)
    request = local.get("scope") or local.get("environ") or getattr(owner, "_environ", None)
    if resolve is None or request is None:
        return None
    route = resolve(request)
    return route if isinstance(route, str) and route else None
