import pytest

from perfpilot.analyze.detect_outbound import repeated_calls, sequential_calls, slow_calls
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.app_records import Span

from .builders import app, outbound, request, trace

OPTS = DiagnoseOptions()


def test_identical_calls_in_one_request_are_repeated_with_time_and_money() -> None:
    data = app(
        requests=(request("/recs", 10, 0.3),),
        outbound=(outbound("/recs", "/v1/embeddings", 30, 0.05, repeated=20, cost_usd=0.03),),
    )
    (finding,) = repeated_calls(data, OPTS)
    assert finding.kind == "repeated_outbound"
    assert finding.evidence["route"] == "/recs"
    assert finding.evidence["repeats_per_request"] == 2
    assert finding.impact.time_per_request_s == pytest.approx(0.1, rel=0.02)
    assert finding.impact.usd_per_request == pytest.approx(0.002)
    assert "TTLCache" in finding.fix.code and "lru_cache" in finding.fix.code


def test_rare_repeats_are_not_reported() -> None:
    data = app(
        requests=(request("/recs", 100, 0.3),),
        outbound=(outbound("/recs", "/v1/embeddings", 100, 0.05, repeated=5),),
    )
    assert repeated_calls(data, OPTS) == []


def test_identical_calls_across_requests_are_cacheable_with_time_and_money() -> None:
    """Each request calls once, but most calls repeat another request's call."""
    data = app(
        requests=(request("/summarize", 40, 0.3),),
        outbound=(
            outbound("/summarize", "/v1/chat/completions", 40, 0.25, repeated_across=30,
                     cost_usd=0.04),
        ),
    )  # fmt: skip
    (finding,) = repeated_calls(data, OPTS)
    assert finding.kind == "repeated_outbound"
    assert (finding.evidence["repeated"], finding.evidence["repeated_across"]) == (0, 30)
    assert finding.evidence["repeats_per_request"] == 0.75
    assert "75% repeating another request's" in finding.title
    assert finding.impact.time_per_request_s == pytest.approx(0.75 * 0.25, rel=0.02)
    assert finding.impact.usd_per_request == pytest.approx(0.04 * 0.75 / 40)
    assert "shared by requests" in finding.fix.summary
    assert "keyed by the request" in finding.fix.summary
    assert "TTLCache" in finding.fix.code


def test_distinct_calls_across_requests_are_not_repeats() -> None:
    data = app(
        requests=(request("/summarize", 40, 0.3),),
        outbound=(
            outbound("/summarize", "/v1/chat/completions", 40, 0.25, repeated_across=4),
            outbound("/other", "/v1/chat/completions", 40, 0.25, repeated_across=1),
        ),
    )
    assert repeated_calls(data, OPTS) == []


def test_a_slow_call_that_dominates_its_route_is_reported() -> None:
    data = app(
        requests=(request("/summarize", 20, 0.3),),
        outbound=(outbound("/summarize", "/v1/chat/completions", 20, 0.28, cost_usd=0.02),),
    )
    (finding,) = slow_calls(data, OPTS)
    assert (finding.kind, finding.severity) == ("slow_outbound", "high")
    assert finding.impact.usd_per_request == pytest.approx(0.001)
    assert "timeout=" in finding.fix.code


def test_fast_calls_or_calls_on_slow_routes_are_not_slow_outbound() -> None:
    data = app(
        requests=(request("/a", 20, 0.05), request("/b", 20, 2.0)),
        outbound=(
            outbound("/a", "/fast", 20, 0.04),  # 80 % of /a but fast
            outbound("/b", "/slow", 20, 0.2),  # slow but 10 % of /b
        ),
    )
    assert slow_calls(data, OPTS) == []


def http(name: str, start: float, duration: float) -> Span:
    return Span("http", f"GET api.example.com/{name}", start, duration, {"status": 200})


def test_back_to_back_calls_could_run_concurrently() -> None:
    sample = trace("/page", http("a", 0.0, 0.1), http("b", 0.1, 0.08), http("c", 0.19, 0.12))
    data = app(requests=(request("/page", 10, 0.35),), traces=(sample,))
    (finding,) = sequential_calls(data, OPTS)
    assert finding.kind == "sequential_outbound"
    assert finding.evidence["mean_saving_ms"] == pytest.approx(180.0)
    assert "asyncio.gather" in finding.fix.code
    assert finding.trace is sample


