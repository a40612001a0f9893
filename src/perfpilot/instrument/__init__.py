"""In-app monitoring: one line to instrument a Flask, FastAPI, Starlette or Django app.

Example::

    import perfpilot
    app = perfpilot.instrument(app)            # Flask, FastAPI, Starlette, Django, any WSGI/ASGI

    @app.get("/listings")
    def create_listing():
        ...
        perfpilot.unit("listing")              # cost per listing generated
        perfpilot.cache_event("thumbnails", hit=True)  # duration_s=... to time it

Requests are timed per route template; SQL (sqlite3, psycopg 3, SQLAlchemy),
outbound HTTP (httpx, requests, aiohttp) with its cost and call site, and
redis-py cache hits, misses and time are recorded per request. A background
thread writes aggregates to the store every few seconds. Nothing here raises
into the app or blocks a request: problems are logged once (logger
``perfpilot``) and the app keeps serving.

``perfpilot.instrument`` is this package *and* a function: the package module
is callable, so ``perfpilot.instrument(app)`` works however it was imported.
"""

from __future__ import annotations

import inspect
import math
import sys
import types
from collections.abc import Mapping
from typing import Any

from perfpilot.instrument.context import active, warn_once
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.templates import path_template

__all__ = ["cache_event", "current_recorder", "instrument", "metrics_app", "unit"]


