"""Tests for perfpilot.load.scenario: TOML scenarios, URL plans and flow files."""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfpilot.errors import ConfigError, ThresholdSyntaxError
from perfpilot.load.plan import Check, ExecutorSpec, FlowSpec, Stage
from perfpilot.load.scenario import load_flow, load_scenario, open_model_vus, plan_from_url

FULL = """\
name = "checkout"
base_url = "http://127.0.0.1:8000"

[executor]
type = "ramping-vus"
startVUs = 2
stages = [ { duration = "30s", target = 100 }, { duration = "4m", target = 100 } ]
graceful_stop = "10s"

[defaults]
headers = { Accept = "application/json" }
think_time = ["0.5s", "2s"]
timeout = "20s"
connect_timeout = "3s"
follow_redirects = true
insecure = true

[[requests]]
name = "home"
method = "get"
path = "/"
weight = 3
tags = { page = "home" }
headers = { X-Trace = "1" }
checks = [ { status = 200 }, { status = [200, 201] }, { body_contains = "ok" }, { json = "items.0.id" }, { json = "status", equals = "ok" } ]

[[requests]]
method = "POST"
path = "/orders?user=${vu}&n=${iter}"
json = { a = 1, b = [true, "x"] }

[[requests]]
method = "POST"
path = "login"
form = { user = "u", tags = ["a", "b"] }

[[requests]]
method = "PUT"
url = "https://other.example:8443/raw"
body = "raw text"
headers = { Content-Type = "text/csv" }

[thresholds]
http_req_duration = ["p(95)<500", "avg<200"]
"http_req_duration{name:home}" = ["p(99)<800"]
http_req_failed = [{ threshold = "rate<0.01", abortOnFail = true, delayAbortEval = "10s" }]
checks = { threshold = "rate>0.9", abort_on_fail = true, delay_abort_eval = "1m" }
"""


