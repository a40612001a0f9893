"""Build the demo's SQLite database: a small shop with customers, products and orders.

The data are deterministic (one :class:`random.Random` seeded by ``seed``), so
the same arguments always give the same database, and the sample app's example
URLs (a product id, a customer's e-mail) exist in every database built with at
least :data:`MIN_CUSTOMERS` customers and :data:`MIN_PRODUCTS` products.

The schema has the indexes a careful developer would add, except one:
``customers.email`` has none, so a lookup by e-mail scans the whole table.

Seeding writes a temporary file next to the target and moves it into place with
:func:`os.replace` only when it is complete, so a crash never leaves a
half-seeded database that looks usable. A complete database built with the same
arguments is reused, so repeated demos start in well under a second.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of a complete demo database; bump when the schema changes."""

DEFAULT_CUSTOMERS = 200_000
DEFAULT_PRODUCTS = 20_000
DEFAULT_ORDERS = 100_000
DEFAULT_MAX_ITEMS_PER_ORDER = 5
DEFAULT_SEED = 20240601

ORDERS_FIRST_DAY = "2023-01-01"
"""Orders are spread evenly over the two years from this day (UTC), whatever their count."""

MIN_CUSTOMERS = 2_000
"""The smallest customer count for which every example URL of the app resolves."""
MIN_PRODUCTS = 200
"""The smallest product count for which every example URL of the app resolves."""

CATEGORIES: tuple[str, ...] = (
    "audio",
    "books",
    "cameras",
    "garden",
    "grocery",
    "health",
    "home",
    "kitchen",
    "laptops",
    "lighting",
    "music",
    "office",
    "outdoor",
    "pets",
    "phones",
    "shoes",
    "sports",
    "tools",
    "toys",
    "travel",
)

_FIRST_NAMES = (
    "Ada", "Alan", "Alice", "Amir", "Ana", "Arjun", "Ben", "Bruno", "Chen", "Chloe",
    "Dana", "David", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines",
    "Ivan", "Jade", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Lucas",
    "Maya", "Mehdi", "Mia", "Nadia", "Nils", "Noah", "Olga", "Omar", "Paula", "Priya",
    "Quinn", "Rafael", "Rosa", "Sam", "Sara", "Tomas", "Uma", "Victor", "Wei", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Abe", "Almeida", "Bauer", "Berg", "Costa", "Cruz", "Dubois", "Eriksen", "Fischer",
    "Garcia", "Gupta", "Haas", "Hughes", "Ito", "Jensen", "Kim", "Kowalski", "Lambert",
    "Lopez", "Meyer", "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Patel", "Peters",
    "Quist", "Rossi", "Sato", "Schmidt", "Silva", "Singh", "Smith", "Tanaka", "Torres",
    "Ueda", "Varga", "Vogel", "Walker", "Weber", "Wong", "Xu", "Yilmaz", "Young", "Zhang",
)  # fmt: skip
_ADJECTIVES = (
    "Compact", "Classic", "Deluxe", "Eco", "Ergonomic", "Everyday", "Lightweight", "Modern",
    "Portable", "Premium", "Pro", "Rugged", "Smart", "Sturdy", "Ultra", "Vintage",
)  # fmt: skip
_NOUNS = (
    "Backpack", "Blender", "Camera", "Chair", "Charger", "Desk", "Drill", "Headphones",
    "Kettle", "Lamp", "Monitor", "Mug", "Notebook", "Speaker", "Tent", "Watch",
)  # fmt: skip
_WORDS = (
    "durable", "quiet", "fast", "reliable", "simple", "elegant", "efficient", "robust",
    "versatile", "comfortable", "bright", "safe", "washable", "recyclable", "adjustable",
    "wireless", "waterproof", "foldable", "handmade", "certified",
)  # fmt: skip
_STATUSES = ("paid", "paid", "paid", "shipped", "shipped", "delivered", "refunded")

_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,            -- deliberately not indexed: lookups by e-mail scan
    created_at TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    rating REAL NOT NULL,
    stock INTEGER NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX products_category ON products (category);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    status TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE demo_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Indexes are built after the bulk insert: one sort is much faster than
