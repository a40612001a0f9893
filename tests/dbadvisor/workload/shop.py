"""The index advisor's evaluation workload: a shop schema, its data, queries and answer key.

Five tables, 700 000 rows, generated in SQL on the server (``generate_series``
on PostgreSQL, a recursive CTE on SQLite) from deterministic formulas, so both
databases hold the same data:

| table | rows | existing indexes |
|---|---|---|
| customers | 50 000 | primary key, unique email |
| products | 50 000 | primary key, unique sku (inserted category by category) |
| orders | 150 000 | primary key (3 per customer, spread; created_at follows id) |
| order_items | 300 000 | primary key, order_id |
| events | 150 000 | primary key, (customer_id, created_at) |

Skews: order status delivered 80%, shipped 10%, pending 5%, cancelled 4%,
refunded 1%; event kind view 70%, click 20%, cart 6%, purchase 3%, refund 1%.

:data:`QUERIES` holds 36 queries with their answer key: the table and the
leading key columns an index serving the query must have (``expect``), or
``None`` when no new index should be recommended (already served by an
existing index, or no btree index helps). The key is what a DBA would accept:
an index whose key *starts with* the expected columns serves the query (an
index on ``(customer_id, status)`` serves ``customer_id = ?``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

CUSTOMERS = 50_000
PRODUCTS = 50_000
ORDERS = 150_000
ORDER_ITEMS = 300_000
EVENTS = 150_000


@dataclasses.dataclass(frozen=True)
class EvalQuery:
    """One query of the workload and what the advisor should say about it.

    Attributes:
        name: Short id (``s1``: single column, ``m``: multi-column, ``o``: sort,
            ``j``: join, ``e``: served by an existing index, ``n``: no index helps).
        sql: The statement, with real values.
        expect: ``(table, leading key columns)`` of an acceptable index, or
            ``None`` when no index should be recommended.
    """

    name: str
    sql: str
    expect: tuple[str, tuple[str, ...]] | None


QUERIES: tuple[EvalQuery, ...] = (
    # single-column indexes
    EvalQuery("s1", "SELECT id, status, total_cents FROM orders WHERE customer_id = 4242", ("orders", ("customer_id",))),
    EvalQuery("s2", "SELECT * FROM order_items WHERE product_id = 777", ("order_items", ("product_id",))),
    EvalQuery("s3", "SELECT sum(quantity) FROM order_items WHERE product_id = 1234", ("order_items", ("product_id",))),
    EvalQuery("s4", "SELECT * FROM customers WHERE name = 'Customer 12345'", ("customers", ("name",))),
    EvalQuery("s5", "SELECT * FROM events WHERE path = '/product/4321'", ("events", ("path",))),
    EvalQuery("s6", "SELECT id, customer_id FROM orders WHERE total_cents BETWEEN 50000 AND 50100", ("orders", ("total_cents",))),
    EvalQuery("s7", "SELECT * FROM orders WHERE created_at >= '2024-06-10' AND created_at < '2024-06-11'", ("orders", ("created_at",))),
    EvalQuery("s8", "SELECT id, name, price_cents FROM products WHERE category_id = 42", ("products", ("category_id",))),
    EvalQuery("s9", "SELECT count(*) FROM orders WHERE customer_id = 17 AND status = 'cancelled'", ("orders", ("customer_id",))),
    EvalQuery("s10", "SELECT max(created_at) FROM orders WHERE customer_id = 99", ("orders", ("customer_id",))),
    # multi-column indexes: equality first, then range
    EvalQuery("m1", "SELECT id, total_cents FROM orders WHERE status = 'pending' AND created_at >= '2024-12-01'", ("orders", ("status", "created_at"))),
    EvalQuery("m2", "SELECT * FROM events WHERE kind = 'refund' AND created_at >= '2024-10-01'", ("events", ("kind", "created_at"))),
    EvalQuery("m3", "SELECT id FROM products WHERE category_id = 7 AND price_cents < 1000", ("products", ("category_id",))),
    # sort indexes (ORDER BY with LIMIT)
    EvalQuery("o1", "SELECT * FROM events ORDER BY created_at DESC LIMIT 50", ("events", ("created_at",))),
    EvalQuery("o2", "SELECT id, total_cents FROM orders WHERE customer_id = 555 ORDER BY created_at DESC LIMIT 3", ("orders", ("customer_id",))),
    EvalQuery("o3", "SELECT * FROM products WHERE category_id = 3 ORDER BY price_cents DESC LIMIT 10", ("products", ("category_id",))),
    EvalQuery("o4", "SELECT id, email FROM customers ORDER BY created_at DESC LIMIT 20", ("customers", ("created_at",))),
    EvalQuery("o5", "SELECT * FROM orders WHERE status = 'refunded' ORDER BY created_at DESC LIMIT 20", ("orders", ("status", "created_at"))),
    # join keys
    EvalQuery("j1", "SELECT c.name, o.id, o.total_cents FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email = 'user777@example.com'", ("orders", ("customer_id",))),
    EvalQuery("j2", "SELECT p.name, oi.quantity FROM order_items oi JOIN products p ON p.id = oi.product_id WHERE p.sku = 'SKU-000123'", ("order_items", ("product_id",))),
    # already served by an existing index
    EvalQuery("e1", "SELECT * FROM customers WHERE email = 'user123@example.com'", None),
    EvalQuery("e2", "SELECT * FROM order_items WHERE order_id = 4321", None),
    EvalQuery("e3", "SELECT * FROM products WHERE sku = 'SKU-000042'", None),
    EvalQuery("e4", "SELECT * FROM orders WHERE id = 42", None),
    EvalQuery("e5", "SELECT * FROM events WHERE customer_id = 1234 AND created_at >= '2024-06-01'", None),
    EvalQuery("e6", "SELECT order_id, count(*) FROM order_items WHERE order_id BETWEEN 100 AND 200 GROUP BY order_id", None),
    # no btree index helps
    EvalQuery("n1", "SELECT * FROM customers WHERE email LIKE '%@example.org'", None),
    EvalQuery("n2", "SELECT id FROM products WHERE name LIKE '%Widget%'", None),
    EvalQuery("n3", "SELECT status, count(*) FROM orders GROUP BY status", None),
    EvalQuery("n4", "SELECT count(*) FROM events", None),
    EvalQuery("n5", "SELECT * FROM orders WHERE status = 'delivered'", None),
    EvalQuery("n6", "SELECT avg(total_cents) FROM orders WHERE created_at >= '2023-02-01'", None),
    EvalQuery("n7", "SELECT * FROM events ORDER BY id LIMIT 20 OFFSET 100000", None),
    EvalQuery("n8", "SELECT kind, count(*) FROM events WHERE created_at >= '2024-01-15' GROUP BY kind", None),
    EvalQuery("n9", "SELECT * FROM order_items WHERE quantity > 1", None),
    EvalQuery("n10", "SELECT country, count(*) FROM customers GROUP BY country", None),
)  # fmt: skip

_COUNTRIES = ("US", "GB", "DE", "FR", "NZ", "AU", "CA", "JP", "BR", "IN",
              "ES", "IT", "NL", "SE", "NO", "PL", "MX", "KR", "ZA", "IE")  # fmt: skip
_FOREIGN_KEYS = (
    ("orders", "customer_id", "customers"),
    ("order_items", "order_id", "orders"),
    ("order_items", "product_id", "products"),
)
_WORDS = ("Widget", "Gadget", "Gizmo", "Doohickey", "Sprocket")

_STATUS = (
    "CASE WHEN (x * 31) % 100 < 80 THEN 'delivered' WHEN (x * 31) % 100 < 90 THEN 'shipped' "
    "WHEN (x * 31) % 100 < 95 THEN 'pending' WHEN (x * 31) % 100 < 99 THEN 'cancelled' "
    "ELSE 'refunded' END"
)
_KIND = (
    "CASE WHEN (x * 37) % 100 < 70 THEN 'view' WHEN (x * 37) % 100 < 90 THEN 'click' "
    "WHEN (x * 37) % 100 < 96 THEN 'cart' WHEN (x * 37) % 100 < 99 THEN 'purchase' "
    "ELSE 'refund' END"
)


def _pick(values: Sequence[str], expr: str) -> str:
    """SQL choosing ``values[expr % len(values)]`` (portable: a CASE)."""
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE ({expr}) % {len(values)} {whens} END"


def _statements(
    series: Callable[[int], str], ts: Callable[[str, str], str], fk: Callable[[str], str]
) -> list[str]:
    """The schema and the INSERTs: ``series(n)`` yields x = 1..n, ``ts(base, seconds)``
    is a timestamp, ``fk(table)`` an inline foreign key (or "" when added later)."""
    return [
        "CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL UNIQUE, "
        "name text NOT NULL, country text NOT NULL, created_at timestamp NOT NULL)",
        "CREATE TABLE products (id integer PRIMARY KEY, sku text NOT NULL UNIQUE, "
        "name text NOT NULL, category_id integer NOT NULL, price_cents integer NOT NULL)",
        f"CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL{fk('customers')}, "
        "status text NOT NULL, created_at timestamp NOT NULL, total_cents integer NOT NULL)",
        f"CREATE TABLE order_items (id integer PRIMARY KEY, order_id integer NOT NULL{fk('orders')}, "
        f"product_id integer NOT NULL{fk('products')}, quantity integer NOT NULL, "
        "price_cents integer NOT NULL)",
        "CREATE TABLE events (id integer PRIMARY KEY, customer_id integer NOT NULL, "
        "kind text NOT NULL, path text NOT NULL, created_at timestamp NOT NULL)",
        f"INSERT INTO customers SELECT x, 'user' || x || '@example.' || "
        f"{_pick(('com', 'org', 'net'), 'x')}, 'Customer ' || x, {_pick(_COUNTRIES, 'x')}, "
        f"{ts('2022-01-01', 'x * 1200')} FROM {series(CUSTOMERS)}",
        f"INSERT INTO products SELECT x, 'SKU-' || substr('000000' || x, -6, 6), "
        f"'Product ' || x || ' ' || {_pick(_WORDS, 'x')}, (x - 1) / 100 + 1, "
        f"(x * 7919) % 100000 FROM {series(PRODUCTS)}",
        f"INSERT INTO orders SELECT x, (x * 7919) % {CUSTOMERS} + 1, {_STATUS}, "
        f"{ts('2023-01-01', 'x * 420')}, (x * 104729) % 100000 + 100 FROM {series(ORDERS)}",
        f"INSERT INTO order_items SELECT x, (x + 1) / 2, (x * 4391) % {PRODUCTS} + 1, "
        f"x % 5 + 1, (x * 7) % 10000 FROM {series(ORDER_ITEMS)}",
        f"INSERT INTO events SELECT x, (x * 7907) % {CUSTOMERS} + 1, {_KIND}, "
        f"'/product/' || ((x * 13) % {PRODUCTS} + 1), {ts('2024-01-01', 'x * 210')} "
        f"FROM {series(EVENTS)}",
        "CREATE INDEX order_items_order_id ON order_items (order_id)",
        "CREATE INDEX events_customer_created ON events (customer_id, created_at)",
    ]


def create_postgres(conn: Any) -> None:
    """Create and fill the schema through a psycopg connection (autocommit), then VACUUM ANALYZE."""
    for statement in _statements(
        lambda n: f"generate_series(1::bigint, {n}) AS g(x)",
        lambda base, sec: f"timestamp '{base}' + ({sec}) * interval '1 second'",
        lambda table: "",
    ):
        conn.execute(statement.replace("substr('000000' || x, -6, 6)", "lpad(x::text, 6, '0')"))
    # foreign keys after the load: one validating pass instead of a trigger per row
    for table, column, parent in _FOREIGN_KEYS:
        conn.execute(f"ALTER TABLE {table} ADD FOREIGN KEY ({column}) REFERENCES {parent} (id)")
    for table in ("customers", "products", "orders", "order_items", "events"):
        conn.execute(f"VACUUM ANALYZE {table}")


def create_sqlite(path: str) -> None:
    """Create and fill the schema in a new SQLite file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in _statements(
            lambda n: (
                f"(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n}) SELECT x FROM s)"
            ),
            lambda base, sec: f"datetime('{base}', '+' || ({sec}) || ' seconds')",
            lambda table: f" REFERENCES {table} (id)",
        ):
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


