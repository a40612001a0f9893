"""The load plan: what to send, how hard, and what must hold.

A :class:`LoadPlan` is built from the command line (:func:`perfpilot.load.scenario.plan_from_url`)
or from a TOML scenario file (:func:`perfpilot.load.scenario.load_scenario`). The
engine reads it and nothing else. All durations are seconds; rates are
iterations per second.

What a run keeps and shows of its plan (:meth:`LoadPlan.describe`, the run's
name) has credentials redacted: sensitive header values (:func:`redact_header`)
and the values of sensitive query parameters such as ``api_key`` or ``token``
(:func:`redact_url`). The engine still sends the real URLs and headers.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal

from perfpilot.store.dsn import MASK, redact_credentials

ExecutorKind = Literal[
    "constant-vus", "ramping-vus", "constant-arrival-rate", "ramping-arrival-rate"
]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = (
    "constant-vus",
    "ramping-vus",
    "constant-arrival-rate",
    "ramping-arrival-rate",
)
OPEN_MODEL_KINDS = frozenset({"constant-arrival-rate", "ramping-arrival-rate"})

CheckKind = Literal["status", "body_contains", "json_field"]


@dataclasses.dataclass(frozen=True)
class Check:
    """A condition on a response, counted as passed or failed (not an error).

    Attributes:
        kind: ``status`` (status in ``statuses``), ``body_contains`` (``text``
            in the body) or ``json_field`` (``path`` exists in the JSON body
            and, when ``has_expected``, equals ``expected``).
        name: How the check is reported, e.g. ``status is 200``.
        statuses: Accepted statuses for ``status`` checks.
        text: Substring for ``body_contains`` checks.
        path: Dotted path for ``json_field`` checks (``items.0.id``).
        expected: Expected value for ``json_field`` checks.
        has_expected: Whether ``expected`` is set (``None`` is a valid value).
    """

    kind: CheckKind
    name: str
    statuses: tuple[int, ...] = ()
    text: str = ""
    path: str = ""
    expected: Any = None
    has_expected: bool = False


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """One named request of a scenario.

    Attributes:
        name: The request name; per-name statistics are keyed by it.
        method: HTTP method, upper case.
        url: Absolute ``http://`` or ``https://`` URL.
        headers: Extra headers, in order.
        body: The encoded body, or ``None``.
        weight: Relative frequency among the scenario's requests.
        tags: Tags attached to this request's statistics.
        checks: Checks run on each response.
    """

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    weight: float = 1.0
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    checks: tuple[Check, ...] = ()


@dataclasses.dataclass(frozen=True)
class Stage:
    """One ramp stage: move linearly to ``target`` over ``duration_s``.

    ``target`` is a number of virtual users (``ramping-vus``) or an
    iteration rate per second (``ramping-arrival-rate``).
    """

    duration_s: float
    target: float


@dataclasses.dataclass(frozen=True)
class ExecutorSpec:
    """How load is applied; names and fields follow k6's executors.

    Attributes:
        kind: One of :data:`EXECUTOR_KINDS`.
        vus: Virtual users for ``constant-vus``; start VUs for ``ramping-vus``.
        duration_s: Length of the constant executors.
        stages: Ramp stages for the ramping executors.
        rate: Iterations per second for ``constant-arrival-rate``; start rate
            for ``ramping-arrival-rate``.
        pre_allocated_vus: VUs created before an open-model run starts.
        max_vus: Upper bound on VUs in an open-model run; an iteration due
            when all are busy is dropped and counted.
        graceful_stop_s: How long in-flight iterations may finish at the end.
    """

    kind: ExecutorKind
    vus: int = 1
    duration_s: float = 10.0
    stages: tuple[Stage, ...] = ()
    rate: float = 0.0
    pre_allocated_vus: int = 0
    max_vus: int = 0
    graceful_stop_s: float = 5.0

    @property
    def open_model(self) -> bool:
        """True for arrival-rate executors."""
        return self.kind in OPEN_MODEL_KINDS

    @property
    def total_duration_s(self) -> float:
        """Length of the run, without the graceful stop."""
        if self.kind in ("ramping-vus", "ramping-arrival-rate"):
            return sum(stage.duration_s for stage in self.stages)
        return self.duration_s

    def target_at(self, t: float) -> float:
        """VUs (closed model) or rate (open model) wanted ``t`` seconds into the run."""
        if self.kind == "constant-vus":
            return float(self.vus)
        if self.kind == "constant-arrival-rate":
            return self.rate
        level = float(self.vus) if self.kind == "ramping-vus" else self.rate
        elapsed = 0.0
        for stage in self.stages:
            if t < elapsed + stage.duration_s and stage.duration_s > 0:
                frac = (t - elapsed) / stage.duration_s
                return level + (stage.target - level) * frac
            elapsed += stage.duration_s
            level = stage.target
        return level

    def peak(self) -> float:
        """The highest VU count or rate the executor asks for."""
        if self.kind == "constant-vus":
            return float(self.vus)
        if self.kind == "constant-arrival-rate":
            return self.rate
        start = float(self.vus) if self.kind == "ramping-vus" else self.rate
        return max([start, *(stage.target for stage in self.stages)])


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """A multi-step flow: ``async def function(session)`` in a Python file."""

    path: str
    function: str = "flow"


@dataclasses.dataclass(frozen=True)
class ThresholdSpec:
    """A parsed threshold (k6 grammar), e.g. ``http_req_duration{name:login}: p(95)<500``.

    Attributes:
        metric: ``http_req_duration``, ``http_req_service_duration``,
            ``http_req_failed``, ``http_reqs``, ``checks``, ``iterations`` or
            ``dropped_iterations``.
        tags: Tag filter as sorted ``(key, value)`` pairs.
        aggregation: ``avg``, ``min``, ``max``, ``med``, ``p(N)``, ``rate`` or ``count``.
        percentile: N for ``p(N)``.
        op: ``<``, ``<=``, ``>``, ``>=``, ``==`` or ``!=``.
        value: The bound in canonical units: milliseconds for durations, a
            0..1 fraction for ``rate`` of ``http_req_failed`` and ``checks``,
            per second for ``rate`` of counters, a number for ``count``.
        condition: The condition as written, e.g. ``p(95)<500ms``.
        source: The whole threshold as written, for messages and reports.
        abort_on_fail: Stop the run as soon as this threshold fails.
        delay_abort_eval_s: Do not evaluate for abort before this many seconds.
    """

    metric: str
    tags: tuple[tuple[str, str], ...]
    aggregation: str
    percentile: float | None
    op: str
    value: float
    condition: str
    source: str
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0

    @property
    def metric_key(self) -> str:
        """The metric with its tag filter, as k6 writes it."""
        if not self.tags:
            return self.metric
        inner = ",".join(f"{k}:{v}" for k, v in self.tags)
        return f"{self.metric}{{{inner}}}"


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    """Everything the engine needs to run a load test.

    Attributes:
        name: A label for the run.
        executor: How load is applied.
        requests: Weighted requests; each iteration sends one of them (used
            when there is no ``flow``).
        flow: A flow function; each iteration runs it once.
        base_url: Base for relative paths in flows.
        think_time_s: ``(min, max)`` seconds of pause after each iteration.
        thresholds: What must hold; failures set exit code 1.
        connect_timeout_s: Timeout for opening a connection.
        request_timeout_s: Timeout for one request, from send to last byte.
        follow_redirects: Follow 3xx responses (up to 10) when true.
        insecure: Do not verify TLS certificates.
        default_headers: Headers sent with every request (flows included).
    """

    name: str
    executor: ExecutorSpec
    requests: tuple[RequestSpec, ...] = ()
    flow: FlowSpec | None = None
    base_url: str | None = None
    think_time_s: tuple[float, float] = (0.0, 0.0)
    thresholds: tuple[ThresholdSpec, ...] = ()
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 30.0
    follow_redirects: bool = False
    insecure: bool = False
    default_headers: tuple[tuple[str, str], ...] = ()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for the store and result files.

        Header values and URL query values that carry credentials are redacted.
        """
        ex = self.executor
        return {
            "name": redact_url(self.name),
            "executor": {
                "kind": ex.kind,
                "vus": ex.vus,
                "duration_s": ex.duration_s,
                "stages": [[s.duration_s, s.target] for s in ex.stages],
                "rate": ex.rate,
                "pre_allocated_vus": ex.pre_allocated_vus,
                "max_vus": ex.max_vus,
            },
            "requests": [
                {
                    "name": redact_url(r.name),
                    "method": r.method,
                    "url": redact_url(r.url),
                    "weight": r.weight,
                    "headers": [[k, redact_header(k, v)] for k, v in r.headers],
                    "tags": dict(r.tags),
                }
                for r in self.requests
            ],
            "flow": None if self.flow is None else dataclasses.asdict(self.flow),
            "think_time_s": list(self.think_time_s),
            "thresholds": [t.source for t in self.thresholds],
        }


SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)


def redact_header(name: str, value: str) -> str:
    """Return ``value``, or ``[redacted]`` when ``name`` carries credentials."""
    lowered = name.lower()
    if lowered in SENSITIVE_HEADERS or "token" in lowered or "secret" in lowered:
        return "[redacted]"
    return value


#: Query parameters whose values are credentials (compared in lower case).
SENSITIVE_QUERY_PARAMETERS = frozenset(
    {
        "api_key", "apikey", "key", "token", "access_token", "auth", "secret", "password",
        "passwd", "signature", "sig", "client_secret",
    }
)  # fmt: skip

# name=value after '?', '&' or ';' in a query: the value stops at '&', ';', '#' or a space.
_QUERY_PARAMETER = re.compile(r"(?P<head>[?&;](?P<name>[^=&;#\s]+)=)(?P<value>[^&;#\s]*)")


def redact_url(text: str) -> str:
    """``text`` (a URL, or a name holding one) with its credentials masked.

    The values of the query parameters in :data:`SENSITIVE_QUERY_PARAMETERS`
    (any case; names kept) and a ``user:password@`` password become ``***``.

    Example:
        >>> redact_url("http://h/api?API_KEY=k1&page=2&token=t#top")
        'http://h/api?API_KEY=***&page=2&token=***#top'
    """

    def mask(match: re.Match[str]) -> str:
        name = urllib.parse.unquote_plus(match.group("name")).lower()
        if name in SENSITIVE_QUERY_PARAMETERS and match.group("value"):
            return f"{match.group('head')}{MASK}"
        return match.group(0)

    return _QUERY_PARAMETER.sub(mask, redact_credentials(text))
