"""Small builders of in-app records for detector tests."""

from __future__ import annotations

from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.app_records import OutboundRow, QueryRow, RequestRow, Span, Trace
from perfpilot.stats.histogram import Histogram

WINDOW_S = 100.0


def hist(*values: float, n: int = 1) -> Histogram:
    """A histogram of ``values``, each recorded ``n`` times."""
    h = Histogram()
    for value in values:
        for _ in range(n):
            h.record(value)
    return h


def request(
    route: str, count: int, mean_s: float, *, method: str = "GET", **fields: Any
) -> RequestRow:
    """``count`` requests of ``mean_s`` each on ``route`` (status class 2 unless given)."""
    status_class = fields.pop("status_class", 2)
    errors = fields.pop("errors", 0)
    return RequestRow(route, method, status_class, count, errors, hist(mean_s, n=count), **fields)


def query(
    route: str, sql: str, count: int, each_s: float, *, rows: int = 0, db: str = "sqlite", **kw: Any
) -> QueryRow:
    """``count`` executions of ``sql`` taking ``each_s`` each."""
    fingerprint = kw.pop("fingerprint", f"fp-{abs(hash(sql)) % 10**8}")
    return QueryRow(fingerprint, sql, db, route, count, 0, hist(each_s, n=count), rows, **kw)


def outbound(route: str, template: str, count: int, each_s: float, **kw: Any) -> OutboundRow:
    """``count`` calls to ``api.example.com{template}`` taking ``each_s`` each."""
    return OutboundRow(
        "api.example.com",
        template,
        kw.pop("method", "POST"),
        kw.pop("status_class", 2),
        route,
        count,
        kw.pop("errors", 0),
        hist(each_s, n=count),
        **kw,
    )


def trace(
    route: str, *spans: Span, status: int = 200, reasons: tuple[str, ...] = ("sample",)
) -> Trace:
    """A kept trace of ``route`` with ``spans``."""
    end = max((s.start_s + s.duration_s for s in spans), default=0.01)
    return Trace(1_700_000_000.0, route, "GET", status, end, reasons, spans)


def app(**fields: Any) -> AppData:
    """AppData over a :data:`WINDOW_S` window."""
    return AppData(since=1_700_000_000.0, until=1_700_000_000.0 + WINDOW_S, **fields)