# maintaining a B-tree row by row.
_INDEXES = """
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX order_items_order_id ON order_items (order_id);
"""

_CUSTOMERS_SINCE = 1_577_836_800  # 2020-01-01 UTC
_ORDERS_SINCE = 1_672_531_200  # 2023-01-01 UTC
_ORDERS_SPAN_S = 2 * 365 * 86_400


@dataclasses.dataclass(frozen=True)
class SeedReport:
    """What :func:`seed_database` did.

    Attributes:
        path: The database file.
        rows: Row count per table.
        reused: True when a complete database built with the same arguments
            was already there and nothing was written.
        duration_s: Wall time spent, in seconds.
    """

    path: str
    rows: dict[str, int]
    reused: bool
    duration_s: float

    @property
    def total_rows(self) -> int:
        """Rows over all tables."""
        return sum(self.rows.values())


def customer_email(customer_id: int) -> str:
    """Return the e-mail address of a demo customer.

    It depends only on the id, so example URLs can name a customer that exists.

    Args:
        customer_id: The customer's id (1-based).

    Returns:
        An address such as ``"ines.walker1777@example.com"``.
    """
    first, last = _customer_names(customer_id)
    return f"{first.lower()}.{last.lower()}{customer_id}@example.com"


def _customer_names(customer_id: int) -> tuple[str, str]:
    mixed = (customer_id * 2_654_435_761) & 0xFFFF_FFFF  # Knuth's multiplicative hash
    return _FIRST_NAMES[mixed % len(_FIRST_NAMES)], _LAST_NAMES[(mixed >> 8) % len(_LAST_NAMES)]


def seed_database(
    path: str | os.PathLike[str],
    *,
    customers: int = DEFAULT_CUSTOMERS,
    products: int = DEFAULT_PRODUCTS,
    orders: int = DEFAULT_ORDERS,
    max_items_per_order: int = DEFAULT_MAX_ITEMS_PER_ORDER,
    seed: int = DEFAULT_SEED,
) -> SeedReport:
    """Create the demo database at ``path``, or reuse it when already complete.

    Args:
        path: The database file; its directory is created when missing.
        customers: Rows in ``customers`` (at least 1).
        products: Rows in ``products`` (at least 1).
        orders: Rows in ``orders``.
        max_items_per_order: Each order gets 1 to this many ``order_items``.
        seed: Seed of the random generator; same arguments, same database.

    Returns:
        What was done, with the row count of each table.

    Raises:
        ValueError: When a count is out of range.

    Example:
        >>> report = seed_database(".perfpilot/demo/demo.sqlite3")  # doctest: +SKIP
        >>> report.total_rows > 200_000  # doctest: +SKIP
        True
    """
    if customers < 1 or products < 1 or orders < 0 or max_items_per_order < 1:
        raise ValueError(
            "seed_database needs customers >= 1, products >= 1, orders >= 0 and "
            f"max_items_per_order >= 1, got {customers}, {products}, {orders}, "
            f"{max_items_per_order}"
        )
    started = time.perf_counter()
    target = Path(path)
    spec = {
        "customers": customers,
        "products": products,
        "orders": orders,
        "max_items_per_order": max_items_per_order,
        "seed": seed,
    }
    rows = _complete_rows(target, spec)
    if rows is not None:
        return SeedReport(str(target), rows, True, time.perf_counter() - started)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    _remove_database_files(tmp)
    try:
        rows = _build(tmp, spec)
        # A leftover WAL of an older database at the target would be replayed into
        # the new file; it only exists if a process died with the old one open.
        _remove_database_files(target, keep_main=True)
        os.replace(tmp, target)
    except BaseException:
        _remove_database_files(tmp)
        raise
    return SeedReport(str(target), rows, False, time.perf_counter() - started)


def is_seeded(path: str | os.PathLike[str]) -> bool:
    """Return True when ``path`` holds a complete demo database (any arguments)."""
    return _complete_rows(Path(path), None) is not None


