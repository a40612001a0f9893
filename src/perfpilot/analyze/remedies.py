"""The code the findings tell people to paste: one builder per remedy.

Detectors know *what* is wrong; these functions write the change in the forms
people use (SQLAlchemy, Django, raw SQL; Starlette/FastAPI, Flask, Django),
filled in with the tables, columns and routes the evidence names. Names that
cannot be known from monitoring data (model classes, relationship attributes)
are derived from table and column names and marked as guesses in a comment.
"""

from __future__ import annotations

import re

from perfpilot.analyze.sqlshape import in_list_form, shape


def _model_name(table: str) -> str:
    """``order_items`` → ``OrderItem``: the class name an ORM usually gives a table."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", table) if w]
    if words and words[-1].endswith("s") and not words[-1].endswith("ss"):
        words[-1] = words[-1][:-1]
    return "".join(w[:1].upper() + w[1:] for w in words) or "Model"


def n_plus_one_code(sql: str, db: str) -> tuple[str, str]:
    """Code that loads a per-parent lookup in one query; returns ``(code, language)``.

    The parent comes from the lookup column (``order_id`` → ``Order``), the
    children from the table (``order_items``); both are guesses to adjust.
    """
    facts = shape(sql, db)
    child_table = facts.tables[0] if facts.tables else "children"
    column = facts.lookup_columns[0] if len(facts.lookup_columns) == 1 else "parent_id"
    parent = _model_name(column[:-3] if column.endswith("_id") else column)
    child = _model_name(child_table)
    relation = child_table
    in_sql = in_list_form(sql, db) or f"SELECT ... FROM {child_table} WHERE {column} IN (...)"
    in_sql_template = re.sub(r"IN \(\?, \?, \?\)", "IN ({marks})", in_sql)
    code = f'''# Load the {child_table} of all parents at once instead of one query per parent.
# ({parent}, {child} and .{relation} are guesses from the table and column names.)

# SQLAlchemy: one extra SELECT ... WHERE {column} IN (...) for all parents
from sqlalchemy import select
from sqlalchemy.orm import selectinload  # or joinedload for a one-to-one / many-to-one

parents = session.scalars(select({parent}).options(selectinload({parent}.{relation}))).all()

# Django: prefetch_related for reverse foreign keys and many-to-many,
# select_related for forward foreign keys (a JOIN)
parents = {parent}.objects.prefetch_related("{relation}")

# Raw SQL: one query for all parent ids, grouped in Python
ids = [parent["id"] for parent in parents]
marks = ", ".join("?" * len(ids))
rows = conn.execute(f"{in_sql_template}", ids).fetchall()
by_parent = {{}}
for row in rows:
    by_parent.setdefault(row["{column}"], []).append(row)
'''
    return code, "python"


def index_sql(table: str, columns: tuple[str, ...]) -> str:
    """``CREATE INDEX`` for an equality lookup on ``columns`` of ``table``."""
    name = "ix_" + "_".join((table, *columns))
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)[:63]
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)});"


def pagination_code(sql: str) -> tuple[str, str]:
    """Keyset pagination for a statement that returns too many rows at once."""
    facts = shape(sql)
    table = facts.tables[0] if facts.tables else "items"
    code = f"""-- Return one page at a time (keyset pagination: fast at any depth, unlike OFFSET).
-- First page:
SELECT id, ... FROM {table} ORDER BY id LIMIT 100;
-- Next page: pass the last id of the previous page.
SELECT id, ... FROM {table} WHERE id > ? ORDER BY id LIMIT 100;
"""
    return code, "sql"


def select_columns_code(sql: str) -> tuple[str, str]:
    """The statement with ``*`` replaced by a placeholder column list."""
    columns = r"SELECT \1id, name  -- only the columns used"
    replaced = re.sub(r"SELECT\s+(\w+\.)?\*", columns, sql, count=1)
    return f"-- Name the columns the code reads instead of *:\n{replaced}", "sql"


def memoize_code(name: str, ttl_s: int = 300, method: str = "POST") -> tuple[str, str]:
    """A per-process TTL cache around a function that makes an outbound call,
    keyed by what makes calls identical (method and URL fixed, the payload)."""
    send = (
        "client.get(URL, params=payload, timeout=10.0)"
        if method.upper() in ("GET", "HEAD", "DELETE")
        else f"client.request({method.upper()!r}, URL, json=payload, timeout=10.0)"
        if method.upper() != "POST"
        else "client.post(URL, json=payload, timeout=10.0)"
    )
    code = f"""# Make the identical call once: hoist it out of the loop (once per request),
# or memoize it across requests with a bounded, expiring cache keyed by the payload.
import json

import cachetools  # pip install cachetools

_{name}_cache: cachetools.TTLCache = cachetools.TTLCache(maxsize=10_000, ttl={ttl_s})

