"""The detectors on a live, loaded demo app: every seeded problem found on its route
with the right fix, nothing on the healthy endpoints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perfpilot.analyze.diagnose import diagnose
from perfpilot.analyze.findings import Finding
from perfpilot.demo.app import ENDPOINTS, Problem
from perfpilot.demo.server import DemoServers, scenario_path
from perfpilot.load.runner import run_load
from perfpilot.load.scenario import load_scenario
from perfpilot.store import open_store
from perfpilot.store.app_data import read_app_data

pytestmark = pytest.mark.integration

#: Finding kinds that diagnose each seeded problem (all of them must be found).
EXPECTED: dict[Problem, set[str]] = {
    Problem.N_PLUS_ONE: {"n_plus_one"},
    Problem.UNINDEXED_LOOKUP: {"missing_index"},
    Problem.SLOW_EXTERNAL_CALL: {"slow_outbound"},
    Problem.REPEATED_EXTERNAL_CALL: {"repeated_outbound"},
    Problem.UNBOUNDED_CACHE: {"low_cache_hit_rate", "memory_growth"},
    Problem.CPU_HOTSPOT: {"cpu_hotspot"},
    Problem.LARGE_RESPONSE: {"large_response"},
}

#: What the fix of each kind must contain.
FIX_CONTAINS = {
    "n_plus_one": ("selectinload", "prefetch_related", "WHERE order_id IN"),
    "missing_index": ("CREATE INDEX", "ON customers (email)"),
    "slow_outbound": ("TTLCache", "timeout="),
    "repeated_outbound": ("TTLCache", "lru_cache"),
    "low_cache_hit_rate": ("TTLCache",),
    "memory_growth": ("report_cache", "tracemalloc"),
    "cpu_hotspot": ("pyinstrument",),
    "large_response": ("GZipMiddleware",),
}

# The seeded leak shows in RSS only while new keys keep arriving: after the
# mixed load, one phase asks for new report keys only (distinct from the mixed
# phase's), as a user paging through reports would.
LEAK_PHASE = """
name = "new-report-keys"
[executor]
type = "constant-vus"
vus = 8
duration = "10s"
[[requests]]
name = "report_cached"
method = "GET"
path = "/report/cached?key=leak-vu${vu}-it${iter}"
"""


def template(route: str) -> str:
    """``/products/{product_id:int}`` -> ``/products/{product_id}`` (as recorded)."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route)


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    tmp = tmp_path_factory.mktemp("findings")
    store = str(tmp / "pp.db")
    leak = tmp / "leak.toml"
    leak.write_text(LEAK_PHASE)
    with DemoServers(tmp / "demo", store=store) as demo:
        mixed = run_load(
            load_scenario(str(scenario_path()), base_url=demo.app_url, duration_s=6.0),
            processes=1,
        )
        run_load(load_scenario(str(leak), base_url=demo.app_url), processes=1)
    # stopping the app flushed its last interval
    with open_store(store) as db:
        app = read_app_data(db, service="demo")
    assert app.request_count > 500
    return diagnose(app, mixed)


def on_route(findings: list[Finding], route: str) -> list[Finding]:
    return [f for f in findings if f.evidence.get("route") == route]


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.problem is not None], ids=lambda e: e.name
)
def test_every_seeded_problem_is_found_on_its_route_with_the_right_fix(
    findings: list[Finding], endpoint: object
) -> None:
    assert endpoint.problem is not None  # type: ignore[attr-defined]
    route = template(endpoint.route)  # type: ignore[attr-defined]
    found = on_route(findings, route)
    kinds = {f.kind for f in found}
    expected = EXPECTED[endpoint.problem]  # type: ignore[attr-defined]
    assert expected <= kinds, f"{route}: found {sorted(kinds)}"
    for finding in found:
        if finding.kind in expected:
            for text in FIX_CONTAINS[finding.kind]:
                assert text in finding.fix.code, (finding.kind, text)


def test_nothing_is_flagged_on_the_healthy_endpoints(findings: list[Finding]) -> None:
    healthy = {template(e.route) for e in ENDPOINTS if e.problem is None}
    flagged = [
        (f.kind, f.title)
        for f in findings
        if f.evidence.get("route") in healthy
        or any(f.subject.endswith(" " + route) for route in healthy)
    ]
    assert flagged == []
    routes = {f.evidence.get("route") for f in findings}
    assert routes <= {template(e.route) for e in ENDPOINTS if e.problem is not None}


def test_findings_carry_evidence_and_a_call_site(findings: list[Finding]) -> None:
    (n_plus_one,) = [f for f in findings if f.kind == "n_plus_one"]
    assert n_plus_one.evidence["per_request"] == 30
    assert n_plus_one.fix.location is not None
    assert Path(n_plus_one.fix.location.rsplit(":", 1)[0]).name == "app.py"
    (memory,) = [f for f in findings if f.kind == "memory_growth"]
    assert memory.evidence["recent_slope_mib_per_min"] > 0
    assert [s["cache"] for s in memory.evidence["suspects"]] == ["report_cache"]
    # the constant-load run cannot show saturation
    assert not [f for f in findings if f.kind in ("saturation", "errors_under_load")]
