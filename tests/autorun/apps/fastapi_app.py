"""A FastAPI app that knows nothing of perfpilot (served by uvicorn via ``perfpilot run``).

The SQL route is a plain ``def`` (FastAPI runs it in a worker thread) and calls
the upstream with a synchronous httpx client; the other routes are async.
"""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI

from tests.autorun.apps import CALLS_PER_REQUEST, order_items, upstream

app = FastAPI()
client = httpx.Client(trust_env=False, timeout=10)


@app.get("/orders/{order_id}")
async def order(order_id: int) -> dict[str, int]:
    return {"id": order_id, "pid": os.getpid()}


@app.get("/orders/{order_id}/items")
def items(order_id: int) -> dict[str, object]:
    for _ in range(CALLS_PER_REQUEST):
        client.get(upstream("/json")).raise_for_status()
    return order_items(order_id)


@app.get("/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("boom")
