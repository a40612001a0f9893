"""The demo shop: a Starlette app with healthy endpoints and seeded performance problems.

Each endpoint in :data:`ENDPOINTS` names the problem it carries (a
:class:`Problem`, or None when healthy), so tests and the end-to-end demo can
check that perfpilot finds exactly these. The database comes from
:func:`perfpilot.demo.seed.seed_database`; the paid LLM API is the local stub
of :mod:`perfpilot.demo.llm_stub`.

Every response that touched the database or the LLM API carries two debug
headers: ``X-Demo-Queries`` (SQL statements run) and ``X-Demo-Outbound-Calls``
(HTTP calls made). They let tests check a problem is really there; perfpilot's
own collectors must not rely on them.

Endpoints are plain functions, so Starlette runs them in its thread pool, which
is how most synchronous Python web code runs in production.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sqlite3
import time
import zlib
from types import TracebackType
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import perfpilot
from perfpilot.demo.llm_stub import CHAT_MODEL, EMBEDDING_MODEL
from perfpilot.demo.seed import ORDERS_FIRST_DAY, customer_email
from perfpilot.errors import UsageError

QUERIES_HEADER = "X-Demo-Queries"
OUTBOUND_HEADER = "X-Demo-Outbound-Calls"
CACHE_HEADER = "X-Demo-Cache"
CACHE_ENTRIES_HEADER = "X-Demo-Cache-Entries"

DEMO_API_KEY = "sk-demo-0000000000000000"
"""The fake key sent to the LLM stub (it only checks that one is present)."""

SIMILAR_DEFAULT_N = 800
REPORT_WINDOW_DAYS = 30
EXPORT_DEFAULT_LIMIT = 15_000
RECOMMENDATION_SECTIONS = ("because_you_bought", "trending_for_you", "complete_the_set")


class Problem(enum.StrEnum):
    """The performance problems seeded in the demo app."""

    N_PLUS_ONE = "n_plus_one"
    UNINDEXED_LOOKUP = "unindexed_lookup"
    SLOW_EXTERNAL_CALL = "slow_external_call"
    REPEATED_EXTERNAL_CALL = "repeated_external_call"
    UNBOUNDED_CACHE = "unbounded_cache"
    CPU_HOTSPOT = "cpu_hotspot"
    LARGE_RESPONSE = "large_response"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One route of the demo app.

    Attributes:
        name: Stable short name; the request name in the demo scenario.
        method: HTTP method.
        route: The Starlette route template, convertors included
            (``/products/{product_id:int}``).
        example: A concrete path and query that answers 200 on any demo
            database seeded with at least :data:`perfpilot.demo.seed.MIN_CUSTOMERS`
            customers and :data:`perfpilot.demo.seed.MIN_PRODUCTS` products.
        problem: The seeded problem, or None for a healthy endpoint.
        description: One line for humans.
    """

    name: str
    method: str
    route: str
    example: str
    problem: Problem | None
    description: str


_EXAMPLE_CUSTOMER = 1777
_EXAMPLE_PRODUCT = 42

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("health", "GET", "/health", "/health", None, "tiny liveness answer"),
    Endpoint(
        "product",
        "GET",
        "/products/{product_id:int}",
        f"/products/{_EXAMPLE_PRODUCT}",
        None,
        "primary-key lookup",
    ),
    Endpoint(
        "orders_recent",
        "GET",
        "/orders/recent",
        "/orders/recent?limit=20",
        None,
        "latest orders with their customer: one indexed query with a JOIN",
    ),
    Endpoint(
        "orders_with_items",
        "GET",
        "/orders/with-items",
        "/orders/with-items?limit=30",
        Problem.N_PLUS_ONE,
        "latest orders, then one query per order for its items",
    ),
    Endpoint(
        "customer_by_email",
        "GET",
        "/customers/by-email",
        f"/customers/by-email?email={customer_email(_EXAMPLE_CUSTOMER)}",
        Problem.UNINDEXED_LOOKUP,
        "lookup on customers.email, which has no index: a full table scan",
    ),
    Endpoint(
        "summarize",
        "GET",
        "/summarize",
        f"/summarize?product_id={_EXAMPLE_PRODUCT}",
        Problem.SLOW_EXTERNAL_CALL,
        "asks the paid LLM API for a product summary (150-300 ms)",
    ),
    Endpoint(
        "recommendations",
        "GET",
        "/recommendations/{customer_id:int}",
        f"/recommendations/{_EXAMPLE_CUSTOMER}",
        Problem.REPEATED_EXTERNAL_CALL,
        "embeds the same customer profile once per section: identical API calls",
    ),
    Endpoint(
        "report_cached",
        "GET",
        "/report/cached",
        "/report/cached?key=example",
        Problem.UNBOUNDED_CACHE,
        "caches every report forever in a module-level dict keyed by the query",
    ),
    Endpoint(
        "stats_similar",
        "GET",
        "/stats/similar",
        "/stats/similar",
        Problem.CPU_HOTSPOT,
        "compares every pair of products in pure Python: O(n^2)",
    ),
    Endpoint(
        "export_products",
        "GET",
        "/export/products",
        "/export/products",
        Problem.LARGE_RESPONSE,
        "the product catalogue as one uncompressed JSON document of several MB",
    ),
)


