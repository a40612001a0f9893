"""Route templates (``/orders/{id}``) from each framework, never raw paths.

Raw paths would give one key per id; templates give one per endpoint.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from perfpilot.instrument.context import current_request, warn_once
from perfpilot.instrument.recorder import UNMATCHED

_DJANGO_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_FLASK_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_STARLETTE_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


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
                _walk_starlette(getattr(self.app, "routes", []), "", mapping)
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


def _walk_starlette(routes: Any, prefix: str, mapping: dict[int, tuple[Any, str]]) -> None:
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None:
            path = getattr(route, "path_format", None) or getattr(route, "path", None) or ""
            mapping.setdefault(id(endpoint), (endpoint, prefix + str(path)))
            continue
        # a Mount (path_format ends in "/{path}"; its own path is the prefix)
        mount = _STARLETTE_PARAM.sub(r"{\1}", str(getattr(route, "path", "") or ""))
        children = getattr(route, "routes", None)
        app = getattr(route, "app", None)
        if children:
            if app is not None:  # the mounted router is the endpoint only when nothing matched
                mapping.setdefault(id(app), (app, UNMATCHED))
            _walk_starlette(children, prefix + mount, mapping)
        elif app is not None:  # an opaque mounted app (static files...)
            mapping.setdefault(id(app), (app, prefix + mount + "/{path}"))


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
