"""Thresholds in k6's grammar: parse them (and judge a run against them).

A threshold is ``METRIC[{tag:value,...}]: CONDITION`` where the condition is
``AGGREGATION OP VALUE``::

    http_req_duration: p(95)<500
    http_req_duration{name:login}: p(99.9) <= 1.2s
    http_req_failed: rate<1%
    http_reqs: rate>1000
    checks: rate>0.99
    dropped_iterations: count==0

Two shorthands: a bare condition (``p(95)<500ms``) is about
``http_req_duration``, and ``error_rate<1%`` means ``http_req_failed: rate<0.01``.

Metrics and what they aggregate:

=============================  =========  ======================================
metric                         kind       aggregations
=============================  =========  ======================================
``http_req_duration``          trend      ``avg min max med p(N) count``
``http_req_service_duration``  trend      ``avg min max med p(N) count``
``http_req_failed``            rate       ``rate``
``checks``                     rate       ``rate``
``http_reqs``                  counter    ``count rate`` (rate is per second)
``iterations``                 counter    ``count rate``
``dropped_iterations``         counter    ``count rate``
=============================  =========  ======================================

``http_req_duration`` is measured from the *intended* send time (it includes
any queueing a stalled server or generator caused); ``http_req_service_duration``
from the moment the request was written. Duration values default to
milliseconds and take ``us``/``µs``, ``ms``, ``s`` or ``m``; rates of
``http_req_failed`` and ``checks`` take ``%``. :class:`ThresholdSpec` stores the
bound in canonical units (milliseconds, a 0..1 fraction, per second, a count).

Every malformed threshold raises :class:`~perfpilot.errors.ThresholdSyntaxError`
with the 0-based position of the offending character; no other exception
comes out of the parser.

The metrics, kinds, aggregations and operators are defined in
:mod:`perfpilot.load.threshold_metrics`; judging a run is
:mod:`perfpilot.load.threshold_eval`, whose :func:`evaluate` and
:func:`evaluate_all` this module re-exports.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence

from perfpilot.errors import ThresholdSyntaxError
from perfpilot.load.plan import ThresholdSpec
from perfpilot.load.threshold_eval import evaluate, evaluate_all
from perfpilot.load.threshold_metrics import (
    COUNTER_AGGREGATIONS,
    COUNTER_METRICS,
    METRICS,
    OPERATORS,
    RATE_AGGREGATIONS,
    RATE_METRICS,
    RUN_COUNTERS,
    TREND_AGGREGATIONS,
    TREND_METRICS,
    metric_kind,
)

__all__ = [
    "COUNTER_AGGREGATIONS",
    "COUNTER_METRICS",
    "DURATION_UNITS_MS",
    "METRICS",
    "METRIC_ALIASES",
    "OPERATORS",
    "RATE_AGGREGATIONS",
    "RATE_METRICS",
    "RUN_COUNTERS",
    "TREND_AGGREGATIONS",
    "TREND_METRICS",
    "evaluate",
    "evaluate_all",
    "metric_kind",
    "parse_condition",
    "parse_threshold",
]

METRIC_ALIASES = {"error_rate": "http_req_failed"}
_AGGREGATION_WORDS = ("avg", "min", "max", "med", "count", "rate", "p")

# Longest first, so that "<=" wins over "<"; JavaScript's strict forms are
# accepted because k6 users write them.
_OPERATOR_TOKENS = ("===", "!==", "<=", ">=", "==", "!=", "<", ">")
_OPERATOR_CANONICAL = {"===": "==", "!==": "!="}
_OPERATORS_EXPECTED = "expected one of <, <=, >, >=, ==, !="

DURATION_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


class _Scanner:
    """A cursor over one string that raises positioned syntax errors."""

    def __init__(self, text: str, path: str | None, line: int | None, field: str | None) -> None:
        self.text = text
        self.pos = 0
        self.path = path
        self.line = line
        self.field = field

    def error(self, message: str, position: int | None = None) -> ThresholdSyntaxError:
        where = self.pos if position is None else position
        where = max(0, min(where, len(self.text)))
        return ThresholdSyntaxError(
            message, self.text, where, path=self.path, line=self.line, field=self.field
        )

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def describe_here(self) -> str:
        return "the end" if self.at_end() else repr(self.peek())

    def word(self) -> str:
        """Read ``[A-Za-z_][A-Za-z0-9_]*`` (ASCII only); empty when there is none."""
        start = self.pos
        text = self.text
        if self.pos < len(text) and (text[self.pos] == "_" or _is_ascii_alpha(text[self.pos])):
            self.pos += 1
            while self.pos < len(text) and (
                text[self.pos] == "_"
                or _is_ascii_alpha(text[self.pos])
                or "0" <= text[self.pos] <= "9"
            ):
                self.pos += 1
        return text[start : self.pos]

    def number(self, what: str) -> float:
        """Read an unsigned decimal number, with an optional exponent."""
        text = self.text
        start = self.pos
        while self.pos < len(text) and "0" <= text[self.pos] <= "9":
            self.pos += 1
        if self.pos < len(text) and text[self.pos] == ".":
            self.pos += 1
            while self.pos < len(text) and "0" <= text[self.pos] <= "9":
                self.pos += 1
        digits = text[start : self.pos]
        if digits in ("", "."):
            self.pos = start
            raise self.error(f"expected {what}, found {self.describe_here()}")
        if self.pos < len(text) and text[self.pos] in "eE":
            mark = self.pos
            self.pos += 1
            if self.pos < len(text) and text[self.pos] in "+-":
                self.pos += 1
            exp_start = self.pos
            while self.pos < len(text) and "0" <= text[self.pos] <= "9":
                self.pos += 1
            if self.pos == exp_start:
                self.pos = mark  # not an exponent after all; the unit check will report it
        try:
            value = float(text[start : self.pos])
        except ValueError:  # pragma: no cover - the scan above only admits valid floats
            raise self.error(f"expected {what}", start) from None
        if not math.isfinite(value):
            raise self.error(f"{what} is too large", start)
        return value


def _is_ascii_alpha(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_number(value: float) -> str:
    return f"{value:g}" if value != int(value) or abs(value) >= 1e15 else str(int(value))


def _parse_metric(scan: _Scanner) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Read ``METRIC[{k:v,...}]`` at the cursor."""
    scan.skip_ws()
    start = scan.pos
    word = scan.word()
    if not word:
        raise scan.error(
            f"expected a metric name such as http_req_duration, found {scan.describe_here()}"
        )
    metric = METRIC_ALIASES.get(word, word)
    if metric not in METRICS:
        hint = _suggest(word, (*METRICS, *METRIC_ALIASES))
        raise scan.error(
            f"unknown metric '{word}'{hint}; expected one of {', '.join(METRICS)}", start
        )
    scan.skip_ws()
    tags: tuple[tuple[str, str], ...] = ()
    if scan.peek() == "{":
        if metric in RUN_COUNTERS:
            raise scan.error(
                f"tag filters do not apply to {metric}, a run-wide counter without tags"
            )
        tags = _parse_tags(scan)
    return metric, tags


