"""Find the app and serve it through perfpilot's middleware, without the app's help.

Each framework's app class is patched once, when the framework is imported:

* **Flask**: ``Flask.__init__`` reports the app, ``Flask.wsgi_app`` serves
  through :class:`~perfpilot.instrument.wsgi.PerfpilotWSGIMiddleware` with the
  route template read by Flask's own ``before_request`` hook.
* **Starlette and FastAPI**: ``Starlette.__init__`` and ``FastAPI.__init__``
  (which does not call Starlette's) report the app; ``Starlette.__call__``
  (FastAPI's calls it) serves HTTP and lifespan through
  :class:`~perfpilot.instrument.asgi.PerfpilotASGIMiddleware`, so the last
  interval is written at lifespan shutdown; templates come from the routes.
* **Django**: ``WSGIHandler`` and ``ASGIHandler``, the same way; the template
  is the matched URL pattern. perfpilot answers the lifespan messages that
  Django's ASGI handler refuses.
* **uvicorn**: after ``Server.shutdown`` the last interval is written (for
  ``--lifespan off``, where no lifespan message comes).

Each app gets one middleware, made when it serves its first request (in the
worker process, after any fork). A request already timed (an app mounted in
another, or an app the user instrumented with ``perfpilot.instrument``) goes
straight to the app. Nothing here raises into the app: a middleware that
cannot be made is logged once and the app serves untimed.
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable
from typing import Any

from perfpilot.autorun import runtime
from perfpilot.autorun.importhook import warn_once

MARK = "__perfpilot_autorun__"
_KEY = "_perfpilot_autorun_middleware"
_lock = threading.Lock()


def _patched(cls: type, name: str) -> bool:
    return getattr(cls.__dict__.get(name), MARK, False) is True


def _mark(wrapper: Any, original: Any) -> Any:
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, MARK, True)
    return wrapper


def _report_init(cls: type, kind: str) -> None:
    """Patch ``cls.__init__`` to report every app it creates."""
    if _patched(cls, "__init__"):
        return
    original: Any = cls.__init__  # type: ignore[misc]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        runtime.app_found(kind)

    cls.__init__ = _mark(__init__, original)  # type: ignore[misc]


Build = Callable[[Any, Any], Any]
"""``build(app, recorder)`` makes the app's middleware."""


def _middleware(app: Any, build: Build) -> Any | None:
    """The app's middleware, made on first use; ``None``: serve the app as is."""
    middleware = app.__dict__.get(_KEY)
    if middleware is None:
        try:
            with _lock:
                middleware = app.__dict__.get(_KEY)
                if middleware is None:
                    recorder = runtime.serving()
                    if recorder is None:
                        return None
                    middleware = build(app, recorder)
                    app.__dict__[_KEY] = middleware
        except Exception as exc:
            warn_once("autorun-middleware", "perfpilot: app not instrumented: %r", exc)
            return None
    # an explicit perfpilot.instrument() made later takes over
    return middleware if middleware.recorder is _context().active.recorder else None


@functools.cache
def _context() -> Any:
    # imported with the first framework, not at start-up (it brings numpy)
    from perfpilot.instrument import context

    return context


def _server_timing() -> bool:
    return bool(runtime.settings().server_timing)


# -- Flask ---------------------------------------------------------------------


def patch_flask(module: types.ModuleType) -> None:
    """Patch ``flask.Flask`` (called when ``flask`` is imported)."""
    cls = module.Flask
    _report_init(cls, "Flask")

    def routes(app: Any) -> None:
        from perfpilot.instrument.routes import install_flask

        install_flask(app)

    _patch_wsgi_method(cls, "wsgi_app", routes)


def _patch_wsgi_method(cls: type, name: str, install_routes: Callable[[Any], None]) -> None:
    """Make ``cls.<name>(self, environ, start_response)`` run through perfpilot's
    WSGI middleware (built once per app, with ``install_routes(app)`` first)."""
    if _patched(cls, name):
        return
    current_request = _context().current_request
    original = getattr(cls, name)

    def build(app: Any, recorder: Any) -> Any:
        from perfpilot.instrument.wsgi import PerfpilotWSGIMiddleware

        install_routes(app)
        return PerfpilotWSGIMiddleware(
            functools.partial(original, app), recorder, server_timing=_server_timing()
        )

    def wsgi(self: Any, environ: Any, start_response: Any) -> Any:
        if current_request.get() is None:
            middleware = _middleware(self, build)
            if middleware is not None:
                return middleware(environ, start_response)
        return original(self, environ, start_response)

    setattr(cls, name, _mark(wsgi, original))


# -- Starlette and FastAPI ---------------------------------------------------------


def patch_starlette(module: types.ModuleType) -> None:
    """Patch ``starlette.applications.Starlette`` (FastAPI's base class)."""
    cls = module.Starlette
    _report_init(cls, "Starlette")

    def routes(app: Any) -> Any:
        from perfpilot.instrument.routes import StarletteRoutes

        return StarletteRoutes(app)

    _patch_asgi_call(cls, routes)


def patch_fastapi(module: types.ModuleType) -> None:
    """Patch ``fastapi.FastAPI.__init__`` (serving goes through Starlette's ``__call__``)."""
    _report_init(module.FastAPI, "FastAPI")


def _patch_asgi_call(cls: type, resolver: Callable[[Any], Any]) -> None:
    if _patched(cls, "__call__"):
        return
    current_request = _context().current_request
    original = cls.__call__

    def build(app: Any, recorder: Any) -> Any:
        from perfpilot.instrument.asgi import PerfpilotASGIMiddleware

        return PerfpilotASGIMiddleware(
            functools.partial(original, app),
            recorder,
            resolver(app),
            server_timing=_server_timing(),
            on_shutdown=runtime.stop,
        )

    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if (kind == "http" and current_request.get() is None) or kind == "lifespan":
            middleware = _middleware(self, build)
            if middleware is not None:
                await middleware(scope, receive, send)
                return
        await original(self, scope, receive, send)

    cls.__call__ = _mark(__call__, original)  # type: ignore[method-assign]


# -- Django --------------------------------------------------------------------


def patch_django_wsgi(module: types.ModuleType) -> None:
    """Patch ``django.core.handlers.wsgi.WSGIHandler``."""
    cls = module.WSGIHandler
    _report_init(cls, "Django")

    def routes(app: Any) -> None:
        from perfpilot.instrument.routes import install_django

        install_django()

    _patch_wsgi_method(cls, "__call__", routes)


def patch_django_asgi(module: types.ModuleType) -> None:
    """Patch ``django.core.handlers.asgi.ASGIHandler``."""
    cls = module.ASGIHandler
    _report_init(cls, "Django")

    def routes(app: Any) -> Any:
        from perfpilot.instrument.routes import install_django

        install_django()
        return _no_route

    _patch_asgi_call(cls, routes)


def _no_route(scope: Any) -> str | None:
    return None  # the resolve_request hook sets the template; unmatched otherwise


# -- uvicorn -------------------------------------------------------------------


def patch_uvicorn(module: types.ModuleType) -> None:
    """Write the last interval after ``uvicorn.Server.shutdown`` (lifespan or not)."""
    cls = module.Server
    if _patched(cls, "shutdown"):
        return
    original = cls.shutdown

    async def shutdown(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            await original(self, *args, **kwargs)
        finally:
            if runtime.state.apps:
                runtime.stop()

    cls.shutdown = _mark(shutdown, original)
