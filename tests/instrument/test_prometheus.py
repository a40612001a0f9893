"""Prometheus text exposition: the format, the histogram buckets, and the two apps."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from perfpilot.app_records import (
    AppSnapshot,
    CacheRow,
    OutboundRow,
    QueryRow,
    RequestRow,
    ResourceSample,
)
from perfpilot.instrument import context, metrics_app
from perfpilot.instrument import totals as totals_module
from perfpilot.instrument.prometheus import (
    CONTENT_TYPE,
    DURATION_BUCKETS_S,
    cumulative_counts,
    escape_label_value,
    make_metrics_app,
    render,
)
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.totals import Totals, process_totals
from perfpilot.stats.histogram import Histogram

WEIRD_ROUTE = '/a\\b/"quoted"/line\nbreak'


def hist(*values: float) -> Histogram:
    h = Histogram()
    h.record_many(list(values))
    return h


def filled_totals() -> Totals:
    totals = Totals()
    totals.add(
        AppSnapshot(
            "svc",
            "host",
            1,
            0.0,
            1.0,
            requests=(
                RequestRow(
                    "/items/{id}", "GET", 2, 4, 0, hist(0.003, 0.02, 0.2, 20.0), cost_usd=0.5
                ),
                RequestRow(WEIRD_ROUTE, "POST", 5, 1, 1, hist(0.07)),
            ),
            queries=(
                QueryRow(
                    "abc123", "SELECT ?", "sqlite", "/items/{id}", 3, 1, hist(0.001, 0.002, 0.003)
                ),
            ),
            outbound=(
                OutboundRow(
                    "api.example",
                    "/v1/chat",
                    "POST",
                    2,
                    "/items/{id}",
                    2,
                    0,
                    hist(0.5, 0.25),
                    cost_usd=0.004,
                    prompt_tokens=100,
                    completion_tokens=20,
                ),
            ),
            caches=(CacheRow("thumbs", "get", "", "/items/{id}", 9, 1),),
            resources=(ResourceSample(5.0, 1, 50_000_000, 12.5, 4, 9, 33.0, 10, 20, 1, 2, 3, 4),),
            drops={"traces": 7},
        )
    )
    return totals


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict[str, Any], sample_name: str, **labels: str) -> float:
    for family in fams.values():
        for s in family.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {sample_name} {labels}")


def test_the_output_parses_and_has_every_family() -> None:
    text = render(filled_totals())
    assert text.endswith("\n")
    fams = families(text)
    expected = {
        "perfpilot_http_requests": "counter",
        "perfpilot_http_request_errors": "counter",
        "perfpilot_http_request_duration_seconds": "histogram",
        "perfpilot_db_queries": "counter",
        "perfpilot_db_query_seconds": "counter",
        "perfpilot_outbound_requests": "counter",
        "perfpilot_outbound_cost_usd": "counter",
        "perfpilot_cache_hits": "counter",
        "perfpilot_cache_misses": "counter",
        "perfpilot_dropped": "counter",
        "perfpilot_process_resident_memory_bytes": "gauge",
        "perfpilot_process_cpu_percent": "gauge",
    }
    for name, kind in expected.items():
        assert fams[name].type == kind, name
    lab = {"route": "/items/{id}", "method": "GET", "status_class": "2xx"}
    assert value(fams, "perfpilot_http_requests_total", **lab) == 4
    assert value(fams, "perfpilot_http_request_cost_usd_total", **lab) == 0.5
    assert value(fams, "perfpilot_db_queries_total", fingerprint="abc123", db="sqlite") == 3
    assert value(fams, "perfpilot_db_query_errors_total", fingerprint="abc123") == 1
    assert value(fams, "perfpilot_db_query_seconds_total", fingerprint="abc123") == pytest.approx(
        0.006
    )
    out = {"host": "api.example", "template": "/v1/chat"}
    assert value(fams, "perfpilot_outbound_requests_total", **out) == 2
    assert value(fams, "perfpilot_outbound_cost_usd_total", **out) == 0.004
    assert value(fams, "perfpilot_outbound_tokens_total", kind="prompt", **out) == 100
    assert value(fams, "perfpilot_cache_hits_total", cache="thumbs") == 9
    assert value(fams, "perfpilot_cache_misses_total", cache="thumbs") == 1
    assert value(fams, "perfpilot_dropped_total", kind="traces") == 7
    assert value(fams, "perfpilot_process_resident_memory_bytes") == 50_000_000
    assert value(fams, "perfpilot_process_cpu_percent") == 12.5


def test_the_histogram_is_cumulative_and_consistent() -> None:
    fams = families(render(filled_totals()))
    lab = {"route": "/items/{id}", "method": "GET", "status_class": "2xx"}
    buckets = {
        s.labels["le"]: s.value
        for s in fams["perfpilot_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["route"] == "/items/{id}"
    }
    assert list(buckets) == [*(str(b) for b in DURATION_BUCKETS_S), "+Inf"]
    assert buckets["0.005"] == 1 and buckets["0.025"] == 2 and buckets["0.25"] == 3
    assert buckets["10.0"] == 3 and buckets["+Inf"] == 4
    counts = list(buckets.values())
    assert counts == sorted(counts)
    assert value(fams, "perfpilot_http_request_duration_seconds_count", **lab) == 4
    assert value(fams, "perfpilot_http_request_duration_seconds_sum", **lab) == pytest.approx(
        20.223
    )


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    text = render(filled_totals())
    assert 'route="/a\\\\b/\\"quoted\\"/line\\nbreak"' in text
    fams = families(text)
    assert value(fams, "perfpilot_http_requests_total", route=WEIRD_ROUTE, status_class="5xx") == 1
    assert value(fams, "perfpilot_http_request_errors_total", route=WEIRD_ROUTE) == 1


def test_empty_totals_render_headers_only() -> None:
    fams = families(render(Totals()))
    assert fams["perfpilot_http_requests"].samples == []
    assert "perfpilot_process_resident_memory_bytes" not in fams  # no sample yet


def _away_from_bounds(v: float) -> bool:
    return all(abs(v - b) > 0.01 * b for b in DURATION_BUCKETS_S)


@given(
    st.lists(
        st.floats(min_value=1e-5, max_value=30.0).filter(_away_from_bounds),
        min_size=1,
        max_size=200,
    )
)
def test_bucket_counts_are_exact_away_from_the_bounds(values: list[float]) -> None:
    counts = cumulative_counts(hist(*values), DURATION_BUCKETS_S)
    assert counts == [sum(v <= b for v in values) for b in DURATION_BUCKETS_S]


@given(st.lists(st.floats(min_value=0.0, max_value=5000.0), max_size=100))
def test_bucket_counts_never_decrease_and_end_within_the_total(values: list[float]) -> None:
    h = hist(*values)
    counts = cumulative_counts(h, DURATION_BUCKETS_S)
    assert counts == sorted(counts)
    assert all(0 <= c <= h.count for c in counts)
    exact = [sum(v <= b for v in values) for b in DURATION_BUCKETS_S]
    for b, got, want in zip(DURATION_BUCKETS_S, counts, exact, strict=True):
        near = sum(abs(v - b) <= 0.01 * b for v in values)
        assert abs(got - want) <= near


def test_extreme_bounds_use_the_exact_min_and_max() -> None:
    h = hist(0.0101, 0.0102)  # both within 2 % of 0.01, one bucket
    assert cumulative_counts(h, [0.0100, 0.0102, math.inf]) == [0, 2, 2]


# -- the apps ------------------------------------------------------------------------------


def call_asgi(
    app: Any, scope: dict[str, Any], messages: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    incoming = list(messages or [{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/metrics", "headers": []}


def test_asgi_app_serves_the_metrics() -> None:
    app = make_metrics_app(filled_totals())
    start, body = call_asgi(app, http_scope())
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"] == CONTENT_TYPE.encode()
    assert int(headers[b"content-length"]) == len(body["body"])
    assert "perfpilot_http_requests" in families(body["body"].decode())


def test_asgi_app_head_post_lifespan_and_websocket() -> None:
    app = make_metrics_app(Totals(), kind="asgi")
    start, body = call_asgi(app, http_scope("HEAD"))
    assert start["status"] == 200 and body["body"] == b""
    start, _ = call_asgi(app, http_scope("POST"))
    assert start["status"] == 405 and (b"allow", b"GET, HEAD") in start["headers"]
    sent = call_asgi(
        app, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert call_asgi(app, {"type": "websocket"})[0]["type"] == "websocket.close"


def call_wsgi(app: Any, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": "/metrics"}, start_response))
    return got["status"], got["headers"], body


def test_wsgi_app_serves_the_metrics() -> None:
    app = make_metrics_app(filled_totals(), kind="wsgi")
    status, headers, body = call_wsgi(app)
    assert status == "200 OK"
    assert headers["Content-Type"] == CONTENT_TYPE
    assert int(headers["Content-Length"]) == len(body)
    assert value(families(body.decode()), "perfpilot_cache_hits_total", cache="thumbs") == 9
    assert call_wsgi(app, "HEAD")[2] == b""
    assert call_wsgi(app, "DELETE")[0] == "405 Method Not Allowed"


def test_none_or_a_recorder_means_the_process_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(totals_module._process, "totals", Totals())  # leave the real one alone
    totals = process_totals()
    totals.add(AppSnapshot("svc", "h", 1, 0.0, 1.0, drops={"test_marker": 1}))
    for app in (
        make_metrics_app(None, kind="wsgi"),
        make_metrics_app(Recorder(), kind="wsgi"),
        metrics_app(kind="wsgi"),
    ):
        assert b'perfpilot_dropped_total{kind="test_marker"}' in call_wsgi(app)[2]


def test_a_bad_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="asgi"):
        make_metrics_app(Totals(), kind="grpc")


def test_a_render_failure_is_a_500_not_an_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(context, "_warned", set())
    totals = Totals()

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(totals, "view", broken)
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        assert call_wsgi(make_metrics_app(totals, kind="wsgi"))[0].startswith("500")
        start, _ = call_asgi(make_metrics_app(totals), http_scope())
    assert start["status"] == 500
    assert sum("metrics not rendered" in r.message for r in caplog.records) == 1