def write(tmp_path: Path, text: str, name: str = "scenario.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


MINIMAL = """\
base_url = "http://h:1"
[executor]
type = "constant-vus"
duration = "5s"
[[requests]]
path = "/"
"""


def test_full_scenario(tmp_path: Path) -> None:
    plan = load_scenario(write(tmp_path, FULL))
    assert plan.name == "checkout"
    assert plan.base_url == "http://127.0.0.1:8000"
    assert plan.executor == ExecutorSpec(
        kind="ramping-vus",
        vus=2,
        stages=(Stage(30.0, 100.0), Stage(240.0, 100.0)),
        graceful_stop_s=10.0,
    )
    assert plan.default_headers == (("Accept", "application/json"),)
    assert plan.think_time_s == (0.5, 2.0)
    assert plan.request_timeout_s == 20.0
    assert plan.connect_timeout_s == 3.0
    assert plan.follow_redirects is True
    assert plan.insecure is True

    home, order, login, raw = plan.requests
    assert home.name == "home"
    assert home.method == "GET"
    assert home.url == "http://127.0.0.1:8000/"
    assert home.weight == 3.0
    assert dict(home.tags) == {"page": "home"}
    assert home.headers == (("X-Trace", "1"),)
    assert home.body is None
    assert home.checks == (
        Check(kind="status", name="status is 200", statuses=(200,)),
        Check(kind="status", name="status in [200, 201]", statuses=(200, 201)),
        Check(kind="body_contains", name="body contains 'ok'", text="ok"),
        Check(kind="json_field", name="json items.0.id exists", path="items.0.id"),
        Check(
            kind="json_field",
            name="json status == 'ok'",
            path="status",
            expected="ok",
            has_expected=True,
        ),
    )

    assert order.name == "POST /orders"
    assert order.url == "http://127.0.0.1:8000/orders?user=${vu}&n=${iter}"
    assert order.body is not None
    assert json.loads(order.body) == {"a": 1, "b": [True, "x"]}
    assert ("Content-Type", "application/json") in order.headers
    assert order.weight == 1.0

    assert login.url == "http://127.0.0.1:8000/login"
    assert login.name == "POST /login"
    assert login.body == b"user=u&tags=a&tags=b"
    assert ("Content-Type", "application/x-www-form-urlencoded") in login.headers

    assert raw.url == "https://other.example:8443/raw"
    assert raw.name == "PUT /raw"
    assert raw.body == b"raw text"
    assert raw.headers == (("Content-Type", "text/csv"),)

    sources = [t.source for t in plan.thresholds]
    assert sources == [
        "http_req_duration: p(95)<500",
        "http_req_duration: avg<200",
        "http_req_duration{name:home}: p(99)<800",
        "http_req_failed: rate<0.01",
        "checks: rate>0.9",
    ]
    failed, checks = plan.thresholds[3], plan.thresholds[4]
    assert failed.abort_on_fail
    assert failed.delay_abort_eval_s == 10.0
    assert checks.abort_on_fail
    assert checks.delay_abort_eval_s == 60.0
    assert not plan.thresholds[0].abort_on_fail
    plan.describe()  # JSON-ready


def test_minimal_defaults(tmp_path: Path) -> None:
    plan = load_scenario(write(tmp_path, MINIMAL, "smoke-test.toml"))
    assert plan.name == "smoke-test"
    assert plan.executor == ExecutorSpec(kind="constant-vus", vus=1, duration_s=5.0)
    (request,) = plan.requests
    assert (request.name, request.method, request.url) == ("GET /", "GET", "http://h:1/")
    assert plan.think_time_s == (0.0, 0.0)
    assert plan.request_timeout_s == 30.0
    assert plan.thresholds == ()
    assert plan.flow is None


def test_base_url_with_prefix_and_argument(tmp_path: Path) -> None:
    text = MINIMAL.replace("http://h:1", "http://h:1/api/").replace('path = "/"', 'path = "/x"')
    path = write(tmp_path, text)
    assert load_scenario(path).requests[0].url == "http://h:1/api/x"
    plan = load_scenario(path, base_url="https://other")
    assert plan.requests[0].url == "https://other/x"
    assert plan.base_url == "https://other"


def test_base_url_not_needed_with_absolute_urls(tmp_path: Path) -> None:
    text = MINIMAL.replace('base_url = "http://h:1"\n', "").replace(
        'path = "/"', 'url = "http://a.example/x?q=1"'
    )
    plan = load_scenario(write(tmp_path, text))
    assert plan.base_url is None
    assert plan.requests[0].name == "GET /x"


def test_think_time_single_value(tmp_path: Path) -> None:
    text = MINIMAL + '[defaults]\nthink_time = "250ms"\n'
    assert load_scenario(write(tmp_path, text)).think_time_s == (0.25, 0.25)


def test_content_type_from_defaults_is_respected(tmp_path: Path) -> None:
    text = MINIMAL.replace('path = "/"', 'path = "/"\njson = [1]') + (
        '[defaults]\nheaders = { "content-type" = "application/vnd.x+json" }\n'
    )
    (request,) = load_scenario(write(tmp_path, text)).requests
    assert request.headers == ()
    assert request.body == b"[1]"


def test_json_datetime_values_become_iso_strings(tmp_path: Path) -> None:
    text = MINIMAL.replace('path = "/"', 'path = "/"\njson = { at = 1979-05-27T07:32:00Z }')
    (request,) = load_scenario(write(tmp_path, text)).requests
    assert request.body == b'{"at":"1979-05-27T07:32:00+00:00"}'


def test_check_equals_formats(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'path = "/"',
        'path = "/"\nchecks = [{ json = "n", equals = 3 }, { json = "ok", equals = true },'
        ' { status = 204, name = "no content" }]',
    )
    checks = load_scenario(write(tmp_path, text)).requests[0].checks
    assert [c.name for c in checks] == ["json n == 3", "json ok == true", "no content"]
    assert checks[1].expected is True


@pytest.mark.parametrize(
    ("executor", "expected"),
    [
        (
            'type = "constant-vus"\nvus = 10\nduration = "30s"',
            ExecutorSpec(kind="constant-vus", vus=10, duration_s=30.0),
        ),
        (
            'type = "ramping-vus"\nstart_vus = 0\nstages = [{duration = "1m", target = 5}]',
            ExecutorSpec(kind="ramping-vus", vus=0, stages=(Stage(60.0, 5.0),)),
        ),
        (
            'type = "constant-arrival-rate"\nrate = 120\ntimeUnit = "1m"\nduration = "1m"\n'
            "preAllocatedVUs = 5\nmaxVUs = 50\ngracefulStop = 0",
            ExecutorSpec(
                kind="constant-arrival-rate",
                rate=2.0,
                duration_s=60.0,
                pre_allocated_vus=5,
                max_vus=50,
                graceful_stop_s=0.0,
            ),
        ),
        (
            'type = "constant-arrival-rate"\nrate = 200\nduration = 10',
            ExecutorSpec(
                kind="constant-arrival-rate",
                rate=200.0,
                duration_s=10.0,
                pre_allocated_vus=100,
                max_vus=2000,
            ),
        ),
        (
            'type = "ramping-arrival-rate"\nstartRate = 10\ntime_unit = "2s"\n'
            "pre_allocated_vus = 4\nmax_vus = 8\n"
            'stages = [{duration = "10s", target = 100}, {duration = "0s", target = 0},'
            ' {duration = "5s", target = 0}]',
            ExecutorSpec(
                kind="ramping-arrival-rate",
                rate=5.0,
                stages=(Stage(10.0, 50.0), Stage(0.0, 0.0), Stage(5.0, 0.0)),
                pre_allocated_vus=4,
                max_vus=8,
            ),
        ),
    ],
)
def test_executor_kinds(tmp_path: Path, executor: str, expected: ExecutorSpec) -> None:
    text = 'base_url = "http://h"\n[executor]\n' + executor + '\n[[requests]]\npath = "/"\n'
    assert load_scenario(write(tmp_path, text)).executor == expected


def test_open_model_defaults() -> None:
    assert open_model_vus(0.5) == (1, 100)
    assert open_model_vus(50) == (50, 500)
    assert open_model_vus(5000) == (100, 10_000)
    assert open_model_vus(50, max_vus=20) == (20, 20)
    assert open_model_vus(50, pre_allocated=300) == (300, 500)
    assert open_model_vus(50, pre_allocated=3000) == (3000, 3000)


def test_preset_in_file_and_overrides(tmp_path: Path) -> None:
    text = (
        'base_url = "http://h"\n[executor]\npreset = "normal"\nscale = 0.1\n'
        'duration = "1m"\ngraceful_stop = "1s"\n[[requests]]\npath = "/"\n'
    )
    path = write(tmp_path, text)
    spec = load_scenario(path).executor
    assert (spec.kind, spec.peak(), spec.total_duration_s, spec.graceful_stop_s) == (
        "ramping-vus",
        10.0,
        60.0,
        1.0,
    )
    spec = load_scenario(path, scale=0.5).executor
    assert (spec.peak(), spec.total_duration_s) == (50.0, 60.0)
    spec = load_scenario(path, preset="spike", scale=0.001, duration_s=30).executor
    assert [s.target for s in spec.stages] == [10.0, 10.0, 0.0]
    assert spec.total_duration_s == pytest.approx(30.0)
    assert spec.graceful_stop_s == 1.0


def test_preset_argument_makes_executor_optional(tmp_path: Path) -> None:
    path = write(tmp_path, 'base_url = "http://h"\n[[requests]]\npath = "/"\n')
    assert load_scenario(path, preset="smoke").executor.kind == "constant-vus"
    with pytest.raises(ConfigError, match="missing \\[executor\\] table"):
        load_scenario(path)


def test_scale_and_duration_apply_to_file_executor(tmp_path: Path) -> None:
    text = MINIMAL.replace('duration = "5s"', 'duration = "5s"\nvus = 10')
    spec = load_scenario(write(tmp_path, text), scale=3, duration_s=60).executor
    assert (spec.vus, spec.duration_s) == (30, 60.0)


def test_vus_and_rate_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    spec = load_scenario(path, vus=7).executor
    assert spec == ExecutorSpec(kind="constant-vus", vus=7, duration_s=5.0)
    spec = load_scenario(path, rate=50, duration_s=20).executor
    assert (spec.kind, spec.rate, spec.duration_s, spec.pre_allocated_vus, spec.max_vus) == (
        "constant-arrival-rate",
        50.0,
        20.0,
        50,
        500,
    )
    spec = load_scenario(path, rate=50, vus=5, max_vus=10).executor
    assert (spec.pre_allocated_vus, spec.max_vus) == (5, 10)
    with pytest.raises(ConfigError, match="--rate cannot be combined with --preset"):
        load_scenario(path, rate=5, preset="smoke")
    with pytest.raises(ConfigError) as info:
        load_scenario(path, vus=0)
    assert info.value.field == "--vus"


def test_flow(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "journey.py").write_text("async def journey(session):\n    pass\n")
    text = 'base_url = "http://h"\n[executor]\ntype="constant-vus"\nduration="1s"\n'
    text += '[flow]\nfile = "flows/journey.py"\nfunction = "journey"\n'
    plan = load_scenario(write(tmp_path, text))
    assert plan.requests == ()
    assert plan.flow == FlowSpec(path=str(tmp_path / "flows" / "journey.py"), function="journey")
    assert inspect.iscoroutinefunction(load_flow(plan.flow))


def test_extra_thresholds(tmp_path: Path) -> None:
    plan = load_scenario(write(tmp_path, MINIMAL), extra_thresholds=["p(95)<300", "error_rate<2%"])
    assert [t.source for t in plan.thresholds] == ["p(95)<300", "error_rate<2%"]
    with pytest.raises(ThresholdSyntaxError) as info:
        load_scenario(write(tmp_path, MINIMAL), extra_thresholds=["p(95)<<300"])
    assert info.value.field == "--threshold"


# ---------------------------------------------------------------------- errors

ERRORS = [
    # (scenario text, line, field, part of the message)
    ("color = 1\n" + MINIMAL, 1, "color", "unknown field 'color'"),
    ("reqests = []\n" + MINIMAL, 1, "reqests", "did you mean 'requests'?"),
    (MINIMAL + "color = 1\n", 7, "requests[0].color", "unknown field 'color'"),
    (
        MINIMAL.replace('type = "constant-vus"', 'type = "constant-vu"'),
        3,
        "executor.type",
        "(did you mean 'constant-vus'?); expected one of constant-vus, ramping-vus,",
    ),
    (
        MINIMAL.replace('type = "constant-vus"', 'type = "closed"'),
        3,
        "executor.type",
        "expected one of constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate",
    ),
    (MINIMAL.replace('duration = "5s"', 'duration = "-5s"'), 4, "executor.duration", "negative"),
    (MINIMAL.replace('duration = "5s"', 'duration = "0s"'), 4, "executor.duration", "> 0"),
    (
        MINIMAL.replace('duration = "5s"', "duration = true"),
        4,
        "executor.duration",
        "got bool True",
    ),
    (MINIMAL.replace('duration = "5s"', 'duratoin = "5s"'), 4, "executor.duratoin", "'duration'"),
    (MINIMAL.replace('duration = "5s"', "vus = 2"), 2, "executor", "missing duration"),
    (
        MINIMAL.replace('duration = "5s"', 'duration = "5s"\nrate = 3'),
        5,
        "executor.rate",
        "'rate' does not apply to constant-vus executors",
    ),
    (
        MINIMAL.replace('duration = "5s"', 'duration = "5s"\nvus = "ten"'),
        5,
        "executor.vus",
        "expected a whole number, got a string 'ten'",
    ),
    (
        MINIMAL.replace('duration = "5s"', 'duration = "5s"\nvus = 0'),
        5,
        "executor.vus",
        "expected a whole number >= 1",
    ),
    (
        MINIMAL.replace('duration = "5s"', 'duration = "5s"\nvus = 1\nstartVUs = 2'),
        6,
        "executor.startVUs",
        "are the same field",
    ),
    (
        MINIMAL.replace(
            'type = "constant-vus"\nduration = "5s"',
            'type = "ramping-vus"\nstages = [\n  { duration = "5s", target = 1 },\n'
            '  { duration = "5s" },\n]',
        ),
        6,
        "executor.stages[1]",
        "stage without target",
    ),
    (
        MINIMAL.replace(
            'type = "constant-vus"\nduration = "5s"',
            'type = "ramping-vus"\nstages = [\n  { duration = "5s", target = 1.5 },\n]',
        ),
        5,
        "executor.stages[0].target",
        "expected a whole number",
    ),
    (
        MINIMAL.replace(
            'type = "constant-vus"\nduration = "5s"',
            'type = "ramping-vus"\nstages = [{ duration = "0s", target = 1 }]',
        ),
        4,
        "executor.stages",
        "no time at all",
    ),
    (
        MINIMAL.replace('type = "constant-vus"\nduration = "5s"', 'type = "ramping-vus"'),
        2,
        "executor",
        "missing stages",
    ),
    (
        MINIMAL.replace(
            'type = "constant-vus"\nduration = "5s"',
            'type = "constant-arrival-rate"\nrate = 5\nduration = "5s"\n'
            "pre_allocated_vus = 10\nmax_vus = 5",
        ),
        7,
        "executor.max_vus",
        "must be at least pre_allocated_vus",
    ),
    (
        MINIMAL.replace('type = "constant-vus"', 'preset = "norml"'),
        3,
        "executor.preset",
        "did you mean 'normal'?",
    ),
    (
        MINIMAL.replace('type = "constant-vus"', 'preset = "normal"\ntype = "constant-vus"'),
        4,
        "executor.type",
        "either preset or type",
    ),
    (MINIMAL.replace('base_url = "http://h:1"\n', ""), None, "base_url", "missing base_url"),
    (
        MINIMAL.replace('"http://h:1"', '"ftp://h"'),
        1,
        "base_url",
        "invalid URL 'ftp://h': expected http://host[:port]/path",
    ),
    (MINIMAL.replace('"http://h:1"', '"http://h:99999"'), 1, "base_url", "invalid URL"),
    (MINIMAL.replace('"http://h:1"', '"http://h/?q=1"'), 1, "base_url", "query or fragment"),
    (MINIMAL.replace('"http://h:1"', "1"), 1, "base_url", "expected a string"),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\njson = {a = 1}\nbody = "x"'),
        8,
        "requests[0].body",
        "one of json, form or body, not json and body",
    ),
    (MINIMAL.replace('path = "/"', 'path = "/"\nweight = 0'), 7, "requests[0].weight", "> 0"),
    (MINIMAL.replace('path = "/"', 'path = "/"\nweight = -2'), 7, "requests[0].weight", "> 0"),
    (MINIMAL.replace('path = "/"', 'path = "/"\nweight = nan'), 7, "requests[0].weight", "finite"),
    (MINIMAL.replace('path = "/"', 'path = "/${user}"'), 6, "requests[0].path", "${user}"),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nmethod = "G T"'),
        7,
        "requests[0].method",
        "method",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nurl = "http://x/"'),
        7,
        "requests[0].url",
        "either path or url",
    ),
    (MINIMAL.replace('path = "/"', 'url = "mailto:x"'), 6, "requests[0].url", "invalid URL"),
    (MINIMAL.replace('path = "/"', 'path = "http://x/"'), 6, "requests[0].path", "use url ="),
    (MINIMAL.replace('path = "/"', 'name = "x"'), 5, "requests[0]", "needs a path"),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nheaders = { "Bad Header" = "1" }'),
        7,
        "requests[0].headers.Bad Header",
        "invalid header name",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\ntags = { name = "x" }'),
        7,
        "requests[0].tags.name",
        "set it with name = ...",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nchecks = [{ status = 700 }]'),
        7,
        "requests[0].checks[0].status",
        "100-599",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nchecks = [{ status = [200, "x"] }]'),
        7,
        "requests[0].checks[0].status[1]",
        "expected a whole number",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nchecks = [{ status = 200, json = "a" }]'),
        7,
        "requests[0].checks[0].json",
        "one check per table",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nchecks = [{ statuss = 200 }]'),
        7,
        "requests[0].checks[0].statuss",
        "did you mean 'status'?",
    ),
    (
        MINIMAL.replace('path = "/"', 'path = "/"\nchecks = [{ status = 200, equals = 1 }]'),
        7,
        "requests[0].checks[0].equals",
        "equals goes with a json check",
    ),
    (
        MINIMAL.replace('[[requests]]\npath = "/"\n', ""),
        None,
        "requests",
        "nothing to send",
    ),
    (
        MINIMAL.replace('[[requests]]\npath = "/"\n', "[requests]\npath = '/'\n"),
        5,
        "requests",
        "[[requests]]",
    ),
    (MINIMAL + '[flow]\nfile = "missing.py"\n', 8, "flow.file", "flow file not found"),
    (MINIMAL + "[flow]\nfunction = 'f'\n", 7, "flow", "missing file"),
    (MINIMAL + "[defaults]\nthink_time = ['2s', '1s']\n", 8, "defaults.think_time", "below"),
    (MINIMAL + "[defaults]\nthink_time = ['2s']\n", 8, "defaults.think_time", "[min, max]"),
    (MINIMAL + "[defaults]\ntimeout = '0s'\n", 8, "defaults.timeout", "> 0"),
    (MINIMAL + "[defaults]\ninsecure = 'yes'\n", 8, "defaults.insecure", "true or false"),
    (MINIMAL + "[defaults]\nheaders = 'x'\n", 8, "defaults.headers", "expected a table"),
    ("defaults = 3\n" + MINIMAL, 1, "defaults", "expected a table"),
    (
        MINIMAL + "[thresholds]\nhttp_req_duration = [3]\n",
        8,
        "thresholds.http_req_duration[0]",
        "condition string",
    ),
    (
        MINIMAL + "[thresholds]\nhttp_req_failed = [{ treshold = 'rate<1' }]\n",
        8,
        "thresholds.http_req_failed[0].treshold",
        "did you mean 'threshold'?",
    ),
    (
        MINIMAL + "[thresholds]\nhttp_req_failed = [{ threshold = 'rate<1', abortOnFail = 1 }]\n",
        8,
        "thresholds.http_req_failed[0].abortOnFail",
        "true or false",
    ),
    (
        MINIMAL + "[thresholds]\nhttp_req_duration = []\n",
        8,
        "thresholds.http_req_duration",
        "at least one",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), ERRORS)
