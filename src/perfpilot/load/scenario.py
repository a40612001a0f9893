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

Example:
    >>> plan = plan_from_url("http://127.0.0.1:8000/health", vus=5, duration_s=30)
    >>> plan.executor.kind, plan.requests[0].name
    ('constant-vus', 'GET /health')
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import difflib
import hashlib
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import tomllib
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from perfpilot.errors import ConfigError
from perfpilot.load.durations import parse_duration
from perfpilot.load.plan import (
    EXECUTOR_KINDS,
    Check,
    ExecutorKind,
    ExecutorSpec,
    FlowSpec,
    LoadPlan,
    RequestSpec,
    Stage,
    ThresholdSpec,
)
from perfpilot.load.presets import preset_executor, scale_executor, stretch_executor
from perfpilot.load.thresholds import parse_condition, parse_threshold

FieldPath = tuple[str | int, ...]

TOP_LEVEL_KEYS = ("name", "base_url", "executor", "defaults", "requests", "flow", "thresholds")
DEFAULTS_KEYS = (
    "headers",
    "think_time",
    "timeout",
    "connect_timeout",
    "follow_redirects",
    "insecure",
)
REQUEST_KEYS = (
    "name",
    "method",
    "path",
    "url",
    "weight",
    "tags",
    "headers",
    "json",
    "form",
    "body",
    "checks",
)
CHECK_KEYS = ("status", "body_contains", "json", "equals", "name")
FLOW_KEYS = ("file", "function")
STAGE_KEYS = ("duration", "target")
THRESHOLD_ENTRY_ALIASES = {
    "threshold": "threshold",
    "abortOnFail": "abort_on_fail",
    "abort_on_fail": "abort_on_fail",
    "delayAbortEval": "delay_abort_eval",
    "delay_abort_eval": "delay_abort_eval",
}

EXECUTOR_ALIASES = {
    "executor": "type",
    "start_vus": "vus",
    "startVUs": "vus",
    "start_rate": "rate",
    "startRate": "rate",
    "time_unit": "time_unit",
    "timeUnit": "time_unit",
    "preAllocatedVUs": "pre_allocated_vus",
    "maxVUs": "max_vus",
    "gracefulStop": "graceful_stop",
}
_EXECUTOR_FIELDS: dict[str, tuple[str, ...]] = {
    "constant-vus": ("vus", "duration", "graceful_stop"),
    "ramping-vus": ("vus", "stages", "graceful_stop"),
    "constant-arrival-rate": (
        "rate",
        "time_unit",
        "duration",
        "pre_allocated_vus",
        "max_vus",
        "graceful_stop",
    ),
    "ramping-arrival-rate": (
        "rate",
        "time_unit",
        "stages",
        "pre_allocated_vus",
        "max_vus",
        "graceful_stop",
    ),
    "preset": ("preset", "scale", "duration", "graceful_stop"),
}
EXECUTOR_KEYS = tuple(
    sorted({"type", *EXECUTOR_ALIASES, *(k for ks in _EXECUTOR_FIELDS.values() for k in ks)})
)

PLACEHOLDERS = ("iter", "vu", "rand")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_URL_EXPECTED = "expected http://host[:port]/path"

# Open-model defaults (see open_model_vus).
DEFAULT_PRE_ALLOCATED_CAP = 100
DEFAULT_MAX_VUS_FLOOR = 100
DEFAULT_MAX_VUS_CAP = 10_000


# ------------------------------------------------------------------- key locations


