"""The Report model: its sections built from hand-made data, and its JSON form."""

from __future__ import annotations

import dataclasses
import json

import pytest

from perfpilot.analyze.appdata import AppData
from perfpilot.errors import ConfigError
from perfpilot.load.thresholds import parse_threshold
from perfpilot.report.assessment import Targets
from perfpilot.report.model import REPORT_FORMAT, Report, build_report
from perfpilot.report.series import latency_distribution, load_timeline
from perfpilot.report.strategy import round_up
from tests.report.sample import (
    EVIL_ROUTE,
    T0,
    hist,
    sample_app,
    sample_findings,
    sample_load,
)


def full_report(**kw: object) -> Report:
    return build_report(sample_app(), sample_load(), sample_findings(), **kw)  # type: ignore[arg-type]


def test_json_has_the_sections_in_report_order_and_a_version() -> None:
    doc = full_report().to_dict()
    keys = list(doc)
    order = ["assessment", "bottlenecks", "optimization_plan", "implementation_guide", "monitoring"]
    assert [keys.index(k) for k in order] == sorted(keys.index(k) for k in order)
    assert doc["format"] == REPORT_FORMAT == 1
    assert doc["kind"] == "perfpilot.report"


def test_json_round_trip_gives_an_equal_report() -> None:
    report = full_report()
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    app_only = build_report(sample_app())
    assert Report.from_dict(json.loads(json.dumps(app_only.to_dict()))) == app_only


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "perfpilot.load-result"}, "not a perfpilot report"),
        ({"format": 2}, "unsupported report format 2"),
        ({"assessment": {"source": "app"}}, "malformed report"),
        ({"targets": {"p95_ms": "fast"}}, "Targets.p95_ms must be float"),
    ],
)
def test_from_dict_rejects_other_documents(change: dict[str, object], message: str) -> None:
    doc = {**full_report().to_dict(), **change}
    with pytest.raises(ConfigError, match=message):
        Report.from_dict(doc, source="r.json")


def test_findings_are_ranked_by_impact_whatever_the_input_order() -> None:
    report = full_report()
    # 5.76 $/h weighs more than 346 server s/h (one dollar = one server hour)
    assert [f.kind for f in report.findings] == [
        "repeated_outbound",
        "n_plus_one",
        "low_cache_hit_rate",
    ]
    guide = report.to_dict()["implementation_guide"]
    assert [g["finding"] for g in guide] == [f.id for f in report.findings]
    assert guide[1]["fix"]["location"] == "app/<b>views</b>.py:12"


def test_assessment_judges_the_load_run_when_there_is_one() -> None:
    a = full_report().assessment
    assert (a.source, a.requests, a.errors) == ("load", 200, 10)
    checks = {c.metric: c for c in a.checks if c.metric != "threshold"}
    assert checks["p95_ms"].observed == pytest.approx(200, rel=0.01)
    assert checks["p95_ms"].status == "pass"
    assert checks["error_rate"].observed == pytest.approx(0.05)
    assert checks["error_rate"].status == "fail"
    assert checks["apdex"].status == "pass"
    assert checks["throughput_rps"].observed == pytest.approx(20.0)
    assert checks["throughput_rps"].status == "info"  # no throughput target by default
    thresholds = [c for c in a.checks if c.metric == "threshold"]
    assert [(c.label, c.status) for c in thresholds] == [
        ("http_req_duration: p(95)<100", "fail"),
        ("http_req_failed: rate<0.1", "pass"),
    ]
    assert a.status == "fail"


def test_assessment_warns_near_a_target_and_uses_app_data_without_a_run() -> None:
    targets = Targets(p95_ms=240.0, error_rate=0.05, min_throughput_rps=3.0)
    a = build_report(sample_app(), targets=targets).assessment
    assert a.source == "app"
    assert a.requests == 324 and a.errors == 4
    checks = {c.metric: c for c in a.checks}
    assert checks["p95_ms"].status == "warn"  # 200 ms is past 80 % of 240 ms
    assert checks["error_rate"].status == "pass"  # 1.2 % of 5 %
    assert checks["throughput_rps"].observed == pytest.approx(324 / 120)
    assert checks["throughput_rps"].status == "fail"  # 2.7/s under 3/s
    assert a.status == "fail"
    assert "threshold" not in checks


def test_no_data_gives_info_checks_and_no_monitoring() -> None:
    report = build_report(AppData(since=0.0, until=60.0))
    assert {c.status for c in report.assessment.checks} == {"info"}
    assert report.assessment.status == "info"
    assert report.monitoring.rules == () and report.monitoring.budgets == ()
    assert report.findings == () and report.timelines == ()
    assert report.distribution.bins == ()
    assert any("No in-app data" in note for note in report.notes)