def test_config_errors(
    tmp_path: Path, text: str, line: int | None, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    error = info.value
    assert message in error.message
    assert error.path == path
    assert error.field == field
    assert error.line == line
    assert error.exit_code == 2
    assert str(error).startswith(path)


def test_threshold_errors_carry_file_line_and_field(tmp_path: Path) -> None:
    text = MINIMAL + '[thresholds]\n"http_req_duration{name:x}" = ["p(95)<500", "p(95)=<5"]\n'
    path = write(tmp_path, text)
    with pytest.raises(ThresholdSyntaxError) as info:
        load_scenario(path)
    error = info.value
    assert (error.path, error.line, error.field) == (
        path,
        8,
        "thresholds.http_req_duration{name:x}",
    )
    assert error.expression == "p(95)=<5"
    assert error.position == 5
    with pytest.raises(ThresholdSyntaxError) as info:
        load_scenario(write(tmp_path, MINIMAL + "[thresholds]\nhttp_req_durations = ['p(95)<1']\n"))
    assert "did you mean 'http_req_duration'?" in info.value.message


def test_lines_in_arrays_of_tables(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + '\n[[requests]]\npath = "/a"\n\n[[requests]]  # third\n# comment\nweight = 0\npath = "/b"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, text))
    assert (info.value.line, info.value.column, info.value.field) == (13, 1, "requests[2].weight")


def test_lines_inside_inline_tables_and_dotted_keys(tmp_path: Path) -> None:
    text = (
        'base_url = "http://h"\n'
        'executor.type = "constant-vus"\n'
        'executor.duration = "1s"\n'
        'requests = [\n  { path = "/" },\n  { path = "/x", weight = -1 },\n]\n'
    )
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, text))
    assert (info.value.line, info.value.column) == (6, 18)
    assert info.value.field == "requests[1].weight"