class _Locator:
    """Finds the line and column of keys in TOML text that :mod:`tomllib` accepted.

    :mod:`tomllib` reports positions only for syntax errors, so this walks the
    text once more, recording where each key path (``("requests", 2, "path")``,
    ``("executor", "stages", 1)``) starts. It understands just enough TOML to
    do that on valid documents; if anything surprises it, positions are simply
    unknown.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[FieldPath, tuple[int, int]] = {}
        self._aot: dict[FieldPath, int] = {}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # A best-effort aid for messages, never a reason to fail.
        with contextlib.suppress(Exception):
            self._document()

    def find(self, field: FieldPath) -> tuple[int | None, int | None]:
        """The 1-based line and column of ``field``, or of its nearest known parent."""
        for end in range(len(field), 0, -1):
            hit = self.found.get(field[:end])
            if hit is not None:
                return hit
        return None, None

    def _here(self, pos: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._line_starts, pos) - 1
        return index + 1, pos - self._line_starts[index] + 1

    def _mark(self, path: FieldPath, pos: int) -> None:
        self.found.setdefault(path, self._here(pos))

    def _skip(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: FieldPath = ()
        text = self.text
        while True:
            self._skip(newlines=True)
            if self.pos >= len(text):
                return
            start = self.pos
            if text.startswith("[[", self.pos):
                self.pos += 2
                segments = self._key()
                path = (*self._resolve(segments[:-1]), segments[-1])
                index = self._aot.get(path, 0)
                self._aot[path] = index + 1
                table = (*path, index)
                self._mark(table, start)
            elif text.startswith("[", self.pos):
                self.pos += 1
                table = self._resolve(self._key())
                self._mark(table, start)
            else:
                segments = self._key()
                path = table + segments
                self._mark(path, start)
                self._skip(newlines=False)
                self.pos += 1  # "="
                self._value(path)
            end = text.find("\n", self.pos)
            self.pos = len(text) if end < 0 else end

    def _resolve(self, segments: FieldPath) -> FieldPath:
        """Insert the current index after each array-of-tables in a header path."""
        out: FieldPath = ()
        for segment in segments:
            out = (*out, segment)
            if out in self._aot:
                out = (*out, self._aot[out] - 1)
        return out

    def _key(self) -> FieldPath:
        segments: list[str | int] = []
        text = self.text
        while True:
            self._skip(newlines=False)
            char = text[self.pos]
            if char in "\"'":
                start = self.pos
                self._string()
                segments.append(tomllib.loads("k = " + text[start : self.pos])["k"])
            else:
                start = self.pos
                while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in "_-"):
                    self.pos += 1
                segments.append(text[start : self.pos])
            self._skip(newlines=False)
            if self.pos < len(text) and text[self.pos] == ".":
                self.pos += 1
                continue
            return tuple(segments)

    def _string(self) -> None:
        text = self.text
        quote = text[self.pos]
        if text.startswith(quote * 3, self.pos):
            self.pos += 3
            while not text.startswith(quote * 3, self.pos):
                self.pos += 2 if quote == '"' and text[self.pos] == "\\" else 1
            self.pos += 3
            while self.pos < len(text) and text[self.pos] == quote:
                self.pos += 1
            return
        self.pos += 1
        while text[self.pos] != quote:
            self.pos += 2 if quote == '"' and text[self.pos] == "\\" else 1
        self.pos += 1

    def _value(self, path: FieldPath) -> None:
        self._skip(newlines=False)
        text = self.text
        char = text[self.pos]
        if char in "\"'":
            self._string()
        elif char == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if text[self.pos] == "]":
                    self.pos += 1
                    return
                self._mark((*path, index), self.pos)
                self._value((*path, index))
                self._skip(newlines=True)
                if text[self.pos] == ",":
                    self.pos += 1
                    index += 1
        elif char == "{":
            self.pos += 1
            while True:
                self._skip(newlines=False)
                if text[self.pos] == "}":
                    self.pos += 1
                    return
                start = self.pos
                key = path + self._key()
                self._mark(key, start)
                self._skip(newlines=False)
                self.pos += 1  # "="
                self._value(key)
                self._skip(newlines=False)
                if text[self.pos] == ",":
                    self.pos += 1
        else:
            while self.pos < len(text) and text[self.pos] not in ",]}\n#":
                self.pos += 1


def _field_name(field: FieldPath) -> str:
    out = ""
    for part in field:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _suggest(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(value: object) -> str:
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}" if not isinstance(value, dict | list) else kind


# ------------------------------------------------------------------ value checking


class _Reader:
    """Typed access to a parsed scenario, raising located ConfigErrors."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.locator = _Locator(text)

    def error(self, message: str, field: FieldPath) -> ConfigError:
        line, column = self.locator.find(field)
        return ConfigError(
            message, path=self.path, line=line, column=column, field=_field_name(field) or None
        )

    def line(self, field: FieldPath) -> int | None:
        return self.locator.find(field)[0]

    def table(self, value: object, field: FieldPath) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"expected a table, got {_describe(value)}", field)
        return value

    def keys(self, table: dict[str, Any], allowed: Collection[str], field: FieldPath) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    f"unknown field '{key}'{_suggest(key, allowed)}; "
                    f"expected one of {', '.join(sorted(allowed))}",
                    (*field, key),
                )

    def string(self, value: object, field: FieldPath) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {_describe(value)}", field)
        if not value.strip():
            raise self.error("expected a non-empty string", field)
        return value

    def boolean(self, value: object, field: FieldPath) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {_describe(value)}", field)
        return value

    def integer(self, value: object, field: FieldPath, *, minimum: int) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a whole number, got {_describe(value)}", field)
        if value < minimum:
            raise self.error(f"expected a whole number >= {minimum}, got {value}", field)
        return value

    def number(self, value: object, field: FieldPath, *, positive: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"expected a number, got {_describe(value)}", field)
        number = float(value)
        if not math.isfinite(number):
            raise self.error(f"expected a finite number, got {value!r}", field)
        if positive and number <= 0:
            raise self.error(f"expected a number > 0, got {value!r}", field)
        if number < 0:
            raise self.error(f"expected a number >= 0, got {value!r}", field)
        return number

    def duration(self, value: object, field: FieldPath, *, allow_zero: bool = False) -> float:
        try:
            seconds = parse_duration(value)
        except ConfigError as exc:
            raise self.error(exc.message, field) from None
        if seconds == 0 and not allow_zero:
            raise self.error(f"expected a duration > 0, got {value!r}", field)
        return seconds

    def string_map(self, value: object, field: FieldPath) -> dict[str, str]:
        table = self.table(value, field)
        out: dict[str, str] = {}
        for key, item in table.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.error(f"expected a string, got {_describe(item)}", (*field, key))
            out[key] = str(item)
        return out

    def headers(self, value: object, field: FieldPath) -> tuple[tuple[str, str], ...]:
        out = []
        for key, item in self.string_map(value, field).items():
            problem = _header_problem(key, item)
            if problem:
                raise self.error(problem, (*field, key))
            out.append((key, item))
        return tuple(out)


