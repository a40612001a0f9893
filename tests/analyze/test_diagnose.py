import json

import pytest

from perfpilot.analyze.diagnose import DETECTORS, DiagnoseOptions, diagnose
from perfpilot.analyze.findings import Finding
from perfpilot.app_records import CacheRow

from .builders import app, outbound, query, request


def test_nothing_recorded_nothing_found() -> None:
    assert diagnose(app()) == []


def test_healthy_traffic_has_no_findings() -> None:
    data = app(
        requests=(request("/health", 500, 0.002), request("/p/{id}", 300, 0.01, db_time_s=1.0)),
        queries=(query("/p/{id}", "SELECT * FROM products WHERE id = ?", 300, 0.001, rows=300),),
        caches=(CacheRow("c", "get", "", "/p/{id}", 290, 10),),
    )
    assert diagnose(data) == []


def test_findings_of_all_detectors_are_ranked_and_serializable() -> None:
    data = app(
        requests=(
            request("/orders", 10, 0.1, db_time_s=0.9),
            request("/sum", 10, 0.3, outbound_time_s=2.8, cost_usd=0.5),
            request("/export", 10, 1.0, db_time_s=9.0, bytes_out=50_000_000, uncompressed=10),
        ),
        queries=(query("/orders", "SELECT a FROM items WHERE order_id = ?", 300, 0.003, rows=900),),
        outbound=(outbound("/sum", "/v1/chat", 10, 0.28, cost_usd=0.5),),
    )
    findings = diagnose(data)
    kinds = [f.kind for f in findings]
    assert kinds == ["slow_outbound", "large_response", "n_plus_one"]  # money weighs most
    assert [Finding.from_dict(json.loads(json.dumps(f.to_dict()))) for f in findings] == findings


def test_options_change_what_is_found() -> None:
    data = app(
        requests=(request("/orders", 10, 0.02, db_time_s=0.08),),
        queries=(query("/orders", "SELECT a FROM items WHERE order_id = ?", 80, 0.001),),
    )
    assert diagnose(data) == []
    lenient = DiagnoseOptions(n_plus_one_structural_repeats=8)
    assert [f.kind for f in diagnose(data, options=lenient)] == ["n_plus_one"]


def test_options_round_trip_and_refuse_unknown_keys() -> None:
    options = DiagnoseOptions(cores=4, cache_min_hit_rate=0.9)
    assert DiagnoseOptions.from_dict(options.to_dict()) == options
    assert DiagnoseOptions.from_dict({"cores": "8"}).cores == 8
    with pytest.raises(ValueError, match="unknown diagnose options: nope"):
        DiagnoseOptions.from_dict({"nope": 1})


def test_every_detector_is_named() -> None:
    assert len(DETECTORS) == len(set(DETECTORS)) == 14