def test_malformed_toml_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\nbase_url = http://h\n')
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert info.value.line == 2
    assert info.value.column == 12
    assert info.value.message.startswith("invalid TOML: ")
    assert "(at line" not in info.value.message


def test_unterminated_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_scenario(write(tmp_path, 'name = "x'))
    assert info.value.line == 1


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes(b'name = "x"\nbase_url = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_scenario(str(path))
    assert info.value.line == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario(str(tmp_path))


def test_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_scenario(path, base_url="localhost:8000")
    assert info.value.field == "--base-url"
    with pytest.raises(ConfigError, match="unknown preset"):
        load_scenario(path, preset="nope")
    with pytest.raises(ConfigError) as info:
        load_scenario(path, scale=0)
    assert info.value.field == "--scale"
    with pytest.raises(ConfigError) as info:
        load_scenario(path, duration_s=-1)
    assert info.value.field == "--duration"


# ------------------------------------------------------------------------ fuzz


def _only_config_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    try:
        load_scenario(str(path))
    except ConfigError as exc:
        str(exc)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200))
def test_fuzz_bytes(tmp_path: Path, data: bytes) -> None:
    _only_config_errors(tmp_path, data)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(alphabet=st.sampled_from(list("[]{}=\"'.,#\n =abcdef0123456789-:_ \t\\")), max_size=120)
)
def test_fuzz_toml_ish_text(tmp_path: Path, text: str) -> None:
    _only_config_errors(tmp_path, text.encode("utf-8"))


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["30s", "1m", "-1s", "0s", "/", "http://h/", "ramping-vus", "p(95)<5"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _toml_value(value: object) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(
        [
            "executor.type",
            "executor.duration",
            "executor.vus",
            "executor.stages",
            "executor.rate",
            "executor.preset",
            "defaults.think_time",
            "defaults.headers",
            "requests.path",
            "requests.json",
            "requests.form",
            "requests.checks",
            "requests.tags",
            "requests.weight",
            "thresholds.http_req_duration",
            "thresholds.checks",
            "flow.file",
            "name",
            "base_url",
        ]
    ),
    VALUES,
)
def test_fuzz_field_values(tmp_path: Path, field: str, value: object) -> None:
    table, _, key = field.rpartition(".")
    tables: dict[str, dict[str, str]] = {
        "": {"name": '"n"', "base_url": '"http://h"'},
        "executor": {"type": '"constant-vus"', "duration": '"1s"'},
        "defaults": {},
        "requests": {"path": '"/"'},
        "thresholds": {},
    }
    tables.setdefault(table, {})[key] = _toml_value(value)
    text = ""
    for name, entries in tables.items():
        if name:
            text += f"[[{name}]]\n" if name == "requests" else f"[{name}]\n"
        text += "".join(f"{k} = {v}\n" for k, v in entries.items())
    _only_config_errors(tmp_path, text.encode("utf-8"))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(min_value=0, max_value=len(FULL)),
            st.sampled_from([*"[]{}=\"'.,#\n =-:0s%", "\\", "\u00e9", "\x00"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_mutated_full_scenario(tmp_path: Path, edits: list[tuple[str, int, str]]) -> None:
    text = FULL
    for kind, index, char in edits:
        at = index % (len(text) + 1)
        if kind == "insert":
            text = text[:at] + char + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    _only_config_errors(tmp_path, text.encode("utf-8"))


# ----------------------------------------------------------------------- flows


def _flow_file(tmp_path: Path, source: str, name: str = "flows.py") -> FlowSpec:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return FlowSpec(path=str(path), function="journey")


def test_load_flow_imports_neighbours(tmp_path: Path) -> None:
    (tmp_path / "helpers_for_flow_test.py").write_text("PATH = '/x'\n")
    spec = _flow_file(
        tmp_path,
        """\
        import dataclasses
        from helpers_for_flow_test import PATH

        @dataclasses.dataclass
        class Item:
            n: int

        async def journey(session):
            return PATH
        """,
    )
    try:
        flow = load_flow(spec)
        assert inspect.iscoroutinefunction(flow)
        assert flow.__name__ == "journey"
        assert str(tmp_path) not in sys.path
    finally:
        sys.modules.pop("helpers_for_flow_test", None)


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("x = 1\ndef journey(:\n    pass\n", 2, "SyntaxError"),
        ("import no_such_module_for_perfpilot\n", 1, "ModuleNotFoundError"),
        ("x = 1\n\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
        ("import sys\nsys.exit(3)\n", 2, "SystemExit"),
        ("def helper():\n    return 1 / 0\n\nhelper()\n", 2, "ZeroDivisionError"),
    ],
)
def test_load_flow_import_failures(tmp_path: Path, source: str, line: int, message: str) -> None:
    spec = _flow_file(tmp_path, source)
    with pytest.raises(ConfigError) as info:
        load_flow(spec)
    error = info.value
    assert error.message.startswith("flow file failed to import: ")
    assert message in error.message
    assert error.line == line
    assert error.path == spec.path
    assert not any(
        name.startswith("perfpilot_flow_") and getattr(module, "__file__", None) == spec.path
        for name, module in sys.modules.items()
    )


def test_load_flow_missing_function(tmp_path: Path) -> None:
    spec = _flow_file(tmp_path, "async def jurney(session):\n    pass\n")
    with pytest.raises(ConfigError) as info:
        load_flow(spec)
    assert "no function 'journey' (did you mean 'jurney'?)" in info.value.message
    assert info.value.field == "flow.function"


def test_load_flow_not_async(tmp_path: Path) -> None:
    spec = _flow_file(tmp_path, "\n\ndef journey(session):\n    pass\n")
    with pytest.raises(ConfigError, match="must be an async function") as info:
        load_flow(spec)
    assert info.value.line == 3


def test_load_flow_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="flow file not found"):
        load_flow(FlowSpec(path=str(tmp_path / "nope.py")))