def _parse_tags(scan: _Scanner) -> tuple[tuple[str, str], ...]:
    """Read ``{key:value, ...}``; values may be quoted to hold ``,`` or ``}``."""
    scan.pos += 1  # the "{"
    tags: dict[str, str] = {}
    while True:
        scan.skip_ws()
        key_start = scan.pos
        while scan.pos < len(scan.text) and (
            scan.text[scan.pos].isalnum() or scan.text[scan.pos] in "_-."
        ):
            scan.pos += 1
        key = scan.text[key_start : scan.pos]
        if not key:
            raise scan.error(f"expected a tag name such as name, found {scan.describe_here()}")
        if key in tags:
            raise scan.error(f"tag '{key}' is given twice", key_start)
        scan.skip_ws()
        if scan.peek() != ":":
            raise scan.error(f"expected ':' after tag name '{key}', found {scan.describe_here()}")
        scan.pos += 1
        scan.skip_ws()
        value_start = scan.pos
        quote = scan.peek()
        if quote in ("'", '"'):
            scan.pos += 1
            end = scan.text.find(quote, scan.pos)
            if end < 0:
                raise scan.error(f"unterminated {quote} in tag value", value_start)
            value = scan.text[scan.pos : end]
            scan.pos = end + 1
            scan.skip_ws()
        else:
            while scan.pos < len(scan.text) and scan.text[scan.pos] not in ",}":
                scan.pos += 1
            value = scan.text[value_start : scan.pos].strip()
        if not value:
            raise scan.error(f"expected a value for tag '{key}'", value_start)
        tags[key] = value
        if scan.peek() == ",":
            scan.pos += 1
            continue
        if scan.peek() == "}":
            scan.pos += 1
            return tuple(sorted(tags.items()))
        raise scan.error(f"expected ',' or '}}' in the tag filter, found {scan.describe_here()}")


