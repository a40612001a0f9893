"""A Starlette app with CPU-bound routes, for the stack sampler (test_profiler_live.py).

``/sync/{n}`` is a plain function, which Starlette runs in its thread pool;
``/async/{n}`` is a coroutine, run on the event loop. Both spend their time in
:func:`crunch`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import perfpilot.instrument
from tests.instrument.apps import FLUSH_INTERVAL_S, store


def crunch(n: int) -> int:
    """Pure-Python work: the hot function."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def hot_sync(request: Request) -> JSONResponse:
    return JSONResponse({"total": crunch(request.path_params["n"])})


async def hot_async(request: Request) -> JSONResponse:
    return JSONResponse({"total": crunch(request.path_params["n"])})


app = Starlette(routes=[Route("/sync/{n:int}", hot_sync), Route("/async/{n:int}", hot_async)])

app = perfpilot.instrument(
    app, store=store(), flush_interval_s=FLUSH_INTERVAL_S, profile_interval_ms=2
)
