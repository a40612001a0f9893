"""The executor of a load plan: from an ``[executor]`` table or command-line options.

:func:`read_executor` reads a scenario's ``[executor]`` table (k6's fields
and camelCase spellings, or a preset); :class:`Overrides` carries the
command-line ``--preset``, ``--scale``, ``--duration``, ``--vus``, ``--rate``
and ``--max-vus`` that replace or reshape it; :func:`constant_executor` builds
the executor of a URL run; :func:`open_model_vus` sizes the VU pools of the
arrival-rate executors.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

from perfpilot.errors import ConfigError
from perfpilot.load.plan import EXECUTOR_KINDS, ExecutorKind, ExecutorSpec, Stage
from perfpilot.load.presets import preset_executor, scale_executor, stretch_executor
from perfpilot.load.tomlpos import FieldPath, TypedReader, suggest

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

STAGE_KEYS = ("duration", "target")

# Open-model defaults (see open_model_vus).
DEFAULT_PRE_ALLOCATED_CAP = 100
DEFAULT_MAX_VUS_FLOOR = 100
DEFAULT_MAX_VUS_CAP = 10_000


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


@dataclasses.dataclass
class Overrides:
    """Command-line values that replace a scenario's executor (``None``: not given)."""

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


def check_overrides(o: Overrides) -> None:
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


def constant_executor(
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


def read_executor(reader: TypedReader, raw: object, overrides: Overrides) -> ExecutorSpec:
    """Build the executor from a scenario's ``[executor]`` table and the overrides.

    Args:
        reader: The scenario file's reader.
        raw: The ``[executor]`` value, or ``None`` when the file has none.
        overrides: Command-line values, already checked by :func:`check_overrides`.

    Returns:
        The executor, with the overrides applied.

    Raises:
        ConfigError: The table is missing (and no override replaces it) or wrong.
    """
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
        base = None if raw is None else read_executor(reader, raw, Overrides(None, None, None))
        length = overrides.duration_s
        if length is None:
            length = 10.0 if base is None else base.total_duration_s
        spec = constant_executor(
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
                f"unknown executor type {kind!r}{suggest(kind, EXECUTOR_KINDS)}; "
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
        vus = 1  # k6's default for vus and startVUs
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


def _with_graceful_stop(reader: TypedReader, raw: object, spec: ExecutorSpec) -> ExecutorSpec:
    if not isinstance(raw, dict):
        return spec
    for key in ("graceful_stop", "gracefulStop"):
        if key in raw:
            seconds = reader.duration(raw[key], ("executor", key), allow_zero=True)
            return dataclasses.replace(spec, graceful_stop_s=seconds)
    return spec


def _stages(
    reader: TypedReader, raw: object, field: FieldPath, *, whole: bool
) -> tuple[Stage, ...]:
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
