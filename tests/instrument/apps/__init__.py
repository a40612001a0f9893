"""Small real apps, each instrumented with one line, served by test_frameworks.py.

Every app has the same endpoints:

    GET /orders/{order_id}         200, no SQL
    GET /orders/{order_id}/items   200, exactly QUERIES_PER_REQUEST SELECTs on SQLite
    GET /boom                      raises (500)
    anything else                  404

Environment: ``PERFPILOT_TEST_STORE`` (the perfpilot store) and
``PERFPILOT_TEST_APP_DB`` (the SQLite file the app queries, made by the test).
"""

from __future__ import annotations

import os
import sqlite3

QUERIES_PER_REQUEST = 3
FLUSH_INTERVAL_S = 0.5


def store() -> str:
    return os.environ["PERFPILOT_TEST_STORE"]


def order_items(order_id: int) -> dict[str, object]:
    """The SQL route's work: QUERIES_PER_REQUEST statements through the sqlite3 module."""
    conn = sqlite3.connect(os.environ["PERFPILOT_TEST_APP_DB"])
    try:
        name = conn.execute("SELECT name FROM orders WHERE id = ?", (order_id,)).fetchone()
        total = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        items = conn.execute(
            "SELECT id FROM orders WHERE id > ? ORDER BY id LIMIT 3", (order_id,)
        ).fetchall()
    finally:
        conn.close()
    return {"id": order_id, "name": name[0] if name else None, "total": total,
            "next": [row[0] for row in items]}  # fmt: skip


def make_app_db(path: str, rows: int = 20) -> None:
    """Create the database the apps query."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany(
            "INSERT OR REPLACE INTO orders VALUES (?, ?)", ((i, f"order {i}") for i in range(rows))
        )
    conn.close()