def instrument(
    app: Any,
    *,
    store: str | None = None,
    service: str | None = None,
    server_timing: bool | None = None,
    flush_interval_s: float | None = None,
    prices: str | None = None,
    profile_interval_ms: float | None = None,
    recorder: Recorder | None = None,
    hooks: bool = True,
    flush: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """Instrument a web app; returns the app to serve (possibly wrapped).

    Args:
        app: A Flask app, a FastAPI/Starlette app, a Django WSGI/ASGI handler,
            or any WSGI or ASGI callable.
        store: Store location (default from settings: ``.perfpilot/perfpilot.db``).
        service: Service name for the data (default from settings).
        server_timing: Add ``Server-Timing`` and ``X-Response-Time`` headers.
        flush_interval_s: Seconds between writes to the store.
        prices: Path of a TOML price table for outbound API calls.
        profile_interval_ms: Milliseconds between stack samples of the threads
            serving requests (default from settings: 10); 0 turns it off.
        recorder: Use this recorder (tests); one is made otherwise.
        hooks: Install the SQL, outbound HTTP and cache hooks.
        flush: Start the background flusher (tests may drive it by hand).
        environ: Environment for settings (defaults to ``os.environ``).

    Returns:
        What to serve: the same Flask app (its ``wsgi_app`` wrapped), or a
        wrapping WSGI/ASGI callable. An object perfpilot does not recognize is
        returned unchanged, with one warning.
    """
    try:
        return _instrument(
            app, store, service, server_timing, flush_interval_s, prices, profile_interval_ms,
            recorder, hooks, flush, environ,
        )  # fmt: skip
    except Exception as exc:  # never break the app's start-up
        warn_once("instrument", "perfpilot: not instrumented (%r); the app runs as is", exc)
        return app


def _instrument(
    app: Any,
    store: str | None,
    service: str | None,
    server_timing: bool | None,
    flush_interval_s: float | None,
    prices: str | None,
    profile_interval_ms: float | None,
    recorder: Recorder | None,
    hooks: bool,
    flush: bool,
    environ: Mapping[str, str] | None,
) -> Any:
    from perfpilot.config import Settings, load_settings
    from perfpilot.errors import ConfigError
    from perfpilot.instrument.asgi import PerfpilotASGIMiddleware

    overrides: dict[str, Any] = {
        "store": store,
        "service": service,
        "server_timing": server_timing,
        "flush_interval_s": flush_interval_s,
        "prices": prices,
        "profile_interval_ms": profile_interval_ms,
    }
    try:
        settings = load_settings(overrides, environ=environ)
    except ConfigError as exc:
        warn_once("settings", "perfpilot: bad settings (%s); using defaults", exc)
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    rec = recorder or Recorder(
        settings.service,
        slow_s=settings.slow_request_ms / 1000,
        sample_rate=settings.trace_sample_rate,
    )
    wrapped = wrap_app(app, rec, server_timing=settings.server_timing)
    if wrapped is None:
        warn_once(
            f"unknown-{type(app).__name__}",
            "perfpilot: cannot instrument %r: not a Flask, Starlette/FastAPI or Django app, "
            "nor a WSGI/ASGI callable; it runs uninstrumented",
            type(app).__name__,
        )
        return app
    active.recorder = rec
    if hooks:
        install_hooks(settings.prices)
    if flush:
        flusher = start_flusher(
            rec,
            settings.store,
            settings.flush_interval_s,
            profile_interval_ms=settings.profile_interval_ms,
        )
        if isinstance(wrapped, PerfpilotASGIMiddleware):
            # ASGI servers may exit without atexit: flush at lifespan shutdown
            wrapped.on_shutdown = flusher.stop
    return wrapped


def wrap_app(app: Any, recorder: Recorder, *, server_timing: bool = False) -> Any | None:
    """Wrap ``app`` in the right middleware; ``None`` when it is not an app."""
    from perfpilot.instrument.asgi import PerfpilotASGIMiddleware
    from perfpilot.instrument.routes import StarletteRoutes, install_django, install_flask
    from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware

    module = type(app).__module__
    if module.startswith("flask") or (hasattr(app, "url_map") and hasattr(app, "wsgi_app")):
        install_flask(app)
        app.wsgi_app = PerfpilotWSGIMiddleware(app.wsgi_app, recorder, server_timing=server_timing)
        return app
    if module.startswith("django."):
        install_django()
        if _is_asgi(app):
            return PerfpilotASGIMiddleware(
                app, recorder, lambda scope: None, server_timing=server_timing
            )
        return PerfpilotWSGIMiddleware(app, recorder, server_timing=server_timing)
    if hasattr(app, "routes") and _is_asgi(app):
        return PerfpilotASGIMiddleware(
            app, recorder, StarletteRoutes(app), server_timing=server_timing
        )
    if _is_asgi(app):
        return PerfpilotASGIMiddleware(
            app, recorder, _template_from_scope, server_timing=server_timing
        )
    if callable(app):
        return PerfpilotWSGIMiddleware(
            app, recorder, _template_from_environ, server_timing=server_timing
        )
    return None


def _is_asgi(app: Any) -> bool:
    if inspect.isfunction(app) or inspect.ismethod(app):
        return inspect.iscoroutinefunction(app)
    return inspect.iscoroutinefunction(type(app).__call__) if callable(app) else False


def _template_from_scope(scope: Any) -> str:
    return path_template(scope.get("path", "/"))


def _template_from_environ(environ: Any) -> str:
    return path_template(environ.get("PATH_INFO", "/"))


def install_hooks(prices: str | None = None) -> list[str]:
    """Hook every supported library that is installed; returns what was hooked."""
    installed: list[str] = []
    for module_name, args in (
        ("perfpilot.instrument.sql", ()),
        ("perfpilot.instrument.outbound", (prices,)),
        ("perfpilot.instrument.cache", ()),
    ):
        try:
            module = __import__(module_name, fromlist=["install"])
            installed.extend(module.install(*args))
        except Exception as exc:
            warn_once(f"hooks-{module_name}", "perfpilot: %s not hooked: %r", module_name, exc)
    return installed


def start_flusher(
    recorder: Recorder, store: str, interval_s: float, *, profile_interval_ms: float = 0.0
) -> Any:
    """Start the background thread that writes the recorder's data to ``store``,
    and the stack sampler every ``profile_interval_ms`` (none when 0)."""
    from perfpilot.instrument.flusher import Flusher
    from perfpilot.instrument.sink import StoreSink

    sampler = None
    try:
        from perfpilot.instrument.resources import ResourceSampler

        sampler = ResourceSampler()
    except Exception as exc:
        warn_once("resources", "perfpilot: no resource sampling: %r", exc)
    from perfpilot.instrument.fingerprint import fingerprint
    from perfpilot.instrument.totals import process_totals

    profiler = None
    if profile_interval_ms > 0:
        try:
            from perfpilot.instrument.profiler import Profiler

            profiler = Profiler(profile_interval_ms / 1000)
        except Exception as exc:
            warn_once("profiler", "perfpilot: no stack sampling: %r", exc)
    flusher = Flusher(
        recorder,
        StoreSink(store),
        fingerprint,
        interval_s=interval_s,
        sampler=sampler,
        observers=[process_totals().add],
        profiler=profiler,
    )
    flusher.start()
    return flusher


def current_recorder() -> Recorder | None:
    """The recorder the hooks report to, if the app was instrumented."""
    return active.recorder


def unit(name: str, count: int = 1) -> None:
    """Mark that the current request produced ``count`` business units ``name``.

    Reports can then say "cost per listing generated". Does nothing when the
    app is not instrumented; never raises.
    """
    recorder = active.recorder
    if recorder is not None:
        try:
            recorder.unit(str(name), int(count))
        except Exception as exc:
            warn_once("unit", "perfpilot: unit not recorded: %r", exc)


def cache_event(
    name: str,
    *,
    hit: bool,
    command: str = "get",
    key_prefix: str = "",
    duration_s: float | None = None,
) -> None:
    """Record one lookup of an in-process cache: ``cache_event("thumbs", hit=True)``.

    Hits and misses give the cache's hit rate. With ``duration_s`` the lookup
    is also timed: inside a request its seconds count as the request's cache
    time (the report's "cache" share of each route, taken out of app time);
    without it, the lookup's time stays in app time. Does nothing when the app
    is not instrumented; never raises (a ``duration_s`` that is not a finite,
    non-negative number is ignored).

    Args:
        name: The cache's name (one hit rate per name).
        hit: Whether the lookup found the value.
        command: The operation, for the per-command counts.
        key_prefix: What the key is counted under (never the key itself).
        duration_s: Seconds the lookup took, when the app timed it.

    Example::

        started = time.perf_counter()
        thumb = thumbs.get(key)
        perfpilot.cache_event(
            "thumbs", hit=thumb is not None, duration_s=time.perf_counter() - started
        )
    """
    recorder = active.recorder
    if recorder is not None:
        try:
            recorder.cache(str(name), command, key_prefix, bool(hit), _seconds(duration_s))
        except Exception as exc:
            warn_once("cache_event", "perfpilot: cache event not recorded: %r", exc)


def _seconds(value: Any) -> float:
    """A duration as given, or 0 when it is not a finite, non-negative number."""
    if value is None:
        return 0.0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if 0.0 <= seconds < math.inf else 0.0


def metrics_app(recorder: Recorder | None = None, *, kind: str = "asgi") -> Any:
    """A small ASGI (or ``kind="wsgi"``) app serving metrics in Prometheus text format."""
    from perfpilot.instrument.prometheus import make_metrics_app

    return make_metrics_app(recorder, kind=kind)


class _CallableModule(types.ModuleType):
    """Lets ``perfpilot.instrument(app)`` call :func:`instrument` on this package."""

    def __call__(self, app: Any, **kwargs: Any) -> Any:
        return instrument(app, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