def _header_problem(name: str, value: str) -> str | None:
    if not _TOKEN.fullmatch(name):
        return f"invalid header name {name!r}"
    if any(c in value for c in "\r\n\0"):
        return f"header {name} must not contain line breaks or NUL"
    return None


def _check_url(url: str) -> urllib.parse.SplitResult | None:
    """The split URL when it is a usable ``http``/``https`` URL, else ``None``."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return None
    return parts


def _placeholder_problem(text: str) -> str | None:
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            return (
                f"unknown placeholder ${{{match.group(1)}}}; "
                "expected ${iter}, ${vu} or ${rand}"
            )
    return None


def open_model_vus(
    peak_rate: float, *, pre_allocated: int | None = None, max_vus: int | None = None
) -> tuple[int, int]:
    """Choose VU pools for an arrival-rate executor when they are not given.

    ``pre_allocated`` defaults to the peak rate per second, between 1 and
    100: enough for a server answering within a second, cheap to create.
    ``max_vus`` defaults to ten seconds' worth of the peak rate, at least 100
    and at most 10 000, and never below ``pre_allocated``; past it, an
    iteration that finds every VU busy is dropped and counted.

    Args:
        peak_rate: The highest iterations per second the executor asks for.
        pre_allocated: VUs to create up front, if chosen by the user.
        max_vus: Upper bound on VUs, if chosen by the user.

    Returns:
        ``(pre_allocated_vus, max_vus)``.
    """
    wanted = math.ceil(peak_rate) if math.isfinite(peak_rate) and peak_rate > 0 else 1
    if pre_allocated is None:
        pre_allocated = max(1, min(wanted, DEFAULT_PRE_ALLOCATED_CAP))
        if max_vus is not None:
            pre_allocated = min(pre_allocated, max_vus)
    if max_vus is None:
        max_vus = max(pre_allocated, DEFAULT_MAX_VUS_FLOOR, min(10 * wanted, DEFAULT_MAX_VUS_CAP))
    return pre_allocated, max_vus


# --------------------------------------------------------------------- the scenario


@dataclasses.dataclass
class _Overrides:
    preset: str | None
    scale: float | None
    duration_s: float | None
    vus: int | None = None
    rate: float | None = None
    max_vus: int | None = None


def _positive_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _check_overrides(o: _Overrides) -> None:
    """Validate command-line values that override a scenario or build a URL plan."""
    preset, scale, duration_s = o.preset, o.scale, o.duration_s
    vus, rate, max_vus = o.vus, o.rate, o.max_vus
    if scale is not None and not _positive_number(scale):
        raise ConfigError(f"expected a number > 0, got {scale!r}", field="--scale")
    if duration_s is not None and not _positive_number(duration_s):
        raise ConfigError(f"expected a duration > 0, got {duration_s!r}", field="--duration")
    if vus is not None and not _positive_int(vus):
        raise ConfigError(f"expected a whole number >= 1, got {vus!r}", field="--vus")
    if rate is not None and not _positive_number(rate):
        raise ConfigError(f"expected a rate > 0, got {rate!r}", field="--rate")
    if max_vus is not None and not _positive_int(max_vus):
        raise ConfigError(f"expected a whole number >= 1, got {max_vus!r}", field="--max-vus")
    if preset is not None and rate is not None:
        raise ConfigError("--rate cannot be combined with --preset", field="--rate")
    if preset is not None and vus is not None and vus != 1:
        raise ConfigError("--vus cannot be combined with --preset; use --scale", field="--vus")
    if max_vus is not None and rate is None and preset is None:
        raise ConfigError("--max-vus needs --rate", field="--max-vus")
    if max_vus is not None and vus is not None and rate is not None and vus > max_vus:
        raise ConfigError(
            f"--max-vus ({max_vus}) must be at least --vus ({vus})", field="--max-vus"
        )


def _constant_executor(
    vus: int | None,
    rate: float | None,
    max_vus: int | None,
    duration_s: float,
    graceful_stop_s: float = 5.0,
) -> ExecutorSpec:
    """``constant-arrival-rate`` when ``rate`` is given, else ``constant-vus``."""
    if rate is not None:
        chosen = vus if vus is not None and vus > 1 else None
        pre, top = open_model_vus(rate, pre_allocated=chosen, max_vus=max_vus)
        return ExecutorSpec(
            kind="constant-arrival-rate",
            duration_s=float(duration_s),
            rate=float(rate),
            pre_allocated_vus=pre,
            max_vus=top,
            graceful_stop_s=graceful_stop_s,
        )
    return ExecutorSpec(
        kind="constant-vus",
        vus=1 if vus is None else vus,
        duration_s=float(duration_s),
        graceful_stop_s=graceful_stop_s,
    )


def _read_text(path: str) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read scenario: {exc.strerror or exc}", path=path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"scenario is not UTF-8 text (byte 0x{raw[exc.start]:02x})", path=path, line=line
        ) from None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _parse_toml(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(getattr(exc, "msg", None) or exc)
        line: int | None = getattr(exc, "lineno", None)
        column: int | None = getattr(exc, "colno", None)
        match = _TOML_POSITION.search(message)
        if match:
            line, column = int(match.group(1)), int(match.group(2))
            message = message[: match.start()]
        elif _TOML_AT_END.search(message):
            message = _TOML_AT_END.sub("", message) + " at the end of the file"
            line = text.count("\n") + 1
        raise ConfigError(f"invalid TOML: {message}", path=path, line=line, column=column) from None
    except RecursionError:
        raise ConfigError("invalid TOML: values are nested too deeply", path=path) from None


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
    overrides = _Overrides(preset, scale, duration_s, vus, rate, max_vus)
    _check_overrides(overrides)
    text = _read_text(path)
    data = _parse_toml(text, path)
    reader = _Reader(path, text)
    reader.keys(data, TOP_LEVEL_KEYS, ())

    name = Path(path).stem or "scenario"
    if "name" in data:
        name = reader.string(data["name"], ("name",)).strip()

    if base_url is not None:
        if not isinstance(base_url, str) or _check_url(base_url) is None:
            raise ConfigError(f"invalid URL {base_url!r}: {_URL_EXPECTED}", field="--base-url")
    elif "base_url" in data:
        base_url = reader.string(data["base_url"], ("base_url",)).strip()
        if _check_url(base_url) is None:
            raise reader.error(f"invalid URL {base_url!r}: {_URL_EXPECTED}", ("base_url",))
    if base_url is not None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.query or parts.fragment:
            raise reader.error(
                f"base_url {base_url!r} must not have a query or fragment", ("base_url",)
            )

    executor = _executor(reader, data.get("executor"), overrides)
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
        _request(reader, item, index, base_url, content_type_set)
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


def _executor(reader: _Reader, raw: object, overrides: _Overrides) -> ExecutorSpec:
    field: FieldPath = ("executor",)
    if overrides.preset is not None:
        if raw is not None:
            reader.table(raw, field)  # still must be a table; its contents are replaced
        spec = preset_executor(
            overrides.preset,
            scale=1.0 if overrides.scale is None else overrides.scale,
            duration_s=overrides.duration_s,
        )
        return _with_graceful_stop(reader, raw, spec)
    if overrides.vus is not None or overrides.rate is not None:
        base = None if raw is None else _executor(reader, raw, _Overrides(None, None, None))
        length = overrides.duration_s
        if length is None:
            length = 10.0 if base is None else base.total_duration_s
        spec = _constant_executor(
            overrides.vus,
            overrides.rate,
            overrides.max_vus,
            length,
            5.0 if base is None else base.graceful_stop_s,
        )
        return spec if overrides.scale is None else scale_executor(spec, overrides.scale)
    if raw is None:
        raise reader.error("missing [executor] table (or pass --preset, --vus or --rate)", field)
    table = reader.table(raw, field)
    reader.keys(table, EXECUTOR_KEYS, field)
    fields: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in table.items():
        canonical = EXECUTOR_ALIASES.get(key, key)
        if canonical in fields:
            raise reader.error(
                f"'{key}' and '{spelled[canonical]}' are the same field; give one", (*field, key)
            )
        fields[canonical] = value
        spelled[canonical] = key

    def at(name: str) -> FieldPath:
        return (*field, spelled.get(name, name))

    if "preset" in fields:
        if "type" in fields:
            raise reader.error("give either preset or type, not both", at("type"))
        kind = "preset"
    elif "type" not in fields:
        raise reader.error(
            f"missing type; expected one of {', '.join(EXECUTOR_KINDS)} (or preset = ...)",
            field,
        )
    else:
        kind = reader.string(fields["type"], at("type"))
        if kind not in EXECUTOR_KINDS:
            raise reader.error(
                f"unknown executor type {kind!r}{_suggest(kind, EXECUTOR_KINDS)}; "
                f"expected one of {', '.join(EXECUTOR_KINDS)}",
                at("type"),
            )
    allowed = _EXECUTOR_FIELDS[kind]
    for name in fields:
        if name not in allowed and name != "type":
            raise reader.error(
                f"'{spelled[name]}' does not apply to {kind} executors; "
                f"they take {', '.join(allowed)}",
                at(name),
            )

    if kind == "preset":
        name = reader.string(fields["preset"], at("preset"))
        scale = overrides.scale
        if scale is None and "scale" in fields:
            scale = reader.number(fields["scale"], at("scale"), positive=True)
        length = overrides.duration_s
        if length is None and "duration" in fields:
            length = reader.duration(fields["duration"], at("duration"))
        try:
            spec = preset_executor(name, scale=1.0 if scale is None else scale, duration_s=length)
        except ConfigError as exc:
            if overrides.scale is not None or overrides.duration_s is not None:
                raise
            raise reader.error(exc.message, at("preset")) from None
        return _with_graceful_stop(reader, raw, spec)

    executor_kind = cast(ExecutorKind, kind)
    graceful = 5.0
    if "graceful_stop" in fields:
        graceful = reader.duration(fields["graceful_stop"], at("graceful_stop"), allow_zero=True)
    duration = 0.0
    if kind in ("constant-vus", "constant-arrival-rate"):
        if "duration" not in fields:
            raise reader.error(f"missing duration: {kind} executors need one", field)
        duration = reader.duration(fields["duration"], at("duration"))
    stages: tuple[Stage, ...] = ()
    if kind in ("ramping-vus", "ramping-arrival-rate"):
        if "stages" not in fields:
            raise reader.error(f"missing stages: {kind} executors need them", field)
        stages = _stages(reader, fields["stages"], at("stages"), whole=kind == "ramping-vus")
    time_unit = 1.0
    if "time_unit" in fields:
        time_unit = reader.duration(fields["time_unit"], at("time_unit"))

    if kind in ("constant-vus", "ramping-vus"):
        default_vus = 1
        vus = default_vus
        if "vus" in fields:
            vus = reader.integer(
                fields["vus"], at("vus"), minimum=1 if kind == "constant-vus" else 0
            )
        spec = ExecutorSpec(
            kind=executor_kind,
            vus=vus,
            duration_s=duration if kind == "constant-vus" else 10.0,
            stages=stages,
            graceful_stop_s=graceful,
        )
    else:
        if kind == "constant-arrival-rate" and "rate" not in fields:
            raise reader.error("missing rate: constant-arrival-rate executors need one", field)
        rate = 0.0
        if "rate" in fields:
            rate = reader.number(
                fields["rate"], at("rate"), positive=kind == "constant-arrival-rate"
            )
        rate /= time_unit
        stages = tuple(Stage(s.duration_s, s.target / time_unit) for s in stages)
        pre: int | None = None
        max_vus: int | None = None
        if "pre_allocated_vus" in fields:
            pre = reader.integer(fields["pre_allocated_vus"], at("pre_allocated_vus"), minimum=1)
        if "max_vus" in fields:
            max_vus = reader.integer(fields["max_vus"], at("max_vus"), minimum=1)
        if pre is not None and max_vus is not None and max_vus < pre:
            raise reader.error(
                f"max_vus ({max_vus}) must be at least pre_allocated_vus ({pre})", at("max_vus")
            )
        peak = max([rate, *(s.target for s in stages)])
        pre, max_vus = open_model_vus(peak, pre_allocated=pre, max_vus=max_vus)
        spec = ExecutorSpec(
            kind=executor_kind,
            duration_s=duration if kind == "constant-arrival-rate" else 10.0,
            stages=stages,
            rate=rate,
            pre_allocated_vus=pre,
            max_vus=max_vus,
            graceful_stop_s=graceful,
        )
    if spec.total_duration_s <= 0:
        raise reader.error("the stages add up to no time at all", at("stages"))
    if overrides.scale is not None:
        spec = scale_executor(spec, overrides.scale)
    if overrides.duration_s is not None:
        spec = stretch_executor(spec, overrides.duration_s)
    return spec


def _with_graceful_stop(reader: _Reader, raw: object, spec: ExecutorSpec) -> ExecutorSpec:
    if not isinstance(raw, dict):
        return spec
    for key in ("graceful_stop", "gracefulStop"):
        if key in raw:
            seconds = reader.duration(raw[key], ("executor", key), allow_zero=True)
            return dataclasses.replace(spec, graceful_stop_s=seconds)
    return spec


def _stages(reader: _Reader, raw: object, field: FieldPath, *, whole: bool) -> tuple[Stage, ...]:
    if not isinstance(raw, list) or not raw:
        raise reader.error(
            "expected a non-empty array of { duration = ..., target = ... } tables", field
        )
    stages = []
    for index, item in enumerate(raw):
        at: FieldPath = (*field, index)
        table = reader.table(item, at)
        reader.keys(table, STAGE_KEYS, at)
        if "duration" not in table:
            raise reader.error("stage without duration", at)
        if "target" not in table:
            raise reader.error("stage without target", at)
        duration = reader.duration(table["duration"], (*at, "duration"), allow_zero=True)
        if whole:
            target = float(reader.integer(table["target"], (*at, "target"), minimum=0))
        else:
            target = reader.number(table["target"], (*at, "target"), positive=False)
        stages.append(Stage(duration, target))
    return tuple(stages)


def _defaults(reader: _Reader, raw: object) -> dict[str, Any]:
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


def _request(
    reader: _Reader,
    raw: object,
    index: int,
    base_url: str | None,
    default_content_type: bool,
) -> RequestSpec:
    field: FieldPath = ("requests", index)
    table = reader.table(raw, field)
    reader.keys(table, REQUEST_KEYS, field)

    def at(key: str) -> FieldPath:
        return (*field, key)

    method = "GET"
    if "method" in table:
        method = reader.string(table["method"], at("method")).strip().upper()
        if not _TOKEN.fullmatch(method):
            raise reader.error(f"invalid HTTP method {method!r}", at("method"))
    if "path" in table and "url" in table:
        raise reader.error("give either path or url, not both", at("url"))
    if "url" in table:
        url = reader.string(table["url"], at("url")).strip()
        parts = _check_url(url)
        if parts is None:
            raise reader.error(f"invalid URL {url!r}: {_URL_EXPECTED}", at("url"))
        shown_path = parts.path or "/"
        source = "url"
    elif "path" in table:
        path = reader.string(table["path"], at("path")).strip()
        if any(c.isspace() or ord(c) < 32 for c in path) or "://" in path:
            raise reader.error(
                f"invalid path {path!r}: expected a path such as /users?id=1 "
                "(use url = ... for an absolute URL)",
                at("path"),
            )
        if not path.startswith("/"):
            path = "/" + path
        assert base_url is not None  # load_scenario checked
        url = base_url.rstrip("/") + path
        shown_path = urllib.parse.urlsplit(path).path or "/"
        source = "path"
    else:
        raise reader.error("a request needs a path (or an absolute url)", field)
    problem = _placeholder_problem(url)
    if problem:
        raise reader.error(problem, at(source))

    name = f"{method} {shown_path}"
    if "name" in table:
        name = reader.string(table["name"], at("name")).strip()
    weight = 1.0
    if "weight" in table:
        weight = reader.number(table["weight"], at("weight"), positive=True)
    tags: dict[str, str] = {}
    if "tags" in table:
        tags = reader.string_map(table["tags"], at("tags"))
        if "name" in tags:
            raise reader.error(
                "'name' is the request's name; set it with name = ... instead",
                (*at("tags"), "name"),
            )
    headers = list(reader.headers(table["headers"], at("headers")) if "headers" in table else ())

    bodies = [key for key in ("json", "form", "body") if key in table]
    if len(bodies) > 1:
        raise reader.error(
            f"a request takes one of json, form or body, not {' and '.join(bodies)}",
            at(bodies[1]),
        )
    body: bytes | None = None
    content_type: str | None = None
    if bodies:
        key = bodies[0]
        value = table[key]
        if key == "json":
            try:
                body = json.dumps(
                    value,
                    separators=(",", ":"),
                    ensure_ascii=False,
                    allow_nan=False,
                    default=_json_default,
                ).encode("utf-8")
            except (TypeError, ValueError, RecursionError) as exc:
                raise reader.error(f"cannot encode as JSON: {exc}", at(key)) from None
            content_type = "application/json"
        elif key == "form":
            form = reader.table(value, at(key))
            pairs: list[tuple[str, str]] = []
            for form_key, item in form.items():
                items = item if isinstance(item, list) else [item]
                for element in items:
                    if isinstance(element, bool):
                        pairs.append((form_key, "true" if element else "false"))
                    elif isinstance(element, str | int | float):
                        pairs.append((form_key, str(element)))
                    else:
                        raise reader.error(
                            f"form values are strings or numbers, got {_describe(element)}",
                            (*at(key), form_key),
                        )
            body = urllib.parse.urlencode(pairs).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        else:
            if not isinstance(value, str):
                raise reader.error(f"expected a string, got {_describe(value)}", at(key))
            body = value.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
    has_content_type = default_content_type or any(k.lower() == "content-type" for k, _ in headers)
    if content_type is not None and not has_content_type:
        headers.append(("Content-Type", content_type))

    checks: tuple[Check, ...] = ()
    if "checks" in table:
        raw_checks = table["checks"]
        if not isinstance(raw_checks, list):
            raise reader.error("expected an array of check tables", at("checks"))
        checks = tuple(
            _check(reader, item, (*at("checks"), i)) for i, item in enumerate(raw_checks)
        )
    return RequestSpec(
        name=name,
        method=method,
        url=url,
        headers=tuple(headers),
        body=body,
        weight=weight,
        tags=tags,
        checks=checks,
    )


def _json_default(value: object) -> str:
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _format_expected(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, default=_json_default, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _check(reader: _Reader, raw: object, field: FieldPath) -> Check:
    table = reader.table(raw, field)
    reader.keys(table, CHECK_KEYS, field)
    kinds = [key for key in ("status", "body_contains", "json") if key in table]
    if not kinds:
        raise reader.error("expected one of status, body_contains or json in a check", field)
    if len(kinds) > 1:
        raise reader.error(
            f"one check per table: split {' and '.join(kinds)} into separate checks",
            (*field, kinds[1]),
        )
    if "equals" in table and kinds[0] != "json":
        raise reader.error("equals goes with a json check", (*field, "equals"))
    custom = reader.string(table["name"], (*field, "name")) if "name" in table else None
    kind = kinds[0]
    at: FieldPath = (*field, kind)
    value = table[kind]
    if kind == "status":
        values = value if isinstance(value, list) else [value]
        if not values:
            raise reader.error("expected a status such as 200 or a list [200, 201]", at)
        statuses = []
        for item in values:
            status = reader.integer(item, at, minimum=100)
            if status > 599:
                raise reader.error(f"expected an HTTP status 100-599, got {status}", at)
            statuses.append(status)
        name = (
            f"status is {statuses[0]}"
            if len(statuses) == 1
            else f"status in [{', '.join(map(str, statuses))}]"
        )
        return Check(kind="status", name=custom or name, statuses=tuple(statuses))
    text = reader.string(value, at)
    if kind == "body_contains":
        return Check(kind="body_contains", name=custom or f"body contains {text!r}", text=text)
    if "equals" in table:
        expected = table["equals"]
        name = f"json {text} == {_format_expected(expected)}"
        return Check(
            kind="json_field",
            name=custom or name,
            path=text,
            expected=expected,
            has_expected=True,
        )
    return Check(kind="json_field", name=custom or f"json {text} exists", path=text)


def _flow(reader: _Reader, raw: object) -> FlowSpec:
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


def _thresholds(reader: _Reader, raw: object) -> list[ThresholdSpec]:
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
                entry = {THRESHOLD_ENTRY_ALIASES.get(k, k): v for k, v in item.items()}
                reader.keys(item, THRESHOLD_ENTRY_ALIASES, where)
                if len(entry) != len(item):
                    raise reader.error("abortOnFail/delayAbortEval are given twice", where)
                if "threshold" not in entry:
                    raise reader.error('missing threshold = "..." in the entry', where)
                condition = entry["threshold"]
                if "abort_on_fail" in entry:
                    abort = reader.boolean(entry["abort_on_fail"], where)
                if "delay_abort_eval" in entry:
                    delay = reader.duration(entry["delay_abort_eval"], where, allow_zero=True)
            else:
                condition = item
            if not isinstance(condition, str):
                raise reader.error(
                    f'expected a condition string such as "p(95)<500", got {_describe(condition)}',
                    where,
                )
            out.append(
                parse_condition(
                    key,
                    condition,
                    path=reader.path,
                    line=reader.line(where),
                    field=_field_name(at),
                    abort_on_fail=abort,
                    delay_abort_eval_s=delay,
                )
            )
    return out


# ---------------------------------------------------------------------------- flows


def _line_in(tb: TracebackType | None, path: str) -> int | None:
    line = None
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def load_flow(spec: FlowSpec) -> Callable[..., Awaitable[Any]]:
    """Import a flow file and return its ``async def`` flow function.

    The file's directory is on ``sys.path`` while it is imported, so it can
    import modules next to it. The module is registered in ``sys.modules``
    under a name derived from its path (dataclasses and pickling need that).

    Args:
        spec: The flow file and function name.

    Returns:
        The coroutine function, called as ``await flow(session)``.

    Raises:
        ConfigError: The file is missing or fails to import (any exception
            while running it, with the line when known), or the function is
            missing or not ``async``.
    """
    path = os.path.abspath(spec.path)
    field = "flow.file"
    if not os.path.isfile(path):
        raise ConfigError(f"flow file not found: {path}", path=path, field=field)
    module_name = (
        "perfpilot_flow_" + hashlib.sha256(path.encode("utf-8", "replace")).hexdigest()[:16]
    )
    directory = os.path.dirname(path)
    sys.path.insert(0, directory)
    try:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(
                "flow file failed to import: not a Python file", path=path, field=field
            )
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    except ConfigError:
        sys.modules.pop(module_name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        here = exc.filename is not None and os.path.abspath(exc.filename) == path
        where = "" if here else f" (in {exc.filename}:{exc.lineno})"
        raise ConfigError(
            f"flow file failed to import: {type(exc).__name__}: {exc.msg}{where}",
            path=path,
            line=exc.lineno if here else _line_in(exc.__traceback__, path),
            column=exc.offset if here else None,
            field=field,
        ) from None
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(
            f"flow file failed to import: {type(exc).__name__}: {exc}",
            path=path,
            line=_line_in(exc.__traceback__, path),
            field=field,
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)
    function = getattr(module, spec.function, None)
    if function is None:
        available = sorted(
            name
            for name, value in vars(module).items()
            if inspect.iscoroutinefunction(value) and not name.startswith("_")
        )
        hint = _suggest(spec.function, available)
        listed = f"; async functions in it: {', '.join(available)}" if available else ""
        raise ConfigError(
            f"flow file has no function {spec.function!r}{hint}{listed}",
            path=path,
            field="flow.function",
        )
    if not inspect.iscoroutinefunction(function):
        code = getattr(function, "__code__", None)
        raise ConfigError(
            f"{spec.function} must be an async function: async def {spec.function}(session)",
            path=path,
            line=getattr(code, "co_firstlineno", None),
            field="flow.function",
        )
    return cast(Callable[..., Awaitable[Any]], function)


# ------------------------------------------------------------------------------ URL


def plan_from_url(
    url: str,
    *,
    method: str = "GET",
    headers: Sequence[str] = (),
    body: str | None = None,
    vus: int = 1,
    duration_s: float | None = None,
    rate: float | None = None,
    max_vus: int | None = None,
    thresholds: Sequence[str] = (),
    name: str | None = None,
    preset: str | None = None,
    scale: float | None = None,
) -> LoadPlan:
    """Build the plan of ``perfpilot load URL``: one request, sent over and over.

    With ``rate`` the run is open-model (``constant-arrival-rate``): ``vus``
    (when above 1) is the number of pre-allocated VUs and ``max_vus`` bounds
    them; see :func:`open_model_vus` for the defaults. Without it the run is
    ``constant-vus`` with ``vus`` users, or follows ``preset``.

    Args:
        url: ``http://`` or ``https://`` URL; may hold ``${iter}``, ``${vu}``
            and ``${rand}`` placeholders.
        method: HTTP method.
        headers: ``"Name: value"`` strings.
        body: The request body; ``@file`` reads a file. A body that parses
            as a JSON object or array gets ``Content-Type: application/json``
            unless a header sets it.
        vus: Virtual users (pre-allocated VUs with ``rate``).
        duration_s: Length of the run; ``None`` means 10 s, or the preset's length.
        rate: Requests per second (open model).
        max_vus: Upper bound on VUs with ``rate``.
        thresholds: Thresholds in the command-line form.
        name: Names the request and the run; default ``"METHOD /path"``
            for the request and the URL for the run.
        preset: A preset name instead of ``vus``/``rate``.
        scale: Multiplies the users (or rate).

    Returns:
        The plan.

    Raises:
        ConfigError: An invalid URL, header, body file, number or
            combination of options; ThresholdSyntaxError for thresholds.

    Example:
        >>> plan = plan_from_url("http://127.0.0.1:8000/", rate=200, duration_s=60)
        >>> plan.executor.kind, plan.executor.pre_allocated_vus, plan.executor.max_vus
        ('constant-arrival-rate', 100, 2000)
    """
    if not isinstance(url, str) or (parts := _check_url(url.strip())) is None:
        raise ConfigError(f"invalid URL {url!r}: {_URL_EXPECTED}", field="url")
    url = url.strip()
    problem = _placeholder_problem(url)
    if problem:
        raise ConfigError(problem, field="url")
    if not isinstance(method, str) or not _TOKEN.fullmatch(method.strip()):
        raise ConfigError(f"invalid HTTP method {method!r}", field="--method")
    method = method.strip().upper()

    header_pairs: list[tuple[str, str]] = []
    for item in headers:
        key, sep, value = item.partition(":") if isinstance(item, str) else ("", "", "")
        key, value = key.strip(), value.strip()
        problem = _header_problem(key, value) if sep and key else "expected 'Name: value'"
        if problem:
            raise ConfigError(f"invalid header {item!r}: {problem}", field="-H")
        header_pairs.append((key, value))

    payload: bytes | None = None
    if body is not None:
        if body.startswith("@"):
            try:
                payload = Path(body[1:]).read_bytes()
            except (OSError, ValueError) as exc:
                detail = getattr(exc, "strerror", None) or str(exc)
                raise ConfigError(
                    f"cannot read body file {body[1:]!r}: {detail}", field="--body"
                ) from None
        else:
            payload = body.encode("utf-8")
        if not any(k.lower() == "content-type" for k, _ in header_pairs) and _is_json_document(
            payload
        ):
            header_pairs.append(("Content-Type", "application/json"))

    _check_overrides(_Overrides(preset, scale, duration_s, vus, rate, max_vus))
    if preset is not None:
        executor = preset_executor(
            preset, scale=1.0 if scale is None else scale, duration_s=duration_s
        )
    else:
        executor = _constant_executor(
            vus, rate, max_vus, 10.0 if duration_s is None else duration_s
        )
        if scale is not None:
            executor = scale_executor(executor, scale)

    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError("expected a non-empty name", field="--name")
    request_name = name.strip() if name else f"{method} {parts.path or '/'}"
    request = RequestSpec(
        name=request_name,
        method=method,
        url=url,
        headers=tuple(header_pairs),
        body=payload,
    )
    specs = tuple(parse_threshold(t, field="--threshold") for t in thresholds)
    return LoadPlan(
        name=name.strip() if name else url,
        executor=executor,
        requests=(request,),
        base_url=f"{parts.scheme}://{parts.netloc}",
        thresholds=specs,
    )


def _is_json_document(payload: bytes) -> bool:
    """True when ``payload`` is a JSON object or array."""
    stripped = payload.lstrip()
    if stripped[:1] not in (b"{", b"["):
        return False
    try:
        json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True
