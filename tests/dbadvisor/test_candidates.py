"""Query shapes and the index candidates drawn from them."""

from __future__ import annotations

from perfpilot.dbadvisor.candidates import IndexCandidate, candidates_for
from perfpilot.dbadvisor.catalog import Catalog, ExistingIndex, TableInfo, quote_identifier
from perfpilot.dbadvisor.shape import analyze_query

COLUMNS = {
    "orders": ("id", "customer_id", "status", "created_at", "total_cents"),
    "customers": ("id", "email", "name", "country"),
}
CATALOG = Catalog(
    {
        "orders": TableInfo(
            "orders",
            COLUMNS["orders"],
            1000,
            (ExistingIndex("orders_pkey", "orders", ("id",), unique=True),),
        ),
        "customers": TableInfo(
            "customers",
            COLUMNS["customers"],
            100,
            (
                ExistingIndex("customers_pkey", "customers", ("id",), unique=True),
                ExistingIndex("customers_email_name", "customers", ("email", "name")),
                ExistingIndex("customers_lower", "customers", ("country",), usable=False),
            ),
        ),
    }
)


def keys(sql: str, kind: str = "postgresql") -> list[str]:
    shape = analyze_query(sql, kind, COLUMNS)
    return [c.label for c in candidates_for(shape, CATALOG, kind)]


def test_shape_reads_predicates_joins_order_group_limit_and_wildcards() -> None:
    shape = analyze_query(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.email LIKE '%x' AND o.created_at BETWEEN '2024-01-01' AND '2024-02-01' "
        "AND o.status IN ('a', 'b') AND (o.total_cents > 5 OR o.id = 1) "
        "ORDER BY o.created_at DESC LIMIT 5 OFFSET 2000",
        "postgresql",
        COLUMNS,
    )
    orders, customers = shape.uses
    assert orders.table == "orders" and orders.alias == "o"
    assert orders.equality == ("status",)
    assert orders.ranges == ("created_at",)
    assert orders.joins == ("customer_id",)
    assert orders.order_by == ("created_at",)
    assert customers.joins == ("id",)
    assert shape.leading_wildcard == ("customers.email",)
    assert (shape.limit, shape.offset, shape.aggregate) == (5, 2000, False)


def test_shape_of_aggregates_non_queries_and_garbage() -> None:
    grouped = analyze_query(
        "select status, count(*) from orders group by status", "sqlite", COLUMNS
    )
    assert grouped.aggregate and grouped.uses[0].group_by == ("status",)
    assert not grouped.uses[0].filtered
    assert not analyze_query(
        "update orders set status = 'x' where id = 1", "sqlite", COLUMNS
    ).is_select
    broken = analyze_query("select from where (", "sqlite", COLUMNS)
    assert broken.error
    # mixed directions cannot be served by one btree scan order
    mixed = analyze_query(
        "select * from orders order by status, created_at desc", "sqlite", COLUMNS
    )
    assert mixed.uses[0].order_by == ()


def test_unqualified_columns_resolve_only_when_one_table_has_them() -> None:
    shape = analyze_query(
        "select * from orders join customers on customers.id = orders.customer_id "
        "where status = 'x' and id = 3",
        "postgresql",
        COLUMNS,
    )
    orders, customers = shape.uses
    assert orders.equality == ("status",)  # id is ambiguous: ignored
    assert customers.equality == ()


def test_candidates_single_multi_sort_and_covering() -> None:
    found = keys(
        "SELECT id, total_cents FROM orders WHERE customer_id = 1 AND status = 'x' "
        "AND created_at > '2024-01-01' ORDER BY total_cents LIMIT 10"
    )
    assert "orders(customer_id)" in found
    assert "orders(created_at)" in found
    assert "orders(customer_id, status)" in found
    assert "orders(status, customer_id)" in found
    assert "orders(customer_id, status, created_at)" in found
    assert "orders(customer_id, status, total_cents)" in found
    assert "orders(customer_id, status) INCLUDE (id, total_cents, created_at)" in found
    # more than three columns to include: no covering variant
    assert not any(k.startswith("orders(customer_id) INCLUDE") for k in found)
    assert len(found) == len(set(found))


def test_no_covering_candidates_for_select_star_or_on_sqlite() -> None:
    assert all("INCLUDE" not in k for k in keys("SELECT * FROM orders WHERE status = 'x'"))
    assert all(
        "INCLUDE" not in k for k in keys("SELECT id FROM orders WHERE status = 'x'", "sqlite")
    )


def test_candidates_served_by_an_existing_index_prefix_are_dropped() -> None:
    assert keys("select * from orders where id = 5") == []
    assert keys("select * from customers where email = 'a'") == []
    assert keys("select * from customers where email = 'a' and name = 'b'") == [
        "customers(name)",
        "customers(name, email)",
    ]
    # an index with an expression or predicate serves nothing
    assert keys("select * from customers where country = 'NZ'") == ["customers(country)"]


def test_candidate_ddl_names_and_quoting() -> None:
    candidate = IndexCandidate("Orders", ("customerId", "status"), ("total",))
    assert candidate.name == "idx_orders_customerid_status_incl"
    assert candidate.ddl("postgresql") == (
        'CREATE INDEX CONCURRENTLY idx_orders_customerid_status_incl ON "Orders" '
        '("customerId", status) INCLUDE (total);'
    )
    assert candidate.ddl("sqlite") == (
        'CREATE INDEX idx_orders_customerid_status_incl ON "Orders" ("customerId", status);'
    )
    assert candidate.hypothetical_ddl() == (
        'CREATE INDEX ON "Orders" ("customerId", status) INCLUDE (total)'
    )
    assert len(IndexCandidate("t" * 80, ("c",)).name) == 63
    assert quote_identifier('we"ird') == '"we""ird"'


def test_reserved_words_are_quoted_so_the_ddl_runs() -> None:
    import sqlite3

    assert (quote_identifier("order"), quote_identifier("user")) == ('"order"', '"user"')
    candidate = IndexCandidate("order", ("user", "group"))
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE "order" (id INTEGER PRIMARY KEY, "user" INTEGER, "group" TEXT)')
    conn.execute(candidate.ddl("sqlite"))  # would be a syntax error unquoted
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'index'").fetchone() == (
        1,
    )