@dataclasses.dataclass(frozen=True)
class _CachedReport:
    """A report as the cache keeps it: its rows (for other renderings) and its JSON."""

    rows: list[dict[str, Any]]
    body: bytes


# The seeded memory leak: every distinct key adds a report (its rows and its
# rendered JSON, about 100 KB) that is never evicted. Deliberately module-level,
# as such caches usually are.
_REPORT_CACHE: dict[str, _CachedReport] = {}


class _Work:
    """Per-request database connection and LLM client, counting what they do."""

    def __init__(self, db_path: str, llm_url: str, llm_timeout_s: float) -> None:
        self._db_path = db_path
        self._llm_url = llm_url
        self._llm_timeout_s = llm_timeout_s
        self._conn: sqlite3.Connection | None = None
        self.queries = 0
        self.outbound_calls = 0

    def __enter__(self) -> _Work:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _count(self, statement: str) -> None:
        self.queries += 1

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run one statement and return all rows."""
        if self._conn is None:
            self._conn = sqlite3.connect(self._db_path, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            # Counts what SQLite really executes, not what the code meant to run.
            self._conn.set_trace_callback(self._count)
        return self._conn.execute(query, params).fetchall()

    def llm(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to the LLM API; failures become 502 responses."""
        self.outbound_calls += 1
        try:
            response = _llm_client(self._llm_timeout_s).post(
                self._llm_url + path,
                json=payload,
                headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
            )
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise HTTPException(502, f"LLM API call to {path} failed: {exc}") from exc
        return answer

    def respond(self, payload: Any, **headers: str) -> JSONResponse:
        """A JSON response carrying the debug headers."""
        return JSONResponse(payload, headers=self.headers() | headers)

    def headers(self) -> dict[str, str]:
        """The debug headers for this request."""
        return {QUERIES_HEADER: str(self.queries), OUTBOUND_HEADER: str(self.outbound_calls)}


_clients: dict[float, httpx.Client] = {}