def _parse_aggregation(scan: _Scanner, metric: str) -> tuple[str, float | None]:
    """Read ``avg``/``min``/``max``/``med``/``count``/``rate``/``p(N)``."""
    scan.skip_ws()
    start = scan.pos
    word = scan.word()
    if not word:
        raise scan.error(
            f"expected an aggregation such as p(95), avg or rate, found {scan.describe_here()}"
        )
    percentile: float | None = None
    if word == "p":
        scan.skip_ws()
        if scan.peek() != "(":
            raise scan.error(f"expected '(' after p, as in p(95), found {scan.describe_here()}")
        scan.pos += 1
        scan.skip_ws()
        number_start = scan.pos
        percentile = scan.number("a percentile such as 95")
        if not 0 < percentile <= 100:
            raise scan.error("percentile must be in (0, 100]", number_start)
        scan.skip_ws()
        if scan.peek() != ")":
            raise scan.error(f"expected ')' after the percentile, found {scan.describe_here()}")
        scan.pos += 1
        aggregation = f"p({_format_number(percentile)})"
    elif word in _AGGREGATION_WORDS:
        aggregation = word
    elif len(word) > 1 and word[0] == "p" and word[1:].isdigit():
        raise scan.error(f"write percentiles as p({word[1:]}), not {word}", start)
    else:
        hint = _suggest(word, _AGGREGATION_WORDS)
        raise scan.error(
            f"unknown aggregation '{word}'{hint}; expected avg, min, max, med, p(N), count or rate",
            start,
        )
    kind = metric_kind(metric)
    allowed = {
        "trend": TREND_AGGREGATIONS,
        "rate": RATE_AGGREGATIONS,
        "counter": COUNTER_AGGREGATIONS,
    }[kind]
    base = "p(N)" if percentile is not None else aggregation
    if base not in allowed:
        raise scan.error(
            f"aggregation '{aggregation}' does not apply to {kind} metric {metric}; "
            f"use {_or_list(allowed)}",
            start,
        )
    return aggregation, percentile


