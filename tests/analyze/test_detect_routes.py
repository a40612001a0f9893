import pytest

from perfpilot.analyze.detect_routes import cpu_hotspots, error_bursts, large_responses
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.app_records import NO_APP_FRAME, ProfileRow, Span

from .builders import app, request, trace

OPTS = DiagnoseOptions()
T = 1_700_000_040.0


def test_a_route_mostly_in_app_code_is_a_cpu_hotspot() -> None:
    data = app(requests=(request("/stats", 20, 0.1, db_time_s=0.2),))  # 90 ms app of 100
    (finding,) = cpu_hotspots(data, OPTS)
    assert finding.kind == "cpu_hotspot"
    assert finding.evidence["app_ms"] == pytest.approx(90, rel=0.02)
    assert "pyinstrument" in finding.fix.code


APP_PY = "/srv/shop/app.py"
PROFILE = (
    ProfileRow("/stats", f"{APP_PY}:120 stats_similar < {APP_PY}:90 handler", "", 70),
    ProfileRow("/stats", f"{APP_PY}:121 stats_similar < {APP_PY}:90 handler", "", 10),
    ProfileRow("/stats", f"{APP_PY}:40 to_json < {APP_PY}:95 handler",
               "json/encoder.py:258 JSONEncoder.iterencode", 15),
    ProfileRow("/stats", NO_APP_FRAME, "starlette/routing.py:70 run_endpoint_function", 5),
    ProfileRow("/other", f"{APP_PY}:7 other", "", 500),
)  # fmt: skip


def test_a_hotspot_with_a_profile_names_its_top_frames() -> None:
    data = app(requests=(request("/stats", 20, 0.1, db_time_s=0.2),), profiles=PROFILE)
    (finding,) = cpu_hotspots(data, OPTS)
    assert finding.evidence["profile_samples"] == 100
    frames = finding.evidence["top_frames"]
    assert [f["function"] for f in frames] == ["stats_similar", "to_json", NO_APP_FRAME, "handler"]
    top = frames[0]
    assert top["frame"] == f"{APP_PY}:120 stats_similar"  # its most sampled line
    assert (top["self_share"], top["total_share"], top["via"]) == (0.8, 0.8, None)
    assert frames[1]["via"] == "json/encoder.py:258 JSONEncoder.iterencode"
    assert frames[2]["location"] is None
    assert (frames[3]["self_share"], frames[3]["total_share"]) == (0.0, 0.95)
    assert finding.fix.location == f"{APP_PY}:120"
    assert "80% of the route's samples are in stats_similar" in finding.fix.summary
    assert "stats_similar" in finding.title
    assert "pyinstrument" in finding.fix.code
    assert finding.confidence == 0.8


def test_too_few_samples_name_no_frames() -> None:
    few = (ProfileRow("/stats", f"{APP_PY}:120 stats_similar", "", 19),)
    data = app(requests=(request("/stats", 20, 0.1),), profiles=few)
    (finding,) = cpu_hotspots(data, OPTS)
    assert finding.evidence["top_frames"] is None
    assert finding.fix.location is None
    assert "no profile sample" in finding.fix.summary


def test_fast_or_database_bound_routes_are_not_hotspots() -> None:
    data = app(
        requests=(
            request("/health", 100, 0.002),  # all app, 2 ms
            request("/export", 20, 1.0, db_time_s=16.0),  # 200 ms app, 20 %
            request("/rare", 2, 0.5),  # too few requests
        )
    )
    assert cpu_hotspots(data, OPTS) == []


def test_app_time_every_route_shares_is_not_a_hotspot() -> None:
    # A loaded threaded server: every route waits ~30 ms for the GIL; only
    # /stats runs a hot loop on top of that.
    waits = tuple(request(f"/r{i}", 50, 0.030) for i in range(4))
    hot = request("/stats", 20, 0.120)
    assert [f.subject for f in cpu_hotspots(app(requests=(*waits, hot)), OPTS)] == ["GET /stats"]
    assert cpu_hotspots(app(requests=waits), OPTS) == []
    # one route alone is judged on its own figures
    assert len(cpu_hotspots(app(requests=waits[:1]), OPTS)) == 1


def test_large_uncompressed_responses_get_compression() -> None:
    data = app(requests=(request("/export", 10, 0.5, bytes_out=50_000_000, uncompressed=10),))
    (finding,) = large_responses(data, OPTS)
    assert (finding.kind, finding.severity) == ("large_response", "high")
    assert finding.evidence["mean_bytes"] == 5_000_000
    assert "GZipMiddleware" in finding.fix.code and "flask_compress" in finding.fix.code
    assert "paginate" in finding.fix.summary
    assert finding.impact.time_per_request_s == pytest.approx(5e6 * 0.8 / 12.5e6)


def test_small_or_compressed_responses_are_fine() -> None:
    data = app(
        requests=(
            request("/small", 10, 0.01, bytes_out=30_000, uncompressed=10),
            request("/gz", 10, 0.5, bytes_out=50_000_000, uncompressed=0),
        )
    )
    assert large_responses(data, OPTS) == []


def test_server_errors_are_reported_with_their_burst_minute_and_cause() -> None:
    failing = Span("http", "POST pay.example.com/v1/charge", 0.0, 0.2, {"status": 503})
    data = app(
        requests=(
            request("/pay", 180, 0.1),
            request("/pay", 20, 0.2, status_class=5, errors=20),
        ),
        timeline=tuple(
            (T + 60 * i, request("/pay", 20, 0.2, status_class=5, errors=n))
            for i, n in enumerate([1, 1, 16, 1, 1])
        ),
        traces=(trace("/pay", failing, status=502, reasons=("error",)),),
    )
    (finding,) = error_bursts(data, OPTS)
    assert finding.kind == "error_burst"
    assert finding.evidence["error_rate"] == 0.1
    assert finding.evidence["burst_minutes"] == [int(T + 120)]
    assert finding.evidence["cause"] == "outbound"
    assert "circuit breaker" in finding.fix.summary


def test_a_few_errors_are_not_a_burst() -> None:
    data = app(
        requests=(request("/a", 1000, 0.1), request("/a", 3, 0.1, status_class=5, errors=3)),
    )
    assert error_bursts(data, OPTS) == []
    data = app(
        requests=(request("/a", 10000, 0.1), request("/a", 20, 0.1, status_class=5, errors=20)),
    )
    assert error_bursts(data, OPTS) == []  # 0.2 % under the 1 % rate