def workload_sql() -> str:
    """The queries as a SQL file's text (one statement per line)."""
    return "".join(f"{q.sql};\n" for q in QUERIES)


@dataclasses.dataclass(frozen=True)
class Score:
    """The advisor's precision and recall against the answer key.

    A query is a true positive when an index recommended for it has the
    expected table and key prefix; a false positive when an index is
    recommended for a query that should get none, or the wrong one; a false
    negative when an expected index is missing or wrong.
    """

    true_positives: int
    false_positives: int
    false_negatives: int
    mistakes: tuple[str, ...]

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0


def score(advice: Any, kind: str) -> Score:
    """Compare an :class:`~perfpilot.dbadvisor.advisor.Advice` with :data:`QUERIES`."""
    from perfpilot.instrument.fingerprint import fingerprint

    by_fingerprint = {fingerprint(q.sql, kind)[0]: q for q in QUERIES}
    recommended: dict[str, tuple[str, tuple[str, ...]]] = {}
    for rec in advice.recommendations:
        for trial in rec.trials:
            query = advice.outcomes[trial.query].query
            recommended[query.fingerprint] = (rec.candidate.table, rec.candidate.columns)
    tp = fp = fn = 0
    mistakes = []
    for fid, query in by_fingerprint.items():
        got = recommended.get(fid)
        want = query.expect
        ok = (
            got is not None
            and want is not None
            and got[0] == want[0]
            and got[1][: len(want[1])] == want[1]
        )
        if ok:
            tp += 1
            continue
        if got is not None:
            fp += 1
        if want is not None:
            fn += 1
        if got is not None or want is not None:
            mistakes.append(f"{query.name}: expected {want}, got {got}")
    return Score(tp, fp, fn, tuple(mistakes))
