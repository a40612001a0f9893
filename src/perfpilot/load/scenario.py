"""Build a :class:`~perfpilot.load.plan.LoadPlan` from a TOML scenario file or a URL.

A scenario file (every table but ``[executor]`` is optional, and
``[executor]`` too when a preset is passed in)::

    name = "checkout"                       # default: the file name without .toml
    base_url = "http://127.0.0.1:8000"

    [executor]                              # or: preset = "normal" (scale, duration)
    type = "ramping-vus"
    stages = [{ duration = "30s", target = 100 }, { duration = "4m", target = 100 }]

    [defaults]
    headers = { Accept = "application/json" }
    think_time = ["0.5s", "2s"]

    [[requests]]
    name = "home"
    path = "/?page=${iter}"
    weight = 3
    checks = [{ status = 200 }, { json = "status", equals = "ok" }]

    [flow]
    file = "flows.py"
    function = "journey"

    [thresholds]
    http_req_duration = ["p(95)<500", "avg<200"]
    http_req_failed = [{ threshold = "rate<0.01", abortOnFail = true }]

Executor fields follow k6 and accept its camelCase spellings (``startVUs``,
``preAllocatedVUs``, ``maxVUs``, ``timeUnit``, ``gracefulStop``, ``startRate``).
Stage durations may be zero (an instant jump, as in k6); every other
duration must be positive.

Every problem raises :class:`~perfpilot.errors.ConfigError` naming the file,
the field, and the line (and column when known) of the offending key.

The parts live beside the concept they serve: :mod:`~perfpilot.load.tomlpos`
(key positions and typed reading), :mod:`~perfpilot.load.executor_config`
(``[executor]`` and the command-line overrides),
:mod:`~perfpilot.load.request_table` (``[[requests]]`` and checks),
:mod:`~perfpilot.load.flows` (:func:`load_flow`) and
:mod:`~perfpilot.load.urlplan` (:func:`plan_from_url`). This module keeps
:func:`load_scenario` and re-exports the others.

Example:
    >>> plan = plan_from_url("http://127.0.0.1:8000/health", vus=5, duration_s=30)
    >>> plan.executor.kind, plan.requests[0].name
    ('constant-vus', 'GET /health')
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfpilot.errors import ConfigError
from perfpilot.load.executor_config import Overrides, check_overrides, open_model_vus, read_executor
from perfpilot.load.flows import load_flow
from perfpilot.load.http_syntax import URL_EXPECTED, check_url
from perfpilot.load.plan import FlowSpec, LoadPlan, ThresholdSpec
from perfpilot.load.request_table import read_request
from perfpilot.load.thresholds import parse_condition, parse_threshold
from perfpilot.load.tomlpos import FieldPath, TypedReader, describe, field_name
from perfpilot.load.urlplan import plan_from_url
from perfpilot.tomlfile import parse_toml, read_text

__all__ = ["load_flow", "load_scenario", "open_model_vus", "plan_from_url"]

TOP_LEVEL_KEYS = ("name", "base_url", "executor", "defaults", "requests", "flow", "thresholds")
DEFAULTS_KEYS = (
    "headers",
    "think_time",
    "timeout",
    "connect_timeout",
    "follow_redirects",
    "insecure",
)
FLOW_KEYS = ("file", "function")
THRESHOLD_ENTRY_ALIASES = {
    "threshold": "threshold",
    "abortOnFail": "abort_on_fail",
    "abort_on_fail": "abort_on_fail",
    "delayAbortEval": "delay_abort_eval",
    "delay_abort_eval": "delay_abort_eval",
}


def load_scenario(
    path: str,
    *,
    preset: str | None = None,
    scale: float | None = None,
    duration_s: float | None = None,
    base_url: str | None = None,
    extra_thresholds: Sequence[str] = (),
    vus: int | None = None,
    rate: float | None = None,
    max_vus: int | None = None,
) -> LoadPlan:
    """Read a TOML scenario file into a load plan.

    Command-line options override the file, as in k6: ``preset`` replaces
    the ``[executor]`` table; so do ``vus`` (a ``constant-vus`` executor) and
    ``rate`` (a ``constant-arrival-rate`` one, with ``vus`` pre-allocated),
    lasting ``duration_s`` or else as long as the file's executor.

    Args:
        path: The scenario file.
        preset: A preset name; replaces the file's ``[executor]``.
        scale: Multiplies the users (or rate) of the executor or preset.
        duration_s: A new length for the run, keeping the stages' proportions.
        base_url: Replaces the file's ``base_url``.
        extra_thresholds: More thresholds, in the command-line form
            (``http_req_duration: p(95)<500``).
        vus: Run this many VUs (``constant-vus``) instead of the file's executor.
        rate: Run this many iterations per second (``constant-arrival-rate``).
        max_vus: VU cap with ``rate``.

    Returns:
        The plan.

    Raises:
        ConfigError: The file cannot be read, is not valid TOML, or does not
            describe a scenario; the error names the file, the line and the
            field. ThresholdSyntaxError (a ConfigError) for bad thresholds.

    Example:
        >>> plan = load_scenario("checkout.toml", preset="smoke")  # doctest: +SKIP
    """
    overrides = Overrides(preset, scale, duration_s, vus, rate, max_vus)
    check_overrides(overrides)
    text = read_text(path, "scenario")
    data = parse_toml(text, path)
    reader = TypedReader(path, text)
    reader.keys(data, TOP_LEVEL_KEYS, ())

    name = Path(path).stem or "scenario"
    if "name" in data:
        name = reader.string(data["name"], ("name",)).strip()

    if base_url is not None:
        if not isinstance(base_url, str) or check_url(base_url) is None:
            raise ConfigError(f"invalid URL {base_url!r}: {URL_EXPECTED}", field="--base-url")
    elif "base_url" in data:
        base_url = reader.string(data["base_url"], ("base_url",)).strip()
        if check_url(base_url) is None:
            raise reader.error(f"invalid URL {base_url!r}: {URL_EXPECTED}", ("base_url",))
    if base_url is not None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.query or parts.fragment:
            raise reader.error(
                f"base_url {base_url!r} must not have a query or fragment", ("base_url",)
            )

    executor = read_executor(reader, data.get("executor"), overrides)
    defaults = _defaults(reader, data.get("defaults", {}))
    flow = _flow(reader, data["flow"]) if "flow" in data else None

    raw_requests = data.get("requests", [])
    if not isinstance(raw_requests, list):
        raise reader.error(
            "expected an array of tables: write each request under [[requests]]", ("requests",)
        )
    needs_base = flow is not None or any(
        isinstance(r, dict) and "url" not in r for r in raw_requests
    )
    if needs_base and base_url is None:
        raise reader.error(
            "missing base_url: set base_url in the scenario or pass --base-url", ("base_url",)
        )
    content_type_set = any(k.lower() == "content-type" for k, _ in defaults["headers"])
    requests = tuple(
        read_request(reader, item, index, base_url, content_type_set)
        for index, item in enumerate(raw_requests)
    )
    if not requests and flow is None:
        raise reader.error(
            "nothing to send: add [[requests]] tables or a [flow] table", ("requests",)
        )

    thresholds = list(_thresholds(reader, data.get("thresholds", {})))
    for item in extra_thresholds:
        thresholds.append(parse_threshold(item, field="--threshold"))

    return LoadPlan(
        name=name,
        executor=executor,
        requests=requests,
        flow=flow,
        base_url=base_url,
        think_time_s=defaults["think_time"],
        thresholds=tuple(thresholds),
        connect_timeout_s=defaults["connect_timeout"],
        request_timeout_s=defaults["timeout"],
        follow_redirects=defaults["follow_redirects"],
        insecure=defaults["insecure"],
        default_headers=defaults["headers"],
    )


def _defaults(reader: TypedReader, raw: object) -> dict[str, Any]:
    field: FieldPath = ("defaults",)
    table = reader.table(raw, field)
    reader.keys(table, DEFAULTS_KEYS, field)
    out: dict[str, Any] = {
        "headers": (),
        "think_time": (0.0, 0.0),
        "timeout": 30.0,
        "connect_timeout": 5.0,
        "follow_redirects": False,
        "insecure": False,
    }
    if "headers" in table:
        out["headers"] = reader.headers(table["headers"], (*field, "headers"))
    if "think_time" in table:
        value = table["think_time"]
        at: FieldPath = (*field, "think_time")
        if isinstance(value, list):
            if len(value) != 2:
                raise reader.error("expected a duration or [min, max]", at)
            low = reader.duration(value[0], (*at, 0), allow_zero=True)
            high = reader.duration(value[1], (*at, 1), allow_zero=True)
            if high < low:
                raise reader.error(f"think_time max ({value[1]!r}) is below min ({value[0]!r})", at)
            out["think_time"] = (low, high)
        else:
            seconds = reader.duration(value, at, allow_zero=True)
            out["think_time"] = (seconds, seconds)
    for key in ("timeout", "connect_timeout"):
        if key in table:
            out[key] = reader.duration(table[key], (*field, key))
    for key in ("follow_redirects", "insecure"):
        if key in table:
            out[key] = reader.boolean(table[key], (*field, key))
    return out


def _flow(reader: TypedReader, raw: object) -> FlowSpec:
    field: FieldPath = ("flow",)
    table = reader.table(raw, field)
    reader.keys(table, FLOW_KEYS, field)
    if "file" not in table:
        raise reader.error("missing file: the Python file that defines the flow", field)
    file = reader.string(table["file"], (*field, "file")).strip()
    function = "flow"
    if "function" in table:
        function = reader.string(table["function"], (*field, "function")).strip()
        if not function.isidentifier():
            raise reader.error(f"{function!r} is not a Python function name", (*field, "function"))
    full = os.path.abspath(os.path.join(os.path.dirname(reader.path), file))
    if "\0" in full or not os.path.isfile(full):
        raise reader.error(f"flow file not found: {full}", (*field, "file"))
    return FlowSpec(path=full, function=function)


def _thresholds(reader: TypedReader, raw: object) -> list[ThresholdSpec]:
    field: FieldPath = ("thresholds",)
    table = reader.table(raw, field)
    out: list[ThresholdSpec] = []
    for key, value in table.items():
        at: FieldPath = (*field, key)
        items = value if isinstance(value, list) else [value]
        if not items:
            raise reader.error('expected at least one condition such as "p(95)<500"', at)
        for index, item in enumerate(items):
            where: FieldPath = (*at, index) if isinstance(value, list) else at
            abort = False
            delay = 0.0
            if isinstance(item, dict):
                reader.keys(item, THRESHOLD_ENTRY_ALIASES, where)
                spelled = {THRESHOLD_ENTRY_ALIASES[k]: k for k in item}
                if len(spelled) != len(item):
                    raise reader.error("abortOnFail/delayAbortEval are given twice", where)
                if "threshold" not in spelled:
                    raise reader.error('missing threshold = "..." in the entry', where)
                condition = item["threshold"]
                if "abort_on_fail" in spelled:
                    name = spelled["abort_on_fail"]
                    abort = reader.boolean(item[name], (*where, name))
                if "delay_abort_eval" in spelled:
                    name = spelled["delay_abort_eval"]
                    delay = reader.duration(item[name], (*where, name), allow_zero=True)
            else:
                condition = item
            if not isinstance(condition, str):
                raise reader.error(
                    f'expected a condition string such as "p(95)<500", got {describe(condition)}',
                    where,
                )
            out.append(
                parse_condition(
                    key,
                    condition,
                    path=reader.path,
                    line=reader.line(where),
                    field=field_name(at),
                    abort_on_fail=abort,
                    delay_abort_eval_s=delay,
                )
            )
    return out
