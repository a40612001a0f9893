from perfpilot.analyze.detect_load import load_levels, saturation
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.app_records import PoolRow
from perfpilot.records import LoadResult, NameStats, SecondStats

from .builders import app, hist

OPTS = DiagnoseOptions(cores=2)


def ramp(
    throughputs: list[int], latencies: list[float], errors: list[int] | None = None
) -> LoadResult:
    n = len(throughputs)
    stats = NameStats("home")
    for s in range(n):
        stats.seconds[s] = SecondStats(
            latency=hist(latencies[s], n=throughputs[s]),
            service=hist(latencies[s], n=throughputs[s]),
            requests=throughputs[s],
            errors={"http_5xx": errors[s]} if errors and errors[s] else {},
        )
    config = {
        "executor": {
            "kind": "ramping-vus",
            "vus": 1,
            "stages": [{"duration_s": float(n), "target": 50.0}],
        }
    }
    vus = {s: 1 + round(49 * s / (n - 1)) for s in range(n)}
    return LoadResult("ramp", 0.0, float(n), config=config, names={"home": stats}, vus=vus)


def test_latency_rising_while_throughput_is_flat_is_saturation() -> None:
    result = ramp([100] * 12, [0.01 * (1 + s) for s in range(12)])
    (finding,) = saturation(result, app(), OPTS)
    assert finding.kind == "saturation"
    assert finding.evidence["load_growth"] > 5
    assert finding.evidence["throughput_growth"] == 1.0
    assert "--workers 5" in finding.fix.code


def test_pool_waits_turn_the_advice_to_the_pool() -> None:
    result = ramp([100] * 12, [0.01 * (1 + s) for s in range(12)])
    data = app(pools=(PoolRow("postgresql://db", 100, 1.0, 0.1, 5, 10, 5),))
    (finding,) = saturation(result, data, OPTS)
    assert "pool" in finding.fix.summary and "pool_size" in finding.fix.code


def test_errors_that_appear_under_load_are_reported() -> None:
    result = ramp([10 * (s + 1) for s in range(12)], [0.01] * 12, [0] * 8 + [5, 10, 20, 30])
    (finding,) = saturation(result, app(), OPTS)
    assert finding.kind == "errors_under_load"
    assert finding.evidence["baseline"]["error_rate"] == 0.0


def test_a_service_that_scales_is_not_saturated() -> None:
    result = ramp([10 * (s + 1) for s in range(12)], [0.01] * 12)
    assert saturation(result, app(), OPTS) == []


def test_constant_load_or_short_runs_are_not_judged() -> None:
    flat = ramp([100] * 12, [0.01 * (1 + s) for s in range(12)])
    flat.config["executor"] = {"kind": "constant-vus", "vus": 10, "duration_s": 12.0}
    flat.vus.clear()
    assert saturation(flat, app(), OPTS) == []
    assert load_levels(ramp([100] * 4, [0.01] * 4)) is None
    assert load_levels(LoadResult("x", 0.0, 1.0)) is None