@cachetools.cached(_{name}_cache, key=lambda payload: json.dumps(payload, sort_keys=True))
def {name}(payload: dict) -> dict:
    response = {send}
    response.raise_for_status()
    return response.json()

# Standard library only, no expiry: functools.lru_cache(maxsize=10_000) on a function
# of hashable arguments (e.g. the payload's JSON text).
"""
    return code, "python"


def concurrent_calls_code() -> tuple[str, str]:
    """Independent outbound calls started together instead of one after the other."""
    code = """# The calls do not depend on each other: start them together.
# async code (httpx.AsyncClient):
import asyncio

first, second = await asyncio.gather(client.get(URL_A), client.get(URL_B))

# sync code (requests / httpx.Client):
from concurrent.futures import ThreadPoolExecutor

with ThreadPoolExecutor(max_workers=4) as pool:
    first, second = pool.map(lambda url: session.get(url, timeout=5), [URL_A, URL_B])
"""
    return code, "python"


def slow_call_code(ttl_s: int = 3600) -> tuple[str, str]:
    """Keep a slow (and often paid) call off the hot path: cache by input, bound its time."""
    code = f"""# The same request gives the same answer: cache it by payload, and bound the wait.
import json

import cachetools  # pip install cachetools

_answers: cachetools.TTLCache = cachetools.TTLCache(maxsize=10_000, ttl={ttl_s})

def call_api(payload: dict) -> dict:
    key = json.dumps(payload, sort_keys=True)
    answer = _answers.get(key)
    if answer is None:
        response = client.post(URL, json=payload, timeout=2.0)  # never wait forever
        response.raise_for_status()
        answer = _answers[key] = response.json()
    return answer

# Answers that must be fresh: compute them in a background job and serve the stored result.
"""
    return code, "python"


def bounded_cache_code(cache: str) -> tuple[str, str]:
    """A bounded, expiring cache in place of a dict that only grows."""
    code = f"""# A cache needs a bound and keys that repeat. Replace the unbounded dict:
import cachetools

{cache}: cachetools.TTLCache = cachetools.TTLCache(maxsize=1_000, ttl=600)

# or, around a pure function:  @functools.lru_cache(maxsize=1_000)
# If keys never repeat (a cache key that includes a unique value), the cache
# cannot help: key it by what determines the answer, or drop it.
"""
    return code, "python"


def leak_hunt_code() -> tuple[str, str]:
    """tracemalloc: which lines hold the memory that grows."""
    code = """# Find what holds the growing memory: compare two tracemalloc snapshots.
import tracemalloc

tracemalloc.start(25)
before = tracemalloc.take_snapshot()
# ... serve traffic for a few minutes ...
after = tracemalloc.take_snapshot()
for stat in after.compare_to(before, "lineno")[:10]:
    print(stat)
# Usual suspects: module-level dicts used as caches (bound them with
# cachetools.TTLCache / functools.lru_cache(maxsize=...)), lists that collect
# per-request objects, and reference cycles with __del__.
"""
    return code, "python"


def profile_code(route: str) -> tuple[str, str]:
    """pyinstrument around one handler, to find the hot frames."""
    code = f"""# Profile one request of {route} to find the hot frames:
from pyinstrument import Profiler

with Profiler(interval=0.001) as profiler:
    response = handler(request)
profiler.print()
# Typical fixes: replace Python loops over many items with a database query
# or numpy, precompute or cache the result, avoid O(n^2) pair loops.
"""
    return code, "python"


def compression_code() -> tuple[str, str]:
    """Response compression for the usual Python frameworks."""
    code = """# Compress responses (JSON shrinks 5-10x). Pick your framework:

# Starlette / FastAPI
from starlette.middleware.gzip import GZipMiddleware
app.add_middleware(GZipMiddleware, minimum_size=1000)

# Flask (pip install flask-compress)
from flask_compress import Compress
Compress(app)

# Django: settings.py, first in MIDDLEWARE
MIDDLEWARE = ["django.middleware.gzip.GZipMiddleware", *MIDDLEWARE]
"""
    return code, "python"


def pool_code(size: int, overflow: int) -> tuple[str, str]:
    """A larger SQLAlchemy pool."""
    code = f"""# Connections wait for the pool: give it room for the observed concurrency.
engine = create_engine(URL, pool_size={size}, max_overflow={overflow}, pool_timeout=5)
# Keep workers x (pool_size + max_overflow) under the database's max_connections.
"""
    return code, "python"


def workers_code(cores: int) -> tuple[str, str]:
    """Worker counts for the usual servers."""
    sync = f"{2 * cores + 1}" if cores else "2 * cores + 1"
    code = f"""# Sync workers (gunicorn): 2 x cores + 1
gunicorn app:app --workers {sync} --threads 2 --timeout 30
# Async (uvicorn workers): one per core, and move blocking calls off the event loop
gunicorn app:app -k uvicorn.workers.UvicornWorker --workers {cores or "CORES"}
"""
    return code, "shell"