# --------------------------------------------------------------------- URL plans


def test_plan_from_url_defaults() -> None:
    plan = plan_from_url("http://127.0.0.1:8000/health?x=1")
    assert plan.name == "http://127.0.0.1:8000/health?x=1"
    assert plan.executor == ExecutorSpec(kind="constant-vus", vus=1, duration_s=10.0)
    (request,) = plan.requests
    assert request.name == "GET /health"
    assert request.url == "http://127.0.0.1:8000/health?x=1"
    assert request.body is None
    assert plan.base_url == "http://127.0.0.1:8000"
    assert plan_from_url("https://h").requests[0].name == "GET /"


def test_plan_from_url_options(tmp_path: Path) -> None:
    plan = plan_from_url(
        "http://h:81/items/${iter}",
        method="post",
        headers=["X-A: 1", "Authorization: Bearer t:k"],
        body='{"a": 1}',
        vus=20,
        duration_s=60,
        thresholds=["p(95)<500", "http_req_failed: rate<1%"],
        name="create",
    )
    (request,) = plan.requests
    assert (plan.name, request.name, request.method) == ("create", "create", "POST")
    assert request.url == "http://h:81/items/${iter}"
    assert request.headers == (
        ("X-A", "1"),
        ("Authorization", "Bearer t:k"),
        ("Content-Type", "application/json"),
    )
    assert request.body == b'{"a": 1}'
    assert plan.executor == ExecutorSpec(kind="constant-vus", vus=20, duration_s=60.0)
    assert len(plan.thresholds) == 2

    body_file = tmp_path / "body.txt"
    body_file.write_bytes(b"plain")
    plan = plan_from_url("http://h/", body=f"@{body_file}", headers=["content-type: text/x"])
    assert plan.requests[0].body == b"plain"
    assert plan.requests[0].headers == (("content-type", "text/x"),)
    assert plan_from_url("http://h/", body="[1]", headers=["Content-Type: a/b"]).requests[
        0
    ].headers == (("Content-Type", "a/b"),)
    assert plan_from_url("http://h/", body="123").requests[0].headers == ()


