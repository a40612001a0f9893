"""A Flask app that knows nothing of perfpilot (served by gunicorn via ``perfpilot run``)."""

from __future__ import annotations

import os

import requests
from flask import Flask, jsonify

from tests.autorun.apps import CALLS_PER_REQUEST, order_items, upstream

app = Flask(__name__)
session = requests.Session()
session.trust_env = False  # no proxy from the environment: the upstream is on 127.0.0.1


@app.get("/orders/<int:order_id>")
def order(order_id: int) -> object:
    return jsonify(id=order_id, pid=os.getpid())


@app.get("/orders/<int:order_id>/items")
def items(order_id: int) -> object:
    for _ in range(CALLS_PER_REQUEST):
        session.get(upstream("/json"), timeout=10).raise_for_status()
    return jsonify(order_items(order_id))


@app.get("/boom")
def boom() -> object:
    raise RuntimeError("boom")