def _or_list(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def _parse_operator(scan: _Scanner) -> str:
    scan.skip_ws()
    for token in _OPERATOR_TOKENS:
        if scan.text.startswith(token, scan.pos):
            scan.pos += len(token)
            return _OPERATOR_CANONICAL.get(token, token)
    raise scan.error(f"{_OPERATORS_EXPECTED}, found {scan.describe_here()}")


def _parse_value(scan: _Scanner, metric: str, aggregation: str) -> float:
    """Read the bound and its optional unit; return it in canonical units."""
    scan.skip_ws()
    negative = False
    if scan.peek() in ("-", "+"):
        negative = scan.peek() == "-"
        scan.pos += 1
        scan.skip_ws()
    value_start = scan.pos
    value = scan.number("a number")
    if negative:
        value = -value
    scan.skip_ws()
    unit_start = scan.pos
    unit = ""
    if scan.peek() == "%":
        scan.pos += 1
        unit = "%"
    else:
        while scan.pos < len(scan.text) and (
            _is_ascii_alpha(scan.text[scan.pos]) or scan.text[scan.pos] in "µμ"
        ):
            scan.pos += 1
        unit = scan.text[unit_start : scan.pos]
    kind = metric_kind(metric)
    is_duration = kind == "trend" and aggregation != "count"
    is_fraction = kind == "rate"
    if unit:
        if is_duration:
            if unit not in DURATION_UNITS_MS:
                raise scan.error(
                    f"unknown duration unit '{unit}'; expected us, ms, s or m "
                    "(a bare number is milliseconds)",
                    unit_start,
                )
            value *= DURATION_UNITS_MS[unit]
        elif is_fraction:
            if unit != "%":
                raise scan.error(
                    f"unit '{unit}' does not apply to {metric} rate; "
                    "expected a fraction such as 0.01 or a percentage such as 1%",
                    unit_start,
                )
            value /= 100.0
        else:
            raise scan.error(
                f"{metric} {aggregation} takes a plain number, not '{unit}'", unit_start
            )
    elif is_fraction and value > 1:
        raise scan.error(
            f"{metric} rate is a fraction between 0 and 1; "
            f"write {_format_number(value)}% or {_format_number(value / 100)}",
            value_start,
        )
    if is_fraction and value > 1:
        raise scan.error(f"{metric} rate cannot exceed 100%", value_start)
    return value


def _parse_condition_at(scan: _Scanner, metric: str) -> tuple[str, float | None, str, float]:
    aggregation, percentile = _parse_aggregation(scan, metric)
    op = _parse_operator(scan)
    value = _parse_value(scan, metric, aggregation)
    scan.skip_ws()
    if not scan.at_end():
        raise scan.error(f"unexpected {scan.describe_here()} after the threshold value")
    return aggregation, percentile, op, value


def _check_abort_args(scan: _Scanner, abort_on_fail: bool, delay_abort_eval_s: float) -> None:
    if not isinstance(abort_on_fail, bool):
        raise scan.error("abort_on_fail must be true or false", 0)
    if isinstance(delay_abort_eval_s, bool) or not isinstance(delay_abort_eval_s, int | float):
        raise scan.error("delay_abort_eval must be a duration", 0)
    if not math.isfinite(delay_abort_eval_s) or delay_abort_eval_s < 0:
        raise scan.error("delay_abort_eval must be a non-negative duration", 0)


def parse_threshold(
    text: str,
    *,
    path: str | None = None,
    line: int | None = None,
    field: str | None = None,
    abort_on_fail: bool = False,
    delay_abort_eval_s: float = 0.0,
) -> ThresholdSpec:
    """Parse a threshold as written on the command line.

    Args:
        text: ``METRIC[{tag:value,...}]: CONDITION``, a bare condition about
            ``http_req_duration`` (``p(95)<500``), or ``error_rate<1%``.
        path: The file the threshold comes from, for error messages.
        line: Its line in that file, for error messages.
        field: The setting it comes from (e.g. ``--threshold``), for error messages.
        abort_on_fail: Stop the run as soon as the threshold fails.
        delay_abort_eval_s: Seconds into the run before abort checks start.

    Returns:
        The parsed threshold, with its bound in canonical units.

    Raises:
        ThresholdSyntaxError: ``text`` does not parse; ``position`` points at
            the offending character.

    Example:
        >>> spec = parse_threshold("http_req_duration{name:login}: p(99)<0.8s")
        >>> spec.metric_key, spec.aggregation, spec.op, spec.value
        ('http_req_duration{name:login}', 'p(99)', '<', 800.0)
    """
    if not isinstance(text, str):
        raise ThresholdSyntaxError(
            "a threshold must be a string", repr(text), 0, path=path, line=line, field=field
        )
    scan = _Scanner(text, path, line, field)
    _check_abort_args(scan, abort_on_fail, delay_abort_eval_s)
    scan.skip_ws()
    if scan.at_end():
        raise scan.error("expected a threshold such as 'http_req_duration: p(95)<500'")
    start = scan.pos
    word = scan.word()
    scan.skip_ws()
    condition_start: int
    if word and scan.peek() in ("{", ":"):
        scan.pos = start
        metric, tags = _parse_metric(scan)
        scan.skip_ws()
        if scan.peek() != ":":
            raise scan.error(
                f"expected ':' between the metric and the condition, found {scan.describe_here()}"
            )
        scan.pos += 1
        scan.skip_ws()
        condition_start = scan.pos
        aggregation, percentile, op, value = _parse_condition_at(scan, metric)
        condition = text[condition_start:].strip()
    elif word == "error_rate":
        metric, tags = "http_req_failed", ()
        aggregation, percentile = "rate", None
        op = _parse_operator(scan)
        value = _parse_value(scan, metric, aggregation)
        scan.skip_ws()
        if not scan.at_end():
            raise scan.error(f"unexpected {scan.describe_here()} after the threshold value")
        condition = "rate" + text[start + len(word) :].strip()
    elif word in _AGGREGATION_WORDS or (word[:1] == "p" and word[1:].isdigit() and word[1:]):
        metric, tags = "http_req_duration", ()
        scan.pos = start
        aggregation, percentile, op, value = _parse_condition_at(scan, metric)
        condition = text[start:].strip()
    elif word in METRICS or word in METRIC_ALIASES:
        raise scan.error(
            f"expected ':' between the metric and the condition, found {scan.describe_here()}"
        )
    elif word:
        hint = _suggest(word, (*METRICS, *METRIC_ALIASES, *_AGGREGATION_WORDS))
        raise scan.error(
            f"unknown metric '{word}'{hint}; expected 'METRIC: CONDITION' "
            "such as 'http_req_duration: p(95)<500'",
            start,
        )
    else:
        raise scan.error(
            f"expected a metric name or a condition such as p(95)<500, found {scan.describe_here()}"
        )
    return ThresholdSpec(
        metric=metric,
        tags=tags,
        aggregation=aggregation,
        percentile=percentile,
        op=op,
        value=value,
        condition=condition,
        source=text.strip(),
        abort_on_fail=abort_on_fail,
        delay_abort_eval_s=float(delay_abort_eval_s),
    )


def parse_condition(
    metric_key: str,
    condition: str,
    *,
    path: str | None = None,
    line: int | None = None,
    field: str | None = None,
    abort_on_fail: bool = False,
    delay_abort_eval_s: float = 0.0,
) -> ThresholdSpec:
    """Parse a threshold written as in a scenario file's ``[thresholds]`` table.

    Args:
        metric_key: The metric with an optional tag filter, e.g.
            ``http_req_duration{name:login}``.
        condition: ``AGGREGATION OP VALUE``, e.g. ``p(99)<800``.
        path: The file, for error messages.
        line: The line, for error messages.
        field: The setting, for error messages.
        abort_on_fail: Stop the run as soon as the threshold fails.
        delay_abort_eval_s: Seconds into the run before abort checks start.

    Returns:
        The parsed threshold.

    Raises:
        ThresholdSyntaxError: ``metric_key`` or ``condition`` does not parse;
            the error's ``expression`` is whichever of the two is wrong.

    Example:
        >>> parse_condition("http_req_failed", "rate<1%").value
        0.01
    """
    if not isinstance(metric_key, str) or not isinstance(condition, str):
        raise ThresholdSyntaxError(
            "a threshold must be a string", repr(condition), 0, path=path, line=line, field=field
        )
    key_scan = _Scanner(metric_key, path, line, field)
    _check_abort_args(key_scan, abort_on_fail, delay_abort_eval_s)
    metric, tags = _parse_metric(key_scan)
    key_scan.skip_ws()
    if not key_scan.at_end():
        raise key_scan.error(
            f"unexpected {key_scan.describe_here()} after the metric name; "
            'the condition goes in the list, as in http_req_duration = ["p(95)<500"]'
        )
    scan = _Scanner(condition, path, line, field)
    aggregation, percentile, op, value = _parse_condition_at(scan, metric)
    key = metric_key.strip()
    cond = condition.strip()
    return ThresholdSpec(
        metric=metric,
        tags=tags,
        aggregation=aggregation,
        percentile=percentile,
        op=op,
        value=value,
        condition=cond,
        source=f"{key}: {cond}",
        abort_on_fail=abort_on_fail,
        delay_abort_eval_s=float(delay_abort_eval_s),
    )