def _llm_client(timeout_s: float) -> httpx.Client:
    """One pooled client per timeout. Proxies from the environment must not
    capture calls to a stub on 127.0.0.1, hence ``trust_env=False``."""
    client = _clients.get(timeout_s)
    if client is None:
        client = _clients[timeout_s] = httpx.Client(timeout=timeout_s, trust_env=False)
    return client


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def _required_param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise HTTPException(400, f"the query parameter {name!r} is required")
    return value


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(db_path: str, llm_url: str, *, llm_timeout_s: float = 10.0) -> Starlette:
    """Build the demo shop app.

    Args:
        db_path: A database made by :func:`perfpilot.demo.seed.seed_database`.
        llm_url: Base URL of the LLM API stub, e.g. ``http://127.0.0.1:8081``.
        llm_timeout_s: Timeout of each call to the LLM API, in seconds.

    Returns:
        The ASGI app. Its report cache is module-level on purpose (it is the
        seeded leak), so apps built in one process share it.

    Raises:
        UsageError: When ``db_path`` does not exist.

    Example:
        >>> db = ".perfpilot/demo/demo.sqlite3"
        >>> app = create_app(db, "http://127.0.0.1:8081")  # doctest: +SKIP
    """
    if not os.path.isfile(db_path):
        raise UsageError(f"no demo database at {db_path}; seed one with seed_database()")
    llm_url = llm_url.rstrip("/")

    def work() -> _Work:
        return _Work(db_path, llm_url, llm_timeout_s)

    def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def product(request: Request) -> JSONResponse:
        with work() as w:
            product_id = request.path_params["product_id"]
            rows = w.sql("SELECT * FROM products WHERE id = ?", (product_id,))
            if not rows:
                raise HTTPException(404, "no such product")
            return w.respond(dict(rows[0]))

    def orders_recent(request: Request) -> JSONResponse:
        limit = _int_param(request, "limit", 20, 1, 100)
        with work() as w:
            rows = w.sql(
                "SELECT o.id, o.status, o.total_cents, o.created_at,"
                " c.id AS customer_id, c.name AS customer_name"
                " FROM orders o JOIN customers c ON c.id = o.customer_id"
                " ORDER BY o.created_at DESC LIMIT ?",
                (limit,),
            )
            return w.respond({"orders": [dict(r) for r in rows]})

    def orders_with_items(request: Request) -> JSONResponse:
        limit = _int_param(request, "limit", 30, 1, 50)
        with work() as w:
            orders = [
                dict(r)
                for r in w.sql(
                    "SELECT id, customer_id, status, total_cents, created_at"
                    " FROM orders ORDER BY created_at DESC LIMIT ?",
                    (limit,),
                )
            ]
            for order in orders:  # the N+1: one query per order instead of one IN (...)
                order["items"] = [
                    dict(r)
                    for r in w.sql(
                        "SELECT product_id, quantity, unit_price_cents"
                        " FROM order_items WHERE order_id = ?",
                        (order["id"],),
                    )
                ]
            return w.respond({"orders": orders})

    def customer_by_email(request: Request) -> JSONResponse:
        email = _required_param(request, "email")
        with work() as w:
            rows = w.sql(
                "SELECT id, name, email, created_at FROM customers WHERE email = ?", (email,)
            )
            if not rows:
                raise HTTPException(404, "no customer with this e-mail")
            return w.respond(dict(rows[0]))

    def summarize(request: Request) -> JSONResponse:
        product_id = _int_param(request, "product_id", 0, 1, 2**62)
        if product_id == 0:
            raise HTTPException(400, "the query parameter 'product_id' is required")
        with work() as w:
            rows = w.sql(
                "SELECT id, name, category, description FROM products WHERE id = ?",
                (product_id,),
            )
            if not rows:
                raise HTTPException(404, "no such product")
            item = rows[0]
            answer = w.llm(
                "/v1/chat/completions",
                {
                    "model": CHAT_MODEL,
                    "messages": [
                        {"role": "system", "content": "You write one-line product summaries."},
                        {
                            "role": "user",
                            "content": f"Summarize {item['name']} ({item['category']}): "
                            f"{item['description']}",
                        },
                    ],
                    "max_tokens": 120,
                },
            )
            perfpilot.unit("summary")
            return w.respond(
                {
                    "product_id": product_id,
                    "summary": answer["choices"][0]["message"]["content"],
                    "model": answer["model"],
                    "usage": answer["usage"],
                }
            )

    def recommendations(request: Request) -> JSONResponse:
        customer_id = request.path_params["customer_id"]
        with work() as w:
            customer = w.sql("SELECT id, name FROM customers WHERE id = ?", (customer_id,))
            if not customer:
                raise HTTPException(404, "no such customer")
            categories = [
                r["category"]
                for r in w.sql(
                    "SELECT DISTINCT p.category FROM orders o"
                    " JOIN order_items i ON i.order_id = o.id"
                    " JOIN products p ON p.id = i.product_id"
                    " WHERE o.customer_id = ? LIMIT 3",
                    (customer_id,),
                )
            ] or ["books", "home"]
            profile = f"customer {customer_id} buys {', '.join(categories)}"
            sections: dict[str, list[dict[str, Any]]] = {}
            for offset, section in enumerate(RECOMMENDATION_SECTIONS):
                # The seeded problem: each section embeds the same profile again
                # instead of computing it once per request.
                vector = w.llm("/v1/embeddings", {"model": EMBEDDING_MODEL, "input": profile})
                weights = vector["data"][0]["embedding"]
                category = categories[offset % len(categories)]
                candidates = w.sql(
                    "SELECT id, name, price_cents, rating FROM products"
                    " WHERE category = ? ORDER BY rating DESC LIMIT 20",
                    (category,),
                )
                ranked = sorted(
                    candidates,
                    key=lambda r: -r["rating"] - weights[r["id"] % len(weights)],
                )
                sections[section] = [dict(r) for r in ranked[:5]]
            perfpilot.unit("recommendation")
            return w.respond({"customer_id": customer_id, "sections": sections})

    def report_cached(request: Request) -> Response:
        key = _required_param(request, "key")
        looked_up = time.perf_counter()
        cached = _REPORT_CACHE.get(key)
        perfpilot.cache_event(
            "report_cache", hit=cached is not None, duration_s=time.perf_counter() - looked_up
        )
        if cached is not None:
            return Response(
                cached.body,
                media_type="application/json",
                headers={
                    CACHE_HEADER: "hit",
                    CACHE_ENTRIES_HEADER: str(len(_REPORT_CACHE)),
                    QUERIES_HEADER: "0",
                    OUTBOUND_HEADER: "0",
                },
            )
        with work() as w:
            # A 30-day window chosen by the key, so each key is a different report.
            offset_days = 700 * (zlib.crc32(key.encode()) % 1000) // 1000
            rows = w.sql(
                "SELECT substr(created_at, 1, 10) AS day, status, COUNT(*) AS orders,"
                " COUNT(DISTINCT customer_id) AS customers, SUM(total_cents) AS revenue_cents,"
                " AVG(total_cents) AS avg_order_cents, MIN(total_cents) AS min_order_cents,"
                " MAX(total_cents) AS max_order_cents, MIN(created_at) AS first_order_at,"
                " MAX(created_at) AS last_order_at"
                " FROM orders WHERE created_at >= date(?, ?) AND created_at < date(?, ?)"
                " GROUP BY day, status ORDER BY day, status",
                (
                    ORDERS_FIRST_DAY,
                    f"+{offset_days} days",
                    ORDERS_FIRST_DAY,
                    f"+{offset_days + REPORT_WINDOW_DAYS} days",
                ),
            )
            report = [dict(r) for r in rows]
            body = json.dumps(
                {"key": key, "window_days": REPORT_WINDOW_DAYS, "rows": report},
                separators=(",", ":"),
            ).encode()
            _REPORT_CACHE[key] = _CachedReport(report, body)
            return Response(
                body,
                media_type="application/json",
                headers=w.headers()
                | {CACHE_HEADER: "miss", CACHE_ENTRIES_HEADER: str(len(_REPORT_CACHE))},
            )

    def stats_similar(request: Request) -> JSONResponse:
        n = _int_param(request, "n", SIMILAR_DEFAULT_N, 2, 5_000)
        with work() as w:
            # One row from SQLite, not n: sqlite3 hands the GIL back at every
            # row it steps to, and while other threads run this loop, each
            # hand-back can wait a switch interval (5 ms), which would make a
            # cheap read look slow and hide where the time really goes.
            document = w.sql(
                "SELECT json_group_array(json_array(id, price_cents, rating, category)) "
                "FROM (SELECT id, price_cents, rating, category FROM products "
                "ORDER BY id LIMIT ?)",
                (n,),
            )[0][0]
            rows = [tuple(row) for row in json.loads(document)]
            # The seeded hotspot: every pair, in pure Python.
            pairs = 0
            closest: tuple[int, int, int] | None = None
            for i, (id_a, price_a, rating_a, cat_a) in enumerate(rows):
                for id_b, price_b, rating_b, cat_b in rows[i + 1 :]:
                    gap = abs(price_a - price_b)
                    if cat_a == cat_b and gap < 2_000 and abs(rating_a - rating_b) < 0.5:
                        pairs += 1
                        if closest is None or gap < closest[0]:
                            closest = (gap, id_a, id_b)
            return w.respond(
                {
                    "products": len(rows),
                    "compared_pairs": len(rows) * (len(rows) - 1) // 2,
                    "similar_pairs": pairs,
                    "closest": None if closest is None else list(closest[1:]),
                }
            )

    def export_products(request: Request) -> JSONResponse:
        limit = _int_param(request, "limit", EXPORT_DEFAULT_LIMIT, 1, 100_000)
        with work() as w:
            rows = w.sql("SELECT * FROM products ORDER BY id LIMIT ?", (limit,))
            return w.respond({"count": len(rows), "products": [dict(r) for r in rows]})

    handlers = {
        "health": health,
        "product": product,
        "orders_recent": orders_recent,
        "orders_with_items": orders_with_items,
        "customer_by_email": customer_by_email,
        "summarize": summarize,
        "recommendations": recommendations,
        "report_cached": report_cached,
        "stats_similar": stats_similar,
        "export_products": export_products,
    }
    routes = [Route(e.route, handlers[e.name], methods=[e.method], name=e.name) for e in ENDPOINTS]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