def test_bottlenecks_rank_routes_split_time_and_merge_queries() -> None:
    b = full_report().bottlenecks
    assert [r.label for r in b.routes] == ["GET /orders", f"POST {EVIL_ROUTE}", "GET /health"]
    orders = b.routes[0]
    assert orders.requests == 104 and orders.errors == 4
    assert orders.db_ms == pytest.approx(12000 / 104)
    assert orders.outbound_ms == pytest.approx(2000 / 104)
    assert orders.cache_ms == pytest.approx(10.0)
    assert orders.app_ms == pytest.approx(
        orders.mean_ms - orders.db_ms - orders.outbound_ms - orders.cache_ms
    )
    assert orders.cache_hit_rate == pytest.approx(0.6)
    assert sum(r.share for r in b.routes) == pytest.approx(1.0)
    first = b.queries[0]
    assert (first.fingerprint, first.calls, first.route, first.routes) == ("f1", 3010, "/orders", 2)
    assert first.rows_per_call == pytest.approx(9030 / 3010)
    assert b.outbound[0].cost_per_hour_usd == pytest.approx(0.5 * 3600 / 120)
    assert b.caches[0].hit_rate == pytest.approx(0.6)


def test_reports_written_before_cache_time_read_back_with_no_cache_time() -> None:
    document = json.loads(json.dumps(full_report().to_dict()))
    for route in document["bottlenecks"]["routes"]:
        del route["cache_ms"]
    again = Report.from_dict(document)
    assert [r.cache_ms for r in again.bottlenecks.routes] == [0.0, 0.0, 0.0]


def test_without_in_app_data_routes_come_from_the_load_run_unsplit() -> None:
    report = build_report(AppData(since=T0, until=T0 + 10), sample_load())
    routes = report.bottlenecks.routes
    assert [r.route for r in routes] == ["orders", "health"]
    assert not routes[0].split_known and routes[0].app_ms == routes[0].mean_ms
    assert routes[0].total_s == pytest.approx(100 * 0.2, rel=0.01)


def test_timelines_cover_the_run_per_second_and_the_app_per_minute() -> None:
    client, server = full_report().timelines
    assert (client.source, len(client.points)) == ("load", 10)
    assert client.points[0].at == T0 and client.points[0].requests_per_s == 20
    assert client.points[0].errors == 1
    assert (server.source, [p.at for p in server.points]) == ("app", [T0, T0 + 60])
    assert [p.requests for p in server.points] == [150, 174]
    assert server.points[1].errors == 4
    assert server.points[1].p99_ms == pytest.approx(900, rel=0.01)


def test_long_runs_merge_seconds_to_stay_under_max_points() -> None:
    timeline = load_timeline(sample_load(), max_points=3)
    # 4-second intervals; the last one ends with the 10-second run
    assert [p.interval_s for p in timeline.points] == [4.0, 4.0, 2.0]
    assert sum(p.requests for p in timeline.points) == 200
    assert [p.requests_per_s for p in timeline.points] == [20.0, 20.0, 20.0]


def test_a_last_second_cut_short_by_the_end_of_the_run_joins_the_one_before() -> None:
    load = sample_load()
    load = dataclasses.replace(load, ended_at=load.started_at + 9.2)
    timeline = load_timeline(load)
    assert len(timeline.points) == 9
    assert timeline.points[-1].requests == 40
    assert timeline.points[-1].interval_s == pytest.approx(1.2)


def test_distribution_keeps_every_request_in_ascending_log_bins() -> None:
    h = hist(*[0.001] * 50, *[0.01] * 30, *[0.2] * 20)
    d = latency_distribution(h, "app", bins=20)
    assert sum(b.count for b in d.bins) == 100
    assert all(
        a.upper_ms == pytest.approx(b.lower_ms) for a, b in zip(d.bins, d.bins[1:], strict=False)
    )
    assert d.bins[0].lower_ms == pytest.approx(1.0) and d.bins[-1].upper_ms == pytest.approx(
        200, rel=0.01
    )
    assert d.bins[0].count == 50 and d.bins[-1].count == 20


def test_monitoring_derives_rules_and_budgets_from_baselines() -> None:
    m = full_report().monitoring
    rules = {r.name: r for r in m.rules}
    p95 = full_report().assessment.p95_ms
    assert rules["latency_p95_warning"].threshold == round_up(1.5 * p95)
    assert rules["latency_p95_critical"].threshold == round_up(2 * p95)
    assert rules["error_budget_fast_burn"].threshold == pytest.approx(14.4 * 0.01)
    assert rules["outbound_spend"].baseline == pytest.approx(15.0)
    assert rules["cache_hit_rate:redis"].threshold == pytest.approx(0.5)
    assert rules["route_p95:GET /orders"].severity == "warning"
    assert "memory_rss" in rules
    budgets = {b.name: b for b in m.budgets}
    assert budgets["latency_p95"].limit == round_up(1.2 * p95)
    assert budgets["queries_per_request:GET /orders"].limit == 30
    assert budgets["error_rate"].limit == 0.01
    for budget in m.budgets:
        if budget.threshold:  # the load engine accepts every threshold the report suggests
            parse_threshold(budget.threshold)
    assert "--threshold 'http_req_duration: p(95)<240'" in m.load_command()


@pytest.mark.parametrize(
    ("value", "expected"), [(219.6, 220), (0.3, 0.3), (0.00576, 0.0058), (99.01, 100), (1.5, 1.5)]
)
def test_round_up_keeps_two_significant_digits(value: float, expected: float) -> None:
    assert round_up(value) == expected


def test_notes_report_drops_and_an_aborted_run() -> None:
    load = dataclasses.replace(sample_load(), aborted="threshold http_req_failed crossed")
    notes = build_report(sample_app(), load).notes
    assert any("3 traces" in n for n in notes)
    assert any("stopped early" in n for n in notes)
