"""A FastAPI app, instrumented with one line (served by uvicorn in the tests).

The SQL route is a plain ``def``: FastAPI runs it in a worker thread, so the
request context must follow it there.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI

import perfpilot.instrument
from tests.instrument.apps import FLUSH_INTERVAL_S, order_items, store

app = FastAPI()
api = APIRouter(prefix="/api")


@app.get("/orders/{order_id}")
async def order(order_id: int) -> dict[str, int]:
    return {"id": order_id, "pid": os.getpid()}


@app.get("/orders/{order_id}/items")
def items(order_id: int) -> dict[str, object]:
    return order_items(order_id)


@app.get("/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("boom")


@api.get("/users/{user_id}")
async def user(user_id: int) -> dict[str, int]:
    return {"user": user_id}


app.include_router(api)

app = perfpilot.instrument(app, store=store(), flush_interval_s=FLUSH_INTERVAL_S)
