"""What ``perfpilot run`` hooks, keyed by the module whose import triggers it.

Libraries (sqlite3, psycopg, SQLAlchemy, httpx, requests, aiohttp, redis-py)
get perfpilot's usual hooks (:mod:`perfpilot.instrument.sql`,
:mod:`~perfpilot.instrument.outbound`, :mod:`~perfpilot.instrument.cache`)
the moment they are imported, each on its own: importing httpx does not
import aiohttp. Until an app is found the hooks only read
``active.recorder`` (``None``) and call the original.

Frameworks (:mod:`perfpilot.autorun.frameworks`) get their app classes
patched so that every app they create is found and served through
perfpilot's middleware.
"""

from __future__ import annotations

import types
from collections.abc import Callable

from perfpilot.autorun import frameworks


def hook_sql(module: types.ModuleType) -> None:
    """Time the statements of ``sqlite3``, ``psycopg`` or ``sqlalchemy``."""
    from perfpilot.instrument import sql

    sql.install(only=(module.__name__,))


def hook_http_client(module: types.ModuleType) -> None:
    """Time (and price) the calls of ``httpx``, ``requests`` or ``aiohttp``."""
    from perfpilot.autorun.runtime import settings
    from perfpilot.instrument import outbound

    outbound.install(settings().prices, only=(module.__name__,))


def hook_redis(module: types.ModuleType) -> None:
    """Count the hits and misses of redis-py reads."""
    from perfpilot.instrument import cache

    cache.install()


HOOKS: tuple[tuple[str, Callable[[types.ModuleType], None]], ...] = (
    ("sqlite3", hook_sql),
    ("psycopg", hook_sql),
    ("sqlalchemy", hook_sql),
    ("httpx", hook_http_client),
    ("requests", hook_http_client),
    ("aiohttp", hook_http_client),
    ("redis", hook_redis),
    ("flask", frameworks.patch_flask),
    ("starlette.applications", frameworks.patch_starlette),
    ("fastapi.applications", frameworks.patch_fastapi),
    ("django.core.handlers.wsgi", frameworks.patch_django_wsgi),
    ("django.core.handlers.asgi", frameworks.patch_django_asgi),
    ("uvicorn.server", frameworks.patch_uvicorn),
)
"""(module name, hook) pairs: the hook runs once the module is imported."""