def test_calls_with_a_query_between_or_overlapping_are_not_sequential() -> None:
    db = Span("db", "SELECT 1", 0.1, 0.01)
    data = app(
        requests=(request("/p", 10, 0.3),),
        traces=(
            trace("/p", http("a", 0.0, 0.1), db, http("b", 0.12, 0.1)),
            trace("/p", http("a", 0.0, 0.1), http("b", 0.05, 0.1)),
            trace("/p", http("a", 0.0, 0.01), http("b", 0.01, 0.01)),  # 10 ms to save
        ),
    )
    assert sequential_calls(data, OPTS) == []


SITE = "/srv/shop/llm.py:41 < /srv/shop/views.py:120"


def test_repeated_calls_name_where_the_app_makes_them() -> None:
    data = app(
        requests=(request("/recs", 10, 0.3),),
        outbound=(outbound("/recs", "/v1/embeddings", 30, 0.05, repeated=20, call_site=SITE),),
    )
    (finding,) = repeated_calls(data, OPTS)
    assert finding.fix.location == SITE
    assert finding.evidence["call_site"] == SITE


def test_slow_calls_name_where_the_app_makes_them() -> None:
    data = app(
        requests=(request("/chat", 10, 1.0),),
        outbound=(outbound("/chat", "/v1/chat/completions", 10, 0.9, call_site=SITE),),
    )
    (finding,) = slow_calls(data, OPTS)
    assert finding.fix.location == SITE
    assert finding.evidence["call_site"] == SITE


def test_outbound_findings_without_a_known_call_site_name_no_location() -> None:
    data = app(
        requests=(request("/recs", 10, 1.0),),
        outbound=(outbound("/recs", "/v1/embeddings", 30, 0.3, repeated=20),),
    )
    findings = repeated_calls(data, OPTS) + slow_calls(data, OPTS)
    assert {f.kind for f in findings} == {"repeated_outbound", "slow_outbound"}
    assert all(f.fix.location is None and f.evidence["call_site"] is None for f in findings)


def test_the_call_site_of_any_status_class_names_the_endpoint() -> None:
    data = app(
        requests=(request("/recs", 10, 0.3),),
        outbound=(
            outbound("/recs", "/v1/embeddings", 5, 0.05, status_class=5, repeated=3),
            outbound("/recs", "/v1/embeddings", 25, 0.05, repeated=17, call_site=SITE),
        ),
    )
    (finding,) = repeated_calls(data, OPTS)
    assert finding.fix.location == SITE


def test_sequential_calls_name_the_first_call_site() -> None:
    spans = (
        Span("http", "GET api.example.com/v1/a", 0.0, 0.1, {"status": 200}),
        Span("http", "GET api.example.com/v1/b", 0.1, 0.1, {"status": 200, "call_site": SITE}),
        Span("http", "GET api.example.com/v1/c", 0.2, 0.1, {"status": 200}),
    )
    data = app(requests=(request("/dash", 10, 0.4),), traces=(trace("/dash", *spans),))
    (finding,) = sequential_calls(data, OPTS)
    assert finding.fix.location == SITE
    assert finding.evidence["call_sites"] == [None, SITE, None]


def test_a_repeated_unpriced_post_is_not_told_to_cache() -> None:
    post = outbound("/signin", "/login/{id}", 30, 0.05, repeated=20)  # POST, no price
    get = outbound("/signin", "/profile/{id}", 30, 0.05, repeated=20, method="GET")
    data = app(requests=(request("/signin", 10, 0.3),), outbound=(post, get))
    by_method = {f.evidence["method"]: f for f in repeated_calls(data, OPTS)}
    assert by_method["POST"].severity == "low" and by_method["POST"].confidence == 0.4
    assert by_method["POST"].fix.code == "" and "idempotent" in by_method["POST"].fix.summary
    assert by_method["GET"].severity == "high" and "TTLCache" in by_method["GET"].fix.code
