"""The embedded demo: seeding, the app's endpoints and problems, the LLM stub, the lifecycle."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

import pytest

from perfpilot.demo.app import ENDPOINTS, Problem
from perfpilot.demo.llm_stub import chat_usage, count_tokens
from perfpilot.demo.seed import (
    MIN_CUSTOMERS,
    SCHEMA_VERSION,
    customer_email,
    is_seeded,
    seed_database,
)
from perfpilot.demo.server import DemoServers, ServerProcess, scenario_path
from perfpilot.errors import InternalError

SMALL = {"customers": 2_000, "products": 6_000, "orders": 3_000}
FAST_STUB = {"chat_delay_s": 0.02, "chat_jitter_s": 0.02, "embeddings_delay_s": 0.005}

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, HTTPMessage, bytes]:
    try:
        with _OPENER.open(url, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def _get_json(url: str) -> tuple[int, HTTPMessage, Any]:
    status, headers, body = _get(url)
    return status, headers, json.loads(body)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- seeding -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("full") / "demo.sqlite3"
    seed_database(path)
    return path


def test_default_seed_has_over_200k_customers(full_db: Path) -> None:
    report = seed_database(full_db)  # complete already: reused, not rebuilt
    assert report.reused
    assert report.duration_s < 1.0
    assert report.rows["customers"] >= 200_000
    assert report.total_rows >= 200_000
    conn = sqlite3.connect(full_db)
    try:
        (customers,) = conn.execute("SELECT COUNT(*) FROM customers").fetchone()
        (items,) = conn.execute("SELECT COUNT(*) FROM order_items").fetchone()
    finally:
        conn.close()
    assert customers == report.rows["customers"]
    assert items == report.rows["order_items"]


def _plan(conn: sqlite3.Connection, sql: str, *params: Any) -> str:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(row[-1] for row in rows)


def test_seed_schema_has_every_index_but_the_email_one(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    report = seed_database(path, **SMALL)
    assert not report.reused
    assert report.rows == {
        "customers": 2_000,
        "products": 6_000,
        "orders": 3_000,
        "order_items": report.rows["order_items"],
    }
    assert 3_000 <= report.rows["order_items"] <= 15_000
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA index_list(customers)").fetchall() == []
        email_plan = _plan(conn, "SELECT * FROM customers WHERE email = ?", "x")
        assert "SCAN customers" in email_plan
        assert "USING INDEX" in _plan(conn, "SELECT * FROM order_items WHERE order_id = ?", 1)
        assert "USING INDEX" in _plan(conn, "SELECT * FROM orders WHERE customer_id = ?", 1)
        recent = _plan(conn, "SELECT * FROM orders ORDER BY created_at DESC LIMIT 5")
        assert "orders_created_at" in recent
        (email,) = conn.execute("SELECT email FROM customers WHERE id = 1777").fetchone()
        assert email == customer_email(1777)
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []


def test_seed_is_deterministic(tmp_path: Path) -> None:
    small = {"customers": 500, "products": 300, "orders": 400}
    digests = []
    for name in ("a.sqlite3", "b.sqlite3"):
        seed_database(tmp_path / name, **small)
        conn = sqlite3.connect(tmp_path / name)
        try:
            digest = hashlib.sha256()
            for table in ("customers", "products", "orders", "order_items"):
                for row in conn.execute(f"SELECT * FROM {table} ORDER BY id"):
                    digest.update(repr(row).encode())
            digests.append(digest.hexdigest())
        finally:
            conn.close()
    assert digests[0] == digests[1]


def test_seed_reuses_a_complete_db_and_rebuilds_on_new_arguments(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    small = {"customers": 500, "products": 300, "orders": 400}
    assert not is_seeded(path)
    assert not seed_database(path, **small).reused
    assert is_seeded(path)
    assert seed_database(path, **small).reused
    again = seed_database(path, **(small | {"orders": 100}))
    assert not again.reused
    assert again.rows["orders"] == 100


def test_seed_replaces_an_incomplete_file(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    path.write_bytes(b"not a database")
    assert not is_seeded(path)
    conn = sqlite3.connect(tmp_path / "half.sqlite3")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.close()
    assert not is_seeded(tmp_path / "half.sqlite3")
    report = seed_database(path, customers=100, products=10, orders=10)
    assert not report.reused
    assert is_seeded(path)


def test_seed_rejects_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers >= 1"):
        seed_database(tmp_path / "x.sqlite3", customers=0)


# --- endpoints table, scenario, stub maths ----------------------------------------------


def test_endpoints_cover_every_problem_once() -> None:
    problems = [e.problem for e in ENDPOINTS if e.problem is not None]
    assert sorted(problems) == sorted(Problem)
    assert {e.name for e in ENDPOINTS if e.problem is None} == {
        "health",
        "product",
        "orders_recent",
    }
    assert len({e.name for e in ENDPOINTS}) == len(ENDPOINTS)
    assert len({e.route for e in ENDPOINTS}) == len(ENDPOINTS)


def test_scenario_ships_with_the_package_and_names_every_endpoint() -> None:
    path = scenario_path()
    assert path.is_file()
    assert path.parent.name == "demo"
    scenario = tomllib.loads(path.read_text(encoding="utf-8"))
    assert scenario["executor"]["type"] == "constant-vus"
    requests = {r["name"]: r for r in scenario["requests"]}
    assert set(requests) == {e.name for e in ENDPOINTS}
    for endpoint in ENDPOINTS:
        request = requests[endpoint.name]
        assert request["method"] == endpoint.method
        assert request["checks"] == [{"status": 200}]
        if "${" not in request["path"]:
            assert request["path"] == endpoint.example
    assert "${iter}" in requests["report_cached"]["path"]
    assert scenario["thresholds"] == {"http_req_failed": ["rate<0.01"]}


def test_examples_use_ids_that_exist_in_a_small_db() -> None:
    assert MIN_CUSTOMERS >= 1777
    by_email = next(e for e in ENDPOINTS if e.name == "customer_by_email")
    assert by_email.example.endswith(customer_email(1777))


def test_chat_usage_is_deterministic_and_grows_with_the_prompt() -> None:
    short = chat_usage([{"role": "user", "content": "hi"}])
    long = chat_usage([{"role": "user", "content": "hi " * 400}])
    assert short == chat_usage([{"role": "user", "content": "hi"}])
    assert short["total_tokens"] == short["prompt_tokens"] + short["completion_tokens"]
    assert long["prompt_tokens"] > short["prompt_tokens"]
    assert chat_usage([{"role": "user", "content": "hi " * 400}], 10)["completion_tokens"] == 10
    assert count_tokens("") == 1
    assert count_tokens("abcdefgh") == 2


# --- the running demo -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServers]:
    with DemoServers(tmp_path_factory.mktemp("demo"), **SMALL, **FAST_STUB) as servers:
        yield servers


@pytest.mark.integration
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_every_endpoint_answers_its_example(demo: DemoServers, endpoint: Any) -> None:
    status, headers, body = _get(demo.app_url + endpoint.example)
    assert status == 200, body[:300]
    assert headers["content-type"].startswith("application/json")
    assert "gzip" not in headers.get("content-encoding", "")
    json.loads(body)


@pytest.mark.integration
def test_healthy_endpoints_use_one_query(demo: DemoServers) -> None:
    assert _get_json(demo.app_url + "/health")[2] == {"status": "ok"}
    _, headers, product = _get_json(demo.app_url + "/products/42")
    assert product["id"] == 42
    assert product["sku"] == "SKU-000042"
    assert headers["x-demo-queries"] == "1"
    _, headers, recent = _get_json(demo.app_url + "/orders/recent?limit=20")
    assert len(recent["orders"]) == 20
    assert headers["x-demo-queries"] == "1"
    dates = [o["created_at"] for o in recent["orders"]]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.integration
def test_orders_with_items_runs_one_query_per_order(demo: DemoServers) -> None:
    _, headers, data = _get_json(demo.app_url + "/orders/with-items?limit=30")
    assert len(data["orders"]) == 30
    assert all(order["items"] for order in data["orders"])
    assert headers["x-demo-queries"] == str(1 + 30)


@pytest.mark.integration
def test_customer_lookup_by_email(demo: DemoServers) -> None:
    _, headers, customer = _get_json(
        demo.app_url + f"/customers/by-email?email={customer_email(1234)}"
    )
    assert customer["id"] == 1234
    assert headers["x-demo-queries"] == "1"
    status, _, missing = _get_json(demo.app_url + "/customers/by-email?email=nobody@example.com")
    assert status == 404
    assert "error" in missing


@pytest.mark.integration
def test_summarize_calls_the_llm_and_returns_its_usage(demo: DemoServers) -> None:
    _, headers, data = _get_json(demo.app_url + "/summarize?product_id=42")
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert data["model"] == "gpt-4o-mini"
    assert data["summary"]
    assert headers["x-demo-outbound-calls"] == "1"


@pytest.mark.integration
def test_recommendations_repeat_the_same_outbound_call(demo: DemoServers) -> None:
    before = _get_json(demo.llm_url + "/stats")[2]["calls"].get("embeddings", 0)
    _, headers, data = _get_json(demo.app_url + "/recommendations/1777")
    after = _get_json(demo.llm_url + "/stats")[2]["calls"]["embeddings"]
    assert headers["x-demo-outbound-calls"] == "3"
    assert after - before == 3
    assert len(data["sections"]) == 3


@pytest.mark.integration
def test_report_cache_grows_with_every_new_key(demo: DemoServers) -> None:
    url = demo.app_url + "/report/cached?key="
    _, first, body = _get(url + "grow-0")
    assert first["x-demo-cache"] == "miss"
    assert len(body) > 2_000
    for i in (1, 2, 3):
        _, headers, _ = _get(url + f"grow-{i}")
        assert headers["x-demo-cache"] == "miss"
    assert int(headers["x-demo-cache-entries"]) == int(first["x-demo-cache-entries"]) + 3
    _, again, body_again = _get(url + "grow-0")
    assert again["x-demo-cache"] == "hit"
    assert body_again == body


@pytest.mark.integration
def test_stats_similar_compares_every_pair(demo: DemoServers) -> None:
    data = _get_json(demo.app_url + "/stats/similar")[2]
    assert data["products"] == 800
    assert data["compared_pairs"] == 800 * 799 // 2


@pytest.mark.integration
def test_export_is_a_large_uncompressed_json(demo: DemoServers) -> None:
    status, headers, body = _get(demo.app_url + "/export/products")
    assert status == 200
    assert len(body) > 1_000_000
    assert "content-encoding" not in headers
    assert json.loads(body)["count"] == 6_000


@pytest.mark.integration
def test_bad_requests_get_json_errors(demo: DemoServers) -> None:
    for path, expected in [
        ("/products/999999", 404),
        ("/orders/recent?limit=abc", 400),
        ("/orders/with-items?limit=500", 400),
        ("/summarize", 400),
        ("/report/cached", 400),
        ("/recommendations/99999999", 404),
        ("/no/such/route", 404),
    ]:
        status, _, data = _get_json(demo.app_url + path)
        assert status == expected, path
        assert "error" in data


@pytest.mark.integration
def test_llm_stub_speaks_openai(demo: DemoServers) -> None:
    request = urllib.request.Request(
        demo.llm_url + "/v1/chat/completions",
        data=json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        ).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
        method="POST",
    )
    with _OPENER.open(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "m"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["usage"] == chat_usage([{"role": "user", "content": "hello"}])
    unauthorized = urllib.request.Request(
        demo.llm_url + "/v1/embeddings", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        _OPENER.open(unauthorized, timeout=10)
    with exc_info.value as error:
        assert error.code == 401


# --- lifecycle --------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_servers_are_stopped_when_the_body_raises(
    tmp_path: Path, error: type[BaseException]
) -> None:
    servers = DemoServers(tmp_path, customers=100, products=10, orders=10, **FAST_STUB)
    with pytest.raises(error), servers:
        pids = servers.pids
        assert len(pids) == 2
        assert all(not _gone(pid) for pid in pids)
        assert _get(servers.app_url + "/health")[0] == 200
        raise error
    assert servers.pids == ()
    assert all(_gone(pid) for pid in pids)
    servers.stop()  # idempotent


@pytest.mark.integration
def test_a_child_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no app\\n'); sys.exit(3)"]
    proc = ServerProcess("broken", command, tmp_path / "broken.log")
    with proc, pytest.raises(InternalError, match=r"(?s)exited with status 3.*boom: no app"):
        proc.wait_ready(10.0)
    assert proc.returncode == 3


@pytest.mark.integration
def test_a_child_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"]
    proc = ServerProcess("silent", command, tmp_path / "silent.log")
    with proc:
        pid = proc.pid
        assert pid is not None
        with pytest.raises(InternalError, match=r"(?s)did not answer GET /health.*starting"):
            proc.wait_ready(0.5)
    assert _gone(pid)
    assert proc.returncode is not None


@pytest.mark.integration
def test_a_server_exits_by_itself_when_its_parent_is_gone(tmp_path: Path) -> None:
    # A parent pid that is not our parent looks, to the child, like a dead parent.
    command = [sys.executable, "-m", "perfpilot.demo.serve", "--app=llm", "--parent-pid=1"]
    proc = ServerProcess("orphan", command, tmp_path / "orphan.log")
    with proc:
        deadline = time.monotonic() + 15
        while proc.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not proc.running, proc.log_tail()
