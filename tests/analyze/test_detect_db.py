import pytest

from perfpilot.analyze.detect_db import n_plus_one, select_star, slow_queries, unbounded_results
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.app_records import Span

from .builders import app, query, request, trace

OPTS = DiagnoseOptions()
ITEMS = "SELECT product_id, quantity FROM order_items WHERE order_id = ?"
ORDERS = "SELECT id FROM orders ORDER BY created_at DESC LIMIT ?"


def n1_app(per_request: int, each_s: float, traces: tuple = ()) -> object:  # type: ignore[type-arg]
    return app(
        requests=(request("/orders", 10, 0.2),),
        queries=(
            query("/orders", ORDERS, 10, 0.002, rows=300),
            query(
                "/orders",
                ITEMS,
                10 * per_request,
                each_s,
                rows=30 * per_request,
                call_site="shop/views.py:41",
            ),
        ),
        traces=traces,
    )


def test_n_plus_one_over_sentry_thresholds_on_average_is_high() -> None:
    (finding,) = n_plus_one(n1_app(10, 0.006), OPTS)  # 10 x 6 ms = 60 ms per request
    assert finding.kind == "n_plus_one"
    assert finding.severity == "high"
    assert finding.evidence["route"] == "/orders"
    assert finding.evidence["per_request"] == 10
    assert finding.fix.location == "shop/views.py:41"
    assert "selectinload" in finding.fix.code and "prefetch_related" in finding.fix.code
    assert "WHERE order_id IN" in finding.fix.code
    assert finding.impact.time_per_request_s == pytest.approx(0.054, rel=0.02)
    assert finding.impact.requests_per_s == pytest.approx(0.1)


def test_n_plus_one_judged_per_trace_like_sentry() -> None:
    spans = [Span("db", ORDERS, 0.0, 0.002, {"call_site": "shop/views.py:30"})]
    spans += [Span("db", ITEMS, 0.003 + i * 0.02, 0.015) for i in range(6)]  # 90 ms in one trace
    slow = trace("/orders", *spans, reasons=("repeated_query",))
    (finding,) = n_plus_one(n1_app(6, 0.001, (slow,)), OPTS)  # 6 ms on average
    assert finding.severity == "medium"
    assert finding.evidence["traces_over_threshold"] == 1
    assert finding.evidence["parent_sql"] == ORDERS
    assert finding.evidence["parent_call_site"] == "shop/views.py:30"
    assert finding.trace is slow


def test_many_fast_repeats_are_a_low_severity_n_plus_one() -> None:
    (finding,) = n_plus_one(n1_app(30, 0.0001), OPTS)
    assert finding.severity == "low"


def test_few_or_fast_repeats_are_not_an_n_plus_one() -> None:
    assert n_plus_one(n1_app(4, 0.05), OPTS) == []  # under 5 per request
    assert n_plus_one(n1_app(8, 0.001), OPTS) == []  # 8 ms, and under the structural 20


def test_repeated_writes_are_not_an_n_plus_one() -> None:
    data = app(
        requests=(request("/import", 10, 0.2),),
        queries=(query("/import", "INSERT INTO t (a) VALUES (?)", 500, 0.01),),
    )
    assert n_plus_one(data, OPTS) == []


LOOKUP = "SELECT id, name FROM customers WHERE email = ?"


def test_slow_equality_lookup_returning_one_row_is_a_missing_index() -> None:
    data = app(
        requests=(request("/customers", 50, 0.04),),
        queries=(query("/customers", LOOKUP, 50, 0.03, rows=50, call_site="shop/c.py:9"),),
    )
    (finding,) = slow_queries(data, OPTS)
    assert finding.kind == "missing_index"
    assert finding.fix.code == "CREATE INDEX IF NOT EXISTS ix_customers_email ON customers (email);"
    assert finding.evidence["share_of_route_time"] == pytest.approx(0.75, rel=0.02)
    assert finding.fix.location == "shop/c.py:9"


def test_slow_query_without_a_justified_index_points_to_db_advise() -> None:
    join = "SELECT o.id FROM orders AS o JOIN customers AS c ON c.id = o.cid WHERE c.region = ?"
    data = app(
        requests=(request("/report", 20, 0.3),),
        queries=(query("/report", join, 20, 0.25, rows=2000),),
    )
    (finding,) = slow_queries(data, OPTS)
    assert finding.kind == "slow_query"
    assert finding.severity == "high"
    assert "perfpilot db advise" in finding.fix.code


def test_slow_query_returning_many_rows_gets_pagination() -> None:
    data = app(
        requests=(request("/export", 10, 1.0),),
        queries=(
            query("/export", "SELECT * FROM products ORDER BY id LIMIT ?", 10, 0.8, rows=150_000),
        ),
    )
    (finding,) = slow_queries(data, OPTS)
    assert "LIMIT 100" in finding.fix.code


def test_fast_queries_and_small_shares_are_not_slow() -> None:
    data = app(
        requests=(request("/a", 50, 0.05), request("/b", 50, 0.2)),
        queries=(
            query("/a", ORDERS, 50, 0.004, rows=1000),  # 80 % of /a, but a 4 ms median
            query("/b", LOOKUP, 50, 0.02, rows=50),  # 20 ms median, but 10 % of /b
        ),
    )
    assert slow_queries(data, OPTS) == []


def test_few_calls_are_not_judged() -> None:
    data = app(requests=(request("/a", 3, 1.0),), queries=(query("/a", LOOKUP, 3, 0.9),))
    assert slow_queries(data, OPTS) == []


def test_select_without_limit_returning_many_rows_is_unbounded() -> None:
    data = app(
        requests=(request("/all", 10, 0.2),),
        queries=(
            query("/all", "SELECT id, name FROM products WHERE active = ?", 10, 0.1, rows=50_000),
        ),
    )
    (finding,) = unbounded_results(data, OPTS)
    assert finding.kind == "unbounded_result"
    assert finding.evidence["rows_per_call"] == 5000


def test_limited_aggregate_or_small_results_are_not_unbounded() -> None:
    data = app(
        requests=(request("/a", 10, 0.2),),
        queries=(
            query("/a", "SELECT id FROM products ORDER BY id LIMIT ?", 10, 0.1, rows=50_000),
            query("/a", "SELECT count(*) FROM products", 10, 0.1, rows=50_000),
            query("/a", "SELECT id FROM products WHERE cat = ?", 10, 0.1, rows=500),
        ),
    )
    assert unbounded_results(data, OPTS) == []


def test_select_star_on_many_rows_is_low_confidence() -> None:
    data = app(
        requests=(request("/p", 10, 0.2),),
        queries=(query("/p", "SELECT * FROM products ORDER BY id LIMIT ?", 10, 0.1, rows=5000),),
    )
    (finding,) = select_star(data, OPTS)
    assert (finding.kind, finding.severity) == ("select_star", "low")
    assert finding.confidence < 0.5
    assert finding.evidence["table_width"] is None


def test_select_star_by_primary_key_is_fine() -> None:
    data = app(
        requests=(request("/p/{id}", 10, 0.01),),
        queries=(query("/p/{id}", "SELECT * FROM products WHERE id = ?", 10, 0.001, rows=10),),
    )
    assert select_star(data, OPTS) == []
