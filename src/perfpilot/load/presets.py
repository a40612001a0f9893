"""Named load shapes: ``smoke``, ``normal``, ``peak``, ``stress``, ``spike``, ``soak``.

Each preset is a closed-model (virtual user) executor. The ramping ones climb
linearly from one VU to their user count, hold it for the rest of the run, and
(``spike`` only) fall back to zero at the end:

========  =======  ========  ===========================================
preset    users    length    shape
========  =======  ========  ===========================================
smoke     1        30 s      constant: does the scenario work at all?
normal    100      5 min     30 s ramp up, hold
peak      1 000    15 min    2 min ramp up, hold
stress    5 000    30 min    5 min ramp up, hold
spike     10 000   1 min     10 s ramp up, 40 s hold, 10 s ramp down
soak      200      4 h       5 min ramp up, hold (leaks, slow growth)
========  =======  ========  ===========================================

The length includes the ramps. :func:`preset_executor` scales the users and
stretches or shrinks the length, keeping the proportions of the stages;
:func:`scale_executor` and :func:`stretch_executor` do the same to any
executor.

Example:
    >>> ex = preset_executor("normal", scale=0.1, duration_s=60)
    >>> ex.kind, ex.peak(), ex.total_duration_s
    ('ramping-vus', 10.0, 60.0)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from types import MappingProxyType

from perfpilot.errors import ConfigError
from perfpilot.load.plan import ExecutorSpec, Stage


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named load shape.

    Attributes:
        name: What users type after ``--preset``.
        users: Virtual users at the plateau.
        duration_s: Length of the run, ramps included.
        ramp_up_s: Time to climb from one VU to ``users``; 0 for a constant load.
        ramp_down_s: Time to fall from ``users`` to zero at the end.
        description: One line for help texts.
    """

    name: str
    users: int
    duration_s: float
    ramp_up_s: float
    ramp_down_s: float = 0.0
    description: str = ""

    def executor(self) -> ExecutorSpec:
        """The preset as an executor, unscaled."""
        if self.ramp_up_s <= 0 and self.ramp_down_s <= 0:
            return ExecutorSpec(kind="constant-vus", vus=self.users, duration_s=self.duration_s)
        hold = self.duration_s - self.ramp_up_s - self.ramp_down_s
        stages = [Stage(self.ramp_up_s, float(self.users)), Stage(hold, float(self.users))]
        if self.ramp_down_s > 0:
            stages.append(Stage(self.ramp_down_s, 0.0))
        return ExecutorSpec(kind="ramping-vus", vus=1, stages=tuple(stages))


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        preset.name: preset
        for preset in (
            Preset("smoke", 1, 30.0, 0.0, description="1 VU for 30 s: does the scenario work?"),
            Preset("normal", 100, 300.0, 30.0, description="100 users for 5 min, 30 s ramp"),
            Preset("peak", 1000, 900.0, 120.0, description="1 000 users for 15 min, 2 min ramp"),
            Preset("stress", 5000, 1800.0, 300.0, description="5 000 users for 30 min, 5 min ramp"),
            Preset(
                "spike",
                10000,
                60.0,
                10.0,
                10.0,
                description="10 000 users for 1 min: 10 s up, hold, 10 s down",
            ),
            Preset("soak", 200, 14400.0, 300.0, description="200 users for 4 h, 5 min ramp"),
        )
    }
)


def _positive(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a positive number, got {value!r}", field=field)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"expected a positive number, got {value!r}", field=field)
    return number


def _scale_vus(vus: float, scale: float) -> int:
    """Scale a VU count; zero stays zero, anything else stays at least one."""
    if vus <= 0:
        return 0
    return max(1, round(vus * scale))


def scale_executor(spec: ExecutorSpec, scale: float) -> ExecutorSpec:
    """Multiply the load of an executor by ``scale``.

    VU counts (``vus``, stage targets of ``ramping-vus``, ``pre_allocated_vus``,
    ``max_vus``) are rounded and kept at least one unless they were zero;
    rates (``rate``, stage targets of ``ramping-arrival-rate``) are multiplied
    as they are.

    Args:
        spec: The executor.
        scale: A positive factor.

    Returns:
        The scaled executor.

    Raises:
        ConfigError: ``scale`` is not a positive number.
    """
    factor = _positive(scale, "scale")
    if spec.open_model:
        stages = tuple(Stage(s.duration_s, s.target * factor) for s in spec.stages)
    else:
        stages = tuple(
            Stage(s.duration_s, float(_scale_vus(s.target, factor))) for s in spec.stages
        )
    vus = spec.vus if spec.open_model else _scale_vus(spec.vus, factor)
    if spec.kind == "constant-vus":
        vus = max(1, vus)
    pre = _scale_vus(spec.pre_allocated_vus, factor)
    max_vus = max(_scale_vus(spec.max_vus, factor), pre) if spec.max_vus else 0
    return dataclasses.replace(
        spec,
        vus=vus,
        stages=stages,
        rate=spec.rate * factor,
        pre_allocated_vus=pre,
        max_vus=max_vus,
    )


def stretch_executor(spec: ExecutorSpec, duration_s: float) -> ExecutorSpec:
    """Make an executor last ``duration_s``, keeping the proportions of its stages.

    Args:
        spec: The executor.
        duration_s: The new length in seconds (positive).

    Returns:
        The executor with its ``duration_s`` or its stage lengths rescaled.

    Raises:
        ConfigError: ``duration_s`` is not a positive number.
    """
    length = _positive(duration_s, "duration")
    if spec.kind in ("ramping-vus", "ramping-arrival-rate"):
        total = spec.total_duration_s
        if total <= 0:
            return spec
        factor = length / total
        stages = tuple(Stage(s.duration_s * factor, s.target) for s in spec.stages)
        return dataclasses.replace(spec, stages=stages)
    return dataclasses.replace(spec, duration_s=length)


def get_preset(name: str) -> Preset:
    """Look a preset up by name (case-insensitive).

    Args:
        name: One of :data:`PRESETS`.

    Returns:
        The preset.

    Raises:
        ConfigError: No preset has that name; the message lists the known
            ones and suggests the closest.
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    preset = PRESETS.get(key)
    if preset is None:
        close = difflib.get_close_matches(key, list(PRESETS), n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown preset {name!r}{hint}; expected one of {', '.join(PRESETS)}",
            field="preset",
        )
    return preset


def preset_executor(
    name: str, *, scale: float = 1.0, duration_s: float | None = None
) -> ExecutorSpec:
    """The executor of a named preset, optionally scaled and stretched.

    Args:
        name: ``smoke``, ``normal``, ``peak``, ``stress``, ``spike`` or ``soak``.
        scale: Multiplies the users (never below one VU).
        duration_s: A new length for the whole run; the stages keep their
            proportions. ``None`` keeps the preset's length.

    Returns:
        A ``constant-vus`` (``smoke``) or ``ramping-vus`` executor.

    Raises:
        ConfigError: Unknown preset name, or a non-positive ``scale`` or
            ``duration_s``.

    Example:
        >>> [(s.duration_s, s.target) for s in preset_executor("spike", scale=0.01).stages]
        [(10.0, 100.0), (40.0, 100.0), (10.0, 0.0)]
    """
    spec = get_preset(name).executor()
    if _positive(scale, "scale") != 1.0:
        spec = scale_executor(spec, scale)
    if duration_s is not None:
        spec = stretch_executor(spec, duration_s)
    return spec
