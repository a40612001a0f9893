"""``perfpilot demo`` end to end: load, summary, stored run, and the app's own view."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfpilot.cli.main import main
from perfpilot.store import open_store

pytestmark = pytest.mark.integration


def test_demo_runs_stores_and_explains_the_server_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "pp.db"
    code = main(["demo", "-d", "6s", "--work-dir", str(tmp_path / "demo"), "--store", str(store)])
    out = capsys.readouterr().out
    assert code == 0
    # the client side: every request name of the scenario, and the stored run
    for name in ("health", "orders_with_items", "customer_by_email", "summarize"):
        assert name in out
    assert "run 1 saved" in out
    # the server side, as the instrumented app recorded it
    assert "server side" in out
    with open_store(str(store)) as db:
        assert len(db.list_runs()) == 1
        routes = {(r.route, r.method): r for r in db.app_requests(service="demo")}
        queries = db.app_queries(service="demo")
        outbound = db.app_outbound(service="demo")
        units = {u.unit: u for u in db.app_units(service="demo")}
        caches = db.app_caches(service="demo")
    n_plus_one = routes[("/orders/with-items", "GET")]
    assert n_plus_one.db_count / n_plus_one.count == pytest.approx(31)  # 1 + 30 orders
    assert routes[("/health", "GET")].db_count == 0
    summarize = routes[("/summarize", "GET")]
    assert summarize.outbound_count == summarize.count
    assert summarize.cost_usd > 0
    assert any(q.sql.count("?") and "'" not in q.sql for q in queries)  # literals redacted
    chat = [o for o in outbound if o.template == "/v1/chat/completions"]
    assert chat and chat[0].prompt_tokens > 0
    embeddings = [o for o in outbound if o.template == "/v1/embeddings"]
    assert sum(o.repeated for o in embeddings) > 0  # the same call, three times a request
    assert units["summary"].units == summarize.count
    assert units["summary"].cost_usd == pytest.approx(summarize.cost_usd)
    assert [c.cache for c in caches] == ["report_cache"]
    assert caches[0].misses > 0