def _complete_rows(path: Path, spec: dict[str, int] | None) -> dict[str, int] | None:
    """Row counts when ``path`` is complete and was built from ``spec``, else None."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            return None
        meta = dict(conn.execute("SELECT key, value FROM demo_meta").fetchall())
        if spec is not None and json.loads(meta.get("spec", "null")) != spec:
            return None
        rows: dict[str, int] = json.loads(meta["rows"])
        return rows
    except (sqlite3.Error, KeyError, ValueError):
        return None
    finally:
        conn.close()


def _remove_database_files(path: Path, *, keep_main: bool = False) -> None:
    suffixes = ("-wal", "-shm", "-journal") if keep_main else ("", "-wal", "-shm", "-journal")
    for suffix in suffixes:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _build(path: Path, spec: dict[str, int]) -> dict[str, int]:
    rng = random.Random(spec["seed"])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A throw-away file until os.replace: no journal, no fsync.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)", _customers(rng, spec["customers"])
        )
        prices: list[int] = []
        conn.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            _products(rng, spec["products"], prices),
        )
        items: list[tuple[int, int, int, int, int]] = []
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            _orders(rng, spec, prices, items),
        )
        conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
        conn.executescript(_INDEXES)  # commits the open transaction first
        rows = {
            "customers": spec["customers"],
            "products": spec["products"],
            "orders": spec["orders"],
            "order_items": len(items),
        }
        conn.executemany(
            "INSERT INTO demo_meta VALUES (?, ?)",
            [("spec", json.dumps(spec, sort_keys=True)), ("rows", json.dumps(rows))],
        )
        conn.execute("ANALYZE")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        # WAL lets the app's reader threads run beside any later writer; the
        # setting is stored in the file.
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return rows


def _timestamp(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_s))


def _customers(rng: random.Random, count: int) -> Iterator[tuple[int, str, str, str]]:
    span = _ORDERS_SINCE - _CUSTOMERS_SINCE
    random = rng.random  # int(random() * n) is several times faster than randrange(n)
    for cid in range(1, count + 1):
        first, last = _customer_names(cid)
        created = _CUSTOMERS_SINCE + int(span * cid / count) + int(random() * 86_400)
        email = f"{first.lower()}.{last.lower()}{cid}@example.com"
        yield cid, f"{first} {last}", email, _timestamp(created)


def _products(
    rng: random.Random, count: int, prices: list[int]
) -> Iterator[tuple[int, str, str, str, int, float, int, str]]:
    for pid in range(1, count + 1):
        category = CATEGORIES[pid % len(CATEGORIES)]
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {pid}"
        price = rng.randrange(199, 99_999)
        prices.append(price)
        words = " ".join(rng.sample(_WORDS, 6))
        description = f"{name}: a {words} pick from our {category} range."
        rating = round(rng.uniform(1.0, 5.0), 1)
        yield pid, f"SKU-{pid:06d}", name, category, price, rating, rng.randrange(500), description


def _orders(
    rng: random.Random,
    spec: dict[str, int],
    prices: list[int],
    items: list[tuple[int, int, int, int, int]],
) -> Iterator[tuple[int, int, str, int, str]]:
    n_orders, n_customers, n_products = spec["orders"], spec["customers"], spec["products"]
    max_items = spec["max_items_per_order"]
    item_id = 0
    step = _ORDERS_SPAN_S / max(n_orders, 1)
    random = rng.random  # int(random() * n) is several times faster than randrange(n)
    n_statuses = len(_STATUSES)
    append = items.append
    for oid in range(1, n_orders + 1):
        total = 0
        for _ in range(1 + int(random() * max_items)):
            item_id += 1
            pid = 1 + int(random() * n_products)
            qty = 1 + int(random() * 3)
            unit = prices[pid - 1]
            total += qty * unit
            append((item_id, oid, pid, qty, unit))
        customer_id = 1 + int(random() * n_customers)
        status = _STATUSES[int(random() * n_statuses)]
        # Order ids grow with time, as in a real shop.
        created = _ORDERS_SINCE + int(oid * step)
        yield oid, customer_id, status, total, _timestamp(created)