def test_plan_from_url_rate() -> None:
    spec = plan_from_url("http://h/", rate=200, duration_s=30).executor
    assert (spec.kind, spec.rate, spec.duration_s) == ("constant-arrival-rate", 200.0, 30.0)
    assert (spec.pre_allocated_vus, spec.max_vus) == (100, 2000)
    spec = plan_from_url("http://h/", rate=10, vus=30, max_vus=40).executor
    assert (spec.pre_allocated_vus, spec.max_vus) == (30, 40)
    spec = plan_from_url("http://h/", rate=10, max_vus=5).executor
    assert (spec.pre_allocated_vus, spec.max_vus) == (5, 5)
    with pytest.raises(ConfigError, match="must be at least --vus"):
        plan_from_url("http://h/", rate=10, vus=30, max_vus=20)
    with pytest.raises(ConfigError, match="--max-vus needs --rate"):
        plan_from_url("http://h/", max_vus=20)


def test_plan_from_url_preset_and_scale() -> None:
    spec = plan_from_url("http://h/", preset="normal", scale=0.05).executor
    assert (spec.kind, spec.peak(), spec.total_duration_s) == ("ramping-vus", 5.0, 300.0)
    spec = plan_from_url("http://h/", preset="normal", duration_s=60).executor
    assert spec.total_duration_s == pytest.approx(60)
    assert plan_from_url("http://h/", vus=4, scale=2).executor.vus == 8
    with pytest.raises(ConfigError, match="--vus cannot be combined with --preset"):
        plan_from_url("http://h/", preset="normal", vus=10)


