"""Route templates (``/orders/{id}``) from each framework, never raw paths.

Raw paths would give one key per id; templates give one per endpoint.
"""

from __future__ import annotations

import inspect
import re
import threading
import weakref
from collections.abc import Callable
from types import CodeType
from typing import Any

from perfpilot.instrument.context import current_request, warn_once
from perfpilot.instrument.recorder import UNMATCHED

_DJANGO_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_FLASK_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_STARLETTE_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

# The Starlette route resolvers alive in this process, for the stack sampler
# (perfpilot.instrument.profiler): a sync endpoint runs in a worker thread
# whose stack holds no middleware frame, so its route is found from the code
# object of the endpoint function instead. Filled once per app, never per request.
_resolvers: weakref.WeakSet[StarletteRoutes] = weakref.WeakSet()


class StarletteRoutes:
    """Route templates of a Starlette (or FastAPI) app, looked up after routing.

    FastAPI puts the matched route in ``scope["route"]``; plain Starlette puts
    only the endpoint in ``scope["endpoint"]``, so a map from endpoint to
    ``path_format`` is built from the app's routes (Mounts included) on first
    use and rebuilt when an unknown endpoint shows up.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        # keyed by id(): endpoints need not be hashable (a mounted Router is
        # not); the routes keep them alive, and so does _known
        self._by_endpoint: dict[int, str] = {}
        self._known: list[Any] = []
        self._lock = threading.Lock()
        self._rebuilt_for: set[int] = set()
        _resolvers.add(self)

    def __call__(self, scope: Any) -> str | None:
        """The template of the route that served ``scope``, or ``<unmatched>``."""
        route = scope.get("route")
        # inside a Mount (which sets app_root_path), the route's own path lacks
        # the mount prefix: the endpoint map has the full template
        if route is not None and "app_root_path" not in scope:
            path = getattr(route, "path_format", None) or getattr(route, "path", None)
            if isinstance(path, str):
                return path
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        template = self._by_endpoint.get(id(endpoint))
        if template is None:
            template = self._rebuild(endpoint)
        return template

    def _rebuild(self, endpoint: Any) -> str:
        with self._lock:
            if id(endpoint) not in self._rebuilt_for:
                self._rebuilt_for.add(id(endpoint))
                self._known.append(endpoint)
                mapping: dict[int, tuple[Any, str]] = {}
                _walk_starlette(
                    getattr(self.app, "routes", []),
                    "",
                    lambda obj, path: mapping.setdefault(id(obj), (obj, path)),
                )
                for key, (obj, path) in mapping.items():
                    if key not in self._by_endpoint:
                        self._known.append(obj)
                        self._by_endpoint[key] = path
            template = self._by_endpoint.get(id(endpoint))
            if template is None:
                # an endpoint we cannot place: name it rather than leak raw paths
                name = getattr(endpoint, "__qualname__", None) or type(endpoint).__name__
                template = self._by_endpoint[id(endpoint)] = f"<{name}>"
            return template

    def endpoint_codes(self) -> dict[CodeType, str | None]:
        """The code object of each endpoint function (and of each method of an
        endpoint class) with its route template; ``None`` for a code object
        that serves several templates (one function under two paths, or a
        decorator's wrapper that does not keep ``__wrapped__``)."""
        found: list[tuple[Any, str]] = []
        _walk_starlette(
            getattr(self.app, "routes", []), "", lambda obj, path: found.append((obj, path))
        )
        codes: dict[CodeType, str | None] = {}
        for endpoint, template in found:
            if template == UNMATCHED:
                continue
            for code in _codes_of(endpoint):
                if codes.get(code, template) != template:
                    codes[code] = None
                else:
                    codes[code] = template
        return codes


def _codes_of(endpoint: Any) -> list[CodeType]:
    """The code objects that run a Starlette endpoint: the function (unwrapped),
    or the HTTP-method functions of an ``HTTPEndpoint`` class."""
    if inspect.isclass(endpoint):
        functions = [
            getattr(endpoint, name, None)
            for name in ("get", "head", "post", "put", "patch", "delete", "options")
        ]
    else:
        functions = [endpoint]
    codes = []
    for wrapped in functions:
        if wrapped is None:
            continue
        try:
            function = inspect.unwrap(wrapped)
        except ValueError:  # a __wrapped__ cycle
            function = wrapped
        code = getattr(function, "__code__", None)
        if isinstance(code, CodeType):
            codes.append(code)
    return codes


def endpoint_routes() -> dict[CodeType, str | None]:
    """The code objects of the endpoints of every Starlette/FastAPI app that
    perfpilot resolves routes for in this process, with their route templates
    (``None``: ambiguous); see :meth:`StarletteRoutes.endpoint_codes`."""
    codes: dict[CodeType, str | None] = {}
    for _ in range(3):  # the set may change while it is iterated (a new app)
        try:
            resolvers = list(_resolvers)
            break
        except RuntimeError:
            continue
    else:
        return codes
    for resolver in resolvers:
        for code, template in resolver.endpoint_codes().items():
            codes[code] = template if codes.get(code, template) == template else None
    return codes


def _walk_starlette(routes: Any, prefix: str, add: Callable[[Any, str], Any]) -> None:
    """Call ``add(endpoint or app, template)`` for every route, depth first."""
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None:
            path = getattr(route, "path_format", None) or getattr(route, "path", None) or ""
            add(endpoint, prefix + str(path))
            continue
        # a Mount (path_format ends in "/{path}"; its own path is the prefix)
        mount = _STARLETTE_PARAM.sub(r"{\1}", str(getattr(route, "path", "") or ""))
        children = getattr(route, "routes", None)
        app = getattr(route, "app", None)
        if children:
            if app is not None:  # the mounted router is the endpoint only when nothing matched
                add(app, UNMATCHED)
            _walk_starlette(children, prefix + mount, add)
        elif app is not None:  # an opaque mounted app (static files...)
            add(app, prefix + mount + "/{path}")


def flask_route_hook() -> None:
    """A Flask ``before_request`` function: copy the matched rule into the context."""
    try:
        from flask import request

        ctx = current_request.get()
        if ctx is not None:
            rule = request.url_rule
            ctx.route = _FLASK_CONVERTER.sub(r"{\1}", rule.rule) if rule is not None else UNMATCHED
    except Exception as exc:
        warn_once("flask-route", "perfpilot: Flask route not read: %r", exc)


def install_flask(app: Any) -> None:
    """Register :func:`flask_route_hook` on a Flask app (once)."""
    if flask_route_hook not in app.before_request_funcs.get(None, []):
        app.before_request_funcs.setdefault(None, []).insert(0, flask_route_hook)


def install_django() -> None:
    """Record Django's matched URL pattern (``orders/<int:id>/`` → ``/orders/{id}/``).

    Patches ``BaseHandler.resolve_request`` once per process (a class patch is
    process-wide by nature).
    """
    from django.core.handlers.base import BaseHandler

    if hasattr(BaseHandler.resolve_request, "__perfpilot__"):
        return

    original = BaseHandler.resolve_request

    def resolve_request(self: Any, request: Any) -> Any:
        match = original(self, request)
        try:
            ctx = current_request.get()
            if ctx is not None:
                ctx.route = django_template(match.route)
        except Exception as exc:
            warn_once("django-route", "perfpilot: Django route not read: %r", exc)
        return match

    resolve_request.__wrapped__ = original  # type: ignore[attr-defined]
    resolve_request.__perfpilot__ = True  # type: ignore[attr-defined]
    BaseHandler.resolve_request = resolve_request


def django_template(route: str | None) -> str:
    """A Django URL pattern as a template: ``orders/<int:id>/`` → ``/orders/{id}/``."""
    if not route:
        return UNMATCHED
    route = route.lstrip("^").rstrip("$")
    return "/" + _DJANGO_CONVERTER.sub(r"{\1}", route).lstrip("/")
