"""Small real apps with no perfpilot line at all, served by ``perfpilot run`` in the tests.

Every app has the same endpoints:

    GET /orders/{order_id}         200, no SQL, no outbound call
    GET /orders/{order_id}/items   200, QUERIES_PER_REQUEST SELECTs on SQLite and
                                   CALLS_PER_REQUEST outbound calls to the upstream
    GET /boom                      raises (500)
    anything else                  404

Environment: ``PERFPILOT_TEST_APP_DB`` (the SQLite file the app queries, made
by the test) and ``PERFPILOT_TEST_UPSTREAM`` (base URL of a loopback server).
"""

from __future__ import annotations

import os

from tests.instrument.apps import QUERIES_PER_REQUEST, make_app_db, order_items

__all__ = ["CALLS_PER_REQUEST", "QUERIES_PER_REQUEST", "make_app_db", "order_items", "upstream"]

CALLS_PER_REQUEST = 2


def upstream(path: str) -> str:
    """A URL on the loopback upstream server."""
    return os.environ["PERFPILOT_TEST_UPSTREAM"].rstrip("/") + path
