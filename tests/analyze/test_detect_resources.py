import numpy as np
import pytest

from perfpilot.analyze.detect_resources import cache_hit_rate, memory_growth, pool_waits
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.app_records import CacheRow, PoolRow, ResourceSample

from .builders import app, request

OPTS = DiagnoseOptions()
MIB = 1024 * 1024


def sample(at: float, rss_mib: float, pid: int = 7) -> ResourceSample:
    return ResourceSample(at, pid, int(rss_mib * MIB), 10.0, 4, 10, 20.0, 0, 0, 0, 0, 0, 0)


def test_a_cache_that_never_hits_is_reported_with_a_bound() -> None:
    data = app(
        requests=(request("/report", 100, 0.06, db_time_s=5.0),),
        caches=(CacheRow("report_cache", "get", "", "/report", 0, 100),),
    )
    (finding,) = cache_hit_rate(data, OPTS)
    assert finding.kind == "low_cache_hit_rate"
    assert finding.evidence == finding.evidence | {"route": "/report", "hit_rate": 0.0}
    assert "no key ever repeated" in finding.title
    assert "TTLCache" in finding.fix.code
    assert finding.impact.time_per_request_s == pytest.approx(0.05 * 0.85)


def test_good_hit_rates_and_few_lookups_are_fine() -> None:
    data = app(
        requests=(request("/a", 100, 0.01),),
        caches=(
            CacheRow("sessions", "get", "s:", "/a", 90, 10),
            CacheRow("rare", "get", "", "/a", 0, 5),
        ),
    )
    assert cache_hit_rate(data, OPTS) == []


def test_steady_rss_growth_is_a_leak_suspect_naming_the_cache() -> None:
    rng = np.random.default_rng(1)
    samples = tuple(sample(1000.0 + t, 150 + 2.0 * t + rng.normal(0, 0.3)) for t in range(20))
    data = app(resources=samples, caches=(CacheRow("report_cache", "get", "", "/r", 0, 500),))
    (finding,) = memory_growth(data, OPTS)
    assert finding.kind == "memory_growth"
    assert finding.evidence["pid"] == 7
    assert finding.evidence["route"] == "/r"
    assert finding.evidence["recent_slope_mib_per_min"] == pytest.approx(120, rel=0.1)
    assert "tracemalloc" in finding.fix.code and "report_cache" in finding.fix.code


def test_warm_up_that_levels_off_is_not_a_leak() -> None:
    rng = np.random.default_rng(2)
    levels = [110, 140, 150, 155, 158] + [160] * 15
    samples = tuple(sample(1000.0 + t, v + rng.normal(0, 0.5)) for t, v in enumerate(levels))
    assert memory_growth(app(resources=samples), OPTS) == []


def test_noise_small_growth_and_few_samples_are_not_leaks() -> None:
    rng = np.random.default_rng(3)
    noise = tuple(sample(1000.0 + t, 150 + rng.normal(0, 3)) for t in range(30))
    small = tuple(sample(1000.0 + t, 150 + 0.05 * t) for t in range(30))  # 1.5 MiB
    few = tuple(sample(1000.0 + t, 150 + 10 * t) for t in range(5))
    for samples in (noise, small, few):
        assert memory_growth(app(resources=samples), OPTS) == []


def test_memory_is_judged_per_process() -> None:
    growing = [sample(1000.0 + t, 100 + 3 * t, pid=1) for t in range(20)]
    flat = [sample(1000.0 + t, 300, pid=2) for t in range(20)]
    (finding,) = memory_growth(app(resources=tuple(growing + flat)), OPTS)
    assert finding.evidence["pid"] == 1


def test_pool_waits_suggest_a_larger_pool() -> None:
    data = app(
        requests=(request("/a", 1000, 0.05),),
        pools=(PoolRow("postgresql://db/shop", 1000, 20.0, 0.3, 5, 10, 5),),
    )
    (finding,) = pool_waits(data, OPTS)
    assert finding.kind == "pool_wait"
    assert finding.evidence["suggested_size"] == 17
    assert "pool_size=17" in finding.fix.code


def test_short_pool_waits_are_fine() -> None:
    data = app(pools=(PoolRow("postgresql://db/shop", 1000, 0.5, 0.01, 5, 0, 5),))
    assert pool_waits(data, OPTS) == []
