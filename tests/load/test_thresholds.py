"""Tests for perfpilot.load.thresholds: the k6 grammar and evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.errors import ThresholdSyntaxError
from perfpilot.load.plan import ThresholdSpec
from perfpilot.load.thresholds import (
    evaluate,
    evaluate_all,
    metric_kind,
    parse_condition,
    parse_threshold,
)
from perfpilot.records import LoadResult, NameStats, ThresholdResult

# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "metric", "tags", "aggregation", "percentile", "op", "value"),
    [
        ("http_req_duration: p(95)<500", "http_req_duration", (), "p(95)", 95.0, "<", 500.0),
        (
            "http_req_duration{name:login}: p(99)<800",
            "http_req_duration",
            (("name", "login"),),
            "p(99)",
            99.0,
            "<",
            800.0,
        ),
        ("http_req_failed: rate<0.01", "http_req_failed", (), "rate", None, "<", 0.01),
        ("http_reqs: rate>1000", "http_reqs", (), "rate", None, ">", 1000.0),
        ("checks: rate>0.99", "checks", (), "rate", None, ">", 0.99),
        ("dropped_iterations: count==0", "dropped_iterations", (), "count", None, "==", 0.0),
        ("iterations: count>=10", "iterations", (), "count", None, ">=", 10.0),
        ("http_req_duration: avg<=200", "http_req_duration", (), "avg", None, "<=", 200.0),
        ("http_req_duration: med != 3", "http_req_duration", (), "med", None, "!=", 3.0),
        ("http_req_duration: p(99.9)<1.2s", "http_req_duration", (), "p(99.9)", 99.9, "<", 1200.0),
        ("http_req_duration: max<1m", "http_req_duration", (), "max", None, "<", 60000.0),
        ("http_req_duration: min>250us", "http_req_duration", (), "min", None, ">", 0.25),
        ("http_req_duration: min>250µs", "http_req_duration", (), "min", None, ">", 0.25),
        ("http_req_duration: p(100)<5ms", "http_req_duration", (), "p(100)", 100.0, "<", 5.0),
        ("http_req_duration: count>100", "http_req_duration", (), "count", None, ">", 100.0),
        (
            "http_req_service_duration: p(50)<20",
            "http_req_service_duration",
            (),
            "p(50)",
            50.0,
            "<",
            20.0,
        ),
        ("http_req_failed: rate<1%", "http_req_failed", (), "rate", None, "<", 0.01),
        ("checks: rate === 1", "checks", (), "rate", None, "==", 1.0),
        # Shorthands.
        ("p(95)<500ms", "http_req_duration", (), "p(95)", 95.0, "<", 500.0),
        ("avg<200", "http_req_duration", (), "avg", None, "<", 200.0),
        ("error_rate<1%", "http_req_failed", (), "rate", None, "<", 0.01),
        ("error_rate: rate<0.05", "http_req_failed", (), "rate", None, "<", 0.05),
        # Whitespace everywhere.
        (
            "  http_req_duration { name : GET /x , page:home } :  p ( 95 )  <  500  ms ",
            "http_req_duration",
            (("name", "GET /x"), ("page", "home")),
            "p(95)",
            95.0,
            "<",
            500.0,
        ),
        (
            "http_req_duration{name:'a,b}'}: p(95)<1",
            "http_req_duration",
            (("name", "a,b}"),),
            "p(95)",
            95.0,
            "<",
            1.0,
        ),
    ],
)
def test_parses(
    text: str,
    metric: str,
    tags: tuple[tuple[str, str], ...],
    aggregation: str,
    percentile: float | None,
    op: str,
    value: float,
) -> None:
    spec = parse_threshold(text)
    assert spec.metric == metric
    assert spec.tags == tags
    assert spec.aggregation == aggregation
    assert spec.percentile == percentile
    assert spec.op == op
    assert spec.value == pytest.approx(value)
    assert spec.source == text.strip()
    # Every source parses again to the same threshold (cli merge re-parses sources).
    again = parse_threshold(spec.source)
    assert (again.metric, again.tags, again.aggregation, again.op) == (
        metric,
        tags,
        aggregation,
        op,
    )
    assert again.value == pytest.approx(spec.value)


def test_condition_and_metric_key() -> None:
    spec = parse_threshold("http_req_duration{page:a,name:login}: p(95) < 500ms")
    assert spec.condition == "p(95) < 500ms"
    assert spec.metric_key == "http_req_duration{name:login,page:a}"
    assert parse_threshold("error_rate < 1%").condition == "rate< 1%"
    assert parse_threshold("p(95)<500").metric_key == "http_req_duration"


def test_abort_options_are_kept() -> None:
    spec = parse_threshold("http_req_failed: rate<0.1", abort_on_fail=True, delay_abort_eval_s=10)
    assert spec.abort_on_fail is True
    assert spec.delay_abort_eval_s == 10.0


def test_parse_condition_toml_form() -> None:
    spec = parse_condition("http_req_duration{name:login}", "p(99)<800")
    assert spec.metric_key == "http_req_duration{name:login}"
    assert spec.value == 800.0
    assert spec.condition == "p(99)<800"
    assert spec.source == "http_req_duration{name:login}: p(99)<800"
    assert parse_threshold(spec.source) == spec
    aborting = parse_condition(
        "http_req_failed", "rate<0.01", abort_on_fail=True, delay_abort_eval_s=10.0
    )
    assert aborting.abort_on_fail
    assert aborting.delay_abort_eval_s == 10.0


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("http_req_duration: p(95)=500", 24, "expected one of <, <=, >, >=, ==, !="),
        ("http_req_duration: p(95) 500", 25, "expected one of <, <=, >, >=, ==, !="),
        ("http_req_durations: p(95)<500", 0, "did you mean 'http_req_duration'?"),
        ("http_req_duration: rate<0.1", 19, "aggregation 'rate' does not apply to trend"),
        ("http_req_duration: rate<0.1", 19, "use avg, min, max, med, p(N) or count"),
        ("http_req_failed: p(95)<0.1", 17, "does not apply to rate metric http_req_failed"),
        ("http_reqs: avg<3", 11, "use count or rate"),
        ("http_req_duration: p(0)<500", 21, "percentile must be in (0, 100]"),
        ("http_req_duration: p(101)<500", 21, "percentile must be in (0, 100]"),
        ("http_req_duration: p(95<500", 23, "expected ')'"),
        ("http_req_duration: p95<500", 19, "write percentiles as p(95)"),
        ("http_req_duration: p(95)<", 25, "expected a number"),
        ("http_req_duration: p(95)<abc", 25, "expected a number"),
        ("http_req_duration: p(95)<500 ms extra", 32, "unexpected 'e'"),
        ("http_req_duration: p(95)<500xs", 28, "unknown duration unit 'xs'"),
        ("http_req_duration: avgg<5", 19, "did you mean 'avg'?"),
        ("http_req_failed: rate<5", 22, "write 5% or 0.05"),
        ("http_req_failed: rate<1ms", 23, "expected a fraction"),
        ("http_req_failed: rate<101%", 22, "cannot exceed 100%"),
        ("http_reqs: count<5%", 18, "takes a plain number"),
        ("http_req_duration{name:x: p(95)<5", 33, "expected ',' or '}'"),
        ("http_req_duration{: p(95)<5", 18, "expected a tag name"),
        ("http_req_duration{name}: p(95)<5", 22, "expected ':' after tag name"),
        ("http_req_duration{name:}: p(95)<5", 23, "expected a value for tag 'name'"),
        ("http_req_duration{name:a,name:b}: p(95)<5", 25, "given twice"),
        ("http_req_duration{name:'a}: p(95)<5", 23, "unterminated"),
        ("iterations{name:a}: count>1", 10, "tag filters do not apply to iterations"),
        ("http_req_duration p(95)<5", 18, "expected ':' between the metric and the condition"),
        ("http_req_duration{name:a} p(95)<5", 26, "expected ':'"),
        ("latency<5", 0, "unknown metric 'latency'"),
        ("", 0, "expected a threshold"),
        ("   ", 3, "expected a threshold"),
        ("<500", 0, "expected a metric name or a condition"),
        ("http_req_duration:", 18, "expected an aggregation"),
        ("error_rate", 10, "expected one of"),
        ("error_rate<1% x", 14, "unexpected 'x'"),
        ("p(95)<500 junk", 10, "unknown duration unit 'junk'"),
        ("p(95)<500ms junk", 12, "unexpected 'j' after the threshold value"),
    ],
)
def test_syntax_errors(text: str, position: int, message: str) -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_threshold(text, path="s.toml", line=7, field="thresholds")
    error = info.value
    assert message in error.message
    assert error.position == position, (error.position, error.message)
    assert error.expression == text
    assert error.path == "s.toml"
    assert error.line == 7
    assert error.field == "thresholds"
    assert error.exit_code == 2
    assert error.pointer().splitlines()[1].index("^") == position + 2


def test_parse_condition_errors_point_into_the_right_string() -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_condition("http_req_duratio", "p(95)<5")
    assert info.value.expression == "http_req_duratio"
    assert "did you mean 'http_req_duration'?" in info.value.message
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_condition("http_req_duration", "p(95)>>5")
    assert info.value.expression == "p(95)>>5"
    assert info.value.position == 6
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_condition("http_req_duration: p(95)<5", "p(95)<5")
    assert info.value.position == 17
    assert "the condition goes in the list" in info.value.message


def test_error_message_is_readable() -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_threshold("http_req_duration: p(95)=500", path="s.toml", line=3)
    assert str(info.value) == (
        "s.toml:3: expected one of <, <=, >, >=, ==, !=, found '=' "
        "in threshold 'http_req_duration: p(95)=500' at character 25"
    )


def test_metric_kind() -> None:
    assert metric_kind("http_req_duration") == "trend"
    assert metric_kind("checks") == "rate"
    assert metric_kind("http_reqs") == "counter"
    with pytest.raises(KeyError):
        metric_kind("nope")


VALID = [
    "http_req_duration: p(95)<500",
    "http_req_duration{name:login}: p(99.9)<=1.5s",
    "http_req_failed: rate<1%",
    "http_reqs: rate>1000",
    "checks: rate>0.99",
    "dropped_iterations: count==0",
    "p(95)<500ms",
    "error_rate<1%",
]


def _check_outcome(text: str) -> None:
    try:
        spec = parse_threshold(text)
    except ThresholdSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        assert exc.expression == text
        exc.pointer()
        str(exc)
    else:
        assert isinstance(spec, ThresholdSpec)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_random_text(text: str) -> None:
    _check_outcome(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="htp_rqdusaion{}:,()<>=!%.0123456789 -mµe'\"", max_size=40))
def test_fuzz_grammar_alphabet(text: str) -> None:
    _check_outcome(text)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(VALID),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(min_value=0, max_value=60),
            st.characters(),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_mutations(base: str, edits: list[tuple[str, int, str]]) -> None:
    text = base
    for kind, index, char in edits:
        at = index % (len(text) + 1)
        if kind == "insert":
            text = text[:at] + char + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    _check_outcome(text)


# ------------------------------------------------------------------- evaluation


def _name(
    result: LoadResult,
    name: str,
    latencies_ms: dict[int, list[float]],
    *,
    service_ms: list[float] | None = None,
    errors: dict[int, int] | None = None,
    tags: dict[str, str] | None = None,
    checks: dict[str, list[int]] | None = None,
) -> NameStats:
    stats = result.name_stats(name)
    stats.tags.update(tags or {})
    for second, values in latencies_ms.items():
        sec = stats.second(second)
        for value in values:
            sec.latency.record(value / 1000)
            sec.requests += 1
        for value in service_ms if service_ms is not None else values:
            sec.service.record(value / 1000)
    for second, count in (errors or {}).items():
        stats.second(second).errors["status_5xx"] = count
    stats.checks.update(checks or {})
    return stats


@pytest.fixture
def result() -> LoadResult:
    run = LoadResult(name="r", started_at=1000.0, ended_at=1010.0)
    _name(
        run,
        "home",
        {0: [10.0] * 50, 5: [30.0] * 50},
        tags={"page": "home"},
        checks={"status is 200": [90, 10]},
        errors={5: 5},
    )
    _name(
        run,
        "login",
        {1: [100.0] * 100},
        service_ms=[],
        tags={"page": "auth"},
        checks={"status is 200": [100, 0]},
    )
    run.counters.update({"iterations": 200, "dropped_iterations": 3})
    return run


def _observed(text: str, run: LoadResult, **kwargs: int) -> float | None:
    return evaluate(parse_threshold(text), run, **kwargs).observed


def test_evaluate_trend_aggregations(result: LoadResult) -> None:
    assert _observed("http_req_duration: max<1", result) == pytest.approx(100.0, rel=0.01)
    assert _observed("http_req_duration: min<1", result) == pytest.approx(10.0, rel=0.01)
    assert _observed("http_req_duration: avg<1", result) == pytest.approx(60.0, rel=0.01)
    assert _observed("http_req_duration: med<1", result) == pytest.approx(30.0, rel=0.01)
    assert _observed("http_req_duration: p(25)<1", result) == pytest.approx(10.0, rel=0.01)
    assert _observed("http_req_duration: p(99.9)<1", result) == pytest.approx(100.0, rel=0.01)
    assert _observed("http_req_duration: count<1", result) == 200.0


def test_evaluate_verdict(result: LoadResult) -> None:
    passing = evaluate(parse_threshold("http_req_duration: p(95)<150"), result)
    assert passing == ThresholdResult(
        metric="http_req_duration",
        expression="p(95)<150",
        passed=True,
        observed=passing.observed,
        aborted=False,
    )
    failing = evaluate(parse_threshold("http_req_duration{name:login}: p(95) < 50ms"), result)
    assert failing.passed is False
    assert failing.metric == "http_req_duration{name:login}"
    assert failing.expression == "p(95) < 50ms"


def test_evaluate_tag_filters(result: LoadResult) -> None:
    assert _observed("http_req_duration{name:home}: max<1", result) == pytest.approx(30, rel=0.01)
    assert _observed("http_req_duration{page:auth}: min<1", result) == pytest.approx(100, rel=0.01)
    assert _observed("http_reqs{page:home}: count>0", result) == 100.0
    assert _observed("http_reqs{name:home,page:auth}: count>0", result) == 0.0


def test_evaluate_service_duration(result: LoadResult) -> None:
    # login recorded no service times: only home's are merged.
    assert _observed("http_req_service_duration: max<1", result) == pytest.approx(30, rel=0.01)
    assert _observed("http_req_service_duration: count>1", result) == 100.0


def test_evaluate_rates_and_counters(result: LoadResult) -> None:
    assert _observed("http_req_failed: rate<0.1", result) == pytest.approx(5 / 200)
    assert _observed("http_req_failed{name:home}: rate<0.1", result) == pytest.approx(5 / 100)
    assert _observed("checks: rate>0.9", result) == pytest.approx(190 / 200)
    assert _observed("checks{name:login}: rate>0.9", result) == 1.0
    assert _observed("http_reqs: count>0", result) == 200.0
    assert _observed("http_reqs: rate>0", result) == pytest.approx(20.0)
    assert _observed("iterations: count>0", result) == 200.0
    assert _observed("iterations: rate>0", result) == pytest.approx(20.0)
    assert _observed("dropped_iterations: count==0", result) == 3.0
    assert evaluate(parse_threshold("dropped_iterations: count==0"), result).passed is False
    assert evaluate(parse_threshold("error_rate<1%"), result).passed is False


@pytest.mark.parametrize(
    "text",
    [
        "http_req_duration{name:nope}: p(95)<1",
        "http_req_duration{name:nope}: avg>1000",
        "http_req_failed{name:nope}: rate<0.01",
        "checks{name:nope}: rate>0.99",
        "http_req_service_duration{name:login}: p(95)<1",
    ],
)
def test_no_data_passes(result: LoadResult, text: str) -> None:
    verdict = evaluate(parse_threshold(text), result)
    assert verdict.observed is None
    assert verdict.passed is True


def test_zero_counts_are_data(result: LoadResult) -> None:
    verdict = evaluate(parse_threshold("http_reqs{name:nope}: count>0"), result)
    assert verdict.observed == 0.0
    assert verdict.passed is False


def test_zero_length_run_has_no_rate() -> None:
    run = LoadResult(name="r", started_at=5.0, ended_at=5.0)
    verdict = evaluate(parse_threshold("http_reqs: rate>10"), run)
    assert verdict.observed is None
    assert verdict.passed is True


def test_end_second_limits_the_window(result: LoadResult) -> None:
    assert _observed("http_req_duration: max<1", result, end_second=1) == pytest.approx(
        10, rel=0.01
    )
    assert _observed("http_reqs: count>0", result, end_second=2) == 150.0
    assert _observed("http_reqs: rate>0", result, end_second=2) == 75.0
    assert _observed("http_req_failed: rate<1", result, end_second=5) == 0.0
    assert _observed("iterations: rate>0", result, end_second=4) == 50.0


@pytest.mark.parametrize(
    ("op", "expected"),
    [("<", False), ("<=", True), (">", False), (">=", True), ("==", True), ("!=", False)],
)
def test_operators(op: str, expected: bool) -> None:
    run = LoadResult(name="r", started_at=0.0, ended_at=1.0)
    run.counters["iterations"] = 5
    assert evaluate(parse_threshold(f"iterations: count{op}5"), run).passed is expected


def test_evaluate_all_keeps_order(result: LoadResult) -> None:
    specs = [parse_threshold(t) for t in ("p(95)<1", "error_rate<50%", "checks: rate>0.5")]
    verdicts = evaluate_all(specs, result)
    assert [v.metric for v in verdicts] == ["http_req_duration", "http_req_failed", "checks"]
    assert [v.passed for v in verdicts] == [False, True, True]
