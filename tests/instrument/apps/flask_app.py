"""A Flask app, instrumented with one line (served by gunicorn in the tests)."""

from __future__ import annotations

import os

from flask import Flask, jsonify

import perfpilot.instrument
from tests.instrument.apps import FLUSH_INTERVAL_S, order_items, store

app = Flask(__name__)


@app.get("/orders/<int:order_id>")
def order(order_id: int) -> object:
    return jsonify(id=order_id, pid=os.getpid())


@app.get("/orders/<int:order_id>/items")
def items(order_id: int) -> object:
    return jsonify(order_items(order_id))


@app.get("/boom")
def boom() -> object:
    raise RuntimeError("boom")


app = perfpilot.instrument(app, store=store(), flush_interval_s=FLUSH_INTERVAL_S)