@pytest.mark.parametrize(
    "url",
    [
        "localhost:8000",
        "ftp://h/",
        "http://",
        "http:///x",
        "http://h:0/",
        "http://h:70000/",
        "http://h:x/",
        "http://h:/",
        "http://[::1/",
        "http://h/a b",
        "",
    ],
)
def test_plan_from_url_invalid_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="expected http://host\\[:port\\]/path") as info:
        plan_from_url(url)
    assert info.value.field == "url"


@pytest.mark.parametrize("header", ["NoColon", ": v", "Bad Name: v", "X: a\r\nInjected: 1"])
def test_plan_from_url_bad_headers(header: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_from_url("http://h/", headers=[header])
    assert info.value.field == "-H"


def test_plan_from_url_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read body file"):
        plan_from_url("http://h/", body=f"@{tmp_path / 'nope'}")
    with pytest.raises(ConfigError) as info:
        plan_from_url("http://h/", vus=0)
    assert info.value.field == "--vus"
    with pytest.raises(ConfigError) as info:
        plan_from_url("http://h/", rate=-1)
    assert info.value.field == "--rate"
    with pytest.raises(ConfigError) as info:
        plan_from_url("http://h/", duration_s=0)
    assert info.value.field == "--duration"
    with pytest.raises(ConfigError, match="placeholder"):
        plan_from_url("http://h/${nope}")
    with pytest.raises(ConfigError, match="invalid HTTP method"):
        plan_from_url("http://h/", method="GE T")
    with pytest.raises(ThresholdSyntaxError):
        plan_from_url("http://h/", thresholds=["p(95)<"])
