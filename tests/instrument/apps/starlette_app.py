"""A plain Starlette app, instrumented with one line (served by uvicorn in the tests)."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import perfpilot.instrument
from tests.instrument.apps import FLUSH_INTERVAL_S, order_items, store


async def order(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["order_id"], "pid": os.getpid()})


async def items(request: Request) -> JSONResponse:
    return JSONResponse(order_items(request.path_params["order_id"]))


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("boom")


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.path_params["user_id"]})


app = Starlette(
    routes=[
        Route("/orders/{order_id:int}", order),
        Route("/orders/{order_id:int}/items", items),
        Route("/boom", boom),
        Mount("/api", routes=[Route("/users/{user_id:int}", user)]),
    ]
)

app = perfpilot.instrument(app, store=store(), flush_interval_s=FLUSH_INTERVAL_S)
