"""The plan of ``perfpilot load URL``: one request, sent over and over.

Example:
    >>> plan = plan_from_url("http://127.0.0.1:8000/health", vus=5, duration_s=30)
    >>> plan.executor.kind, plan.requests[0].name
    ('constant-vus', 'GET /health')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from perfpilot.errors import ConfigError
from perfpilot.load.executor_config import Overrides, check_overrides, constant_executor
from perfpilot.load.http_syntax import (
    TOKEN,
    URL_EXPECTED,
    check_url,
    header_problem,
    placeholder_problem,
)
from perfpilot.load.plan import LoadPlan, RequestSpec, redact_url
from perfpilot.load.presets import preset_executor, scale_executor
from perfpilot.load.thresholds import parse_threshold


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
    them; see :func:`~perfpilot.load.executor_config.open_model_vus` for the
    defaults. Without it the run is ``constant-vus`` with ``vus`` users, or
    follows ``preset``.

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
            for the request and the URL for the run (its credentials masked:
            :func:`~perfpilot.load.plan.redact_url`).
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
    if not isinstance(url, str) or (parts := check_url(url.strip())) is None:
        raise ConfigError(f"invalid URL {url!r}: {URL_EXPECTED}", field="url")
    url = url.strip()
    problem = placeholder_problem(url)
    if problem:
        raise ConfigError(problem, field="url")
    if not isinstance(method, str) or not TOKEN.fullmatch(method.strip()):
        raise ConfigError(f"invalid HTTP method {method!r}", field="--method")
    method = method.strip().upper()

    header_pairs: list[tuple[str, str]] = []
    for item in headers:
        key, sep, value = item.partition(":") if isinstance(item, str) else ("", "", "")
        key, value = key.strip(), value.strip()
        problem = header_problem(key, value) if sep and key else "expected 'Name: value'"
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

    check_overrides(Overrides(preset, scale, duration_s, vus, rate, max_vus))
    if preset is not None:
        executor = preset_executor(
            preset, scale=1.0 if scale is None else scale, duration_s=duration_s
        )
    else:
        executor = constant_executor(vus, rate, max_vus, 10.0 if duration_s is None else duration_s)
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
        name=name.strip() if name else redact_url(url),
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
