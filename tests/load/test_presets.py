"""Tests for perfpilot.load.presets."""

from __future__ import annotations

import math

import pytest

from perfpilot.errors import ConfigError
from perfpilot.load.plan import ExecutorSpec, Stage
from perfpilot.load.presets import (
    PRESETS,
    get_preset,
    preset_executor,
    scale_executor,
    stretch_executor,
)


@pytest.mark.parametrize(
    ("name", "users", "duration_s", "ramp_up_s"),
    [
        ("normal", 100, 300.0, 30.0),
        ("peak", 1000, 900.0, 120.0),
        ("stress", 5000, 1800.0, 300.0),
        ("soak", 200, 14400.0, 300.0),
    ],
)
def test_ramp_and_hold_presets(name: str, users: int, duration_s: float, ramp_up_s: float) -> None:
    spec = preset_executor(name)
    assert spec.kind == "ramping-vus"
    assert spec.peak() == users
    assert spec.total_duration_s == duration_s
    assert spec.stages == (
        Stage(ramp_up_s, float(users)),
        Stage(duration_s - ramp_up_s, float(users)),
    )
    assert spec.target_at(ramp_up_s / 2) == pytest.approx(1 + (users - 1) / 2)
    assert spec.target_at(duration_s - 1) == users


def test_smoke_is_one_vu_for_30_seconds() -> None:
    spec = preset_executor("smoke")
    assert spec == ExecutorSpec(kind="constant-vus", vus=1, duration_s=30.0)


def test_spike_goes_up_holds_and_comes_down() -> None:
    spec = preset_executor("spike")
    assert spec.kind == "ramping-vus"
    assert spec.stages == (Stage(10.0, 10000.0), Stage(40.0, 10000.0), Stage(10.0, 0.0))
    assert spec.total_duration_s == 60.0
    assert spec.target_at(59.999) < 10


def test_all_presets_are_named_and_described() -> None:
    assert list(PRESETS) == ["smoke", "normal", "peak", "stress", "spike", "soak"]
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.description


def test_scale_multiplies_users_but_keeps_one() -> None:
    assert preset_executor("normal", scale=0.1).peak() == 10
    assert preset_executor("normal", scale=2.5).peak() == 250
    tiny = preset_executor("peak", scale=0.00001)
    assert tiny.peak() == 1
    assert all(stage.target >= 1 for stage in tiny.stages)
    assert preset_executor("smoke", scale=4).vus == 4
    spike = preset_executor("spike", scale=0.001)
    assert [s.target for s in spike.stages] == [10.0, 10.0, 0.0]


def test_duration_keeps_proportions() -> None:
    spec = preset_executor("normal", duration_s=60)
    assert spec.total_duration_s == pytest.approx(60.0)
    assert spec.stages[0].duration_s == pytest.approx(6.0)
    assert spec.stages[1].duration_s == pytest.approx(54.0)
    longer = preset_executor("spike", duration_s=120)
    assert [s.duration_s for s in longer.stages] == pytest.approx([20.0, 80.0, 20.0])
    assert preset_executor("smoke", duration_s=5).duration_s == 5.0


def test_names_are_case_insensitive() -> None:
    assert get_preset(" Normal ").name == "normal"


@pytest.mark.parametrize(("name", "hint"), [("norml", "normal"), ("spik", "spike")])
def test_unknown_preset_lists_names_and_suggests(name: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        preset_executor(name)
    message = info.value.message
    assert f"did you mean '{hint}'?" in message
    assert "smoke, normal, peak, stress, spike, soak" in message
    assert info.value.field == "preset"


def test_unknown_preset_without_suggestion() -> None:
    with pytest.raises(ConfigError, match="expected one of smoke") as info:
        preset_executor("zzzzzz")
    assert "did you mean" not in info.value.message


@pytest.mark.parametrize("scale", [0, -1, math.nan, math.inf, True])
def test_bad_scale(scale: float) -> None:
    with pytest.raises(ConfigError, match="positive number") as info:
        preset_executor("normal", scale=scale)
    assert info.value.field == "scale"


@pytest.mark.parametrize("duration", [0, -5, math.nan])
def test_bad_duration(duration: float) -> None:
    with pytest.raises(ConfigError, match="positive number"):
        preset_executor("normal", duration_s=duration)


def test_scale_open_model_executor() -> None:
    spec = ExecutorSpec(
        kind="ramping-arrival-rate",
        rate=10.0,
        stages=(Stage(10, 100.0), Stage(10, 0.0)),
        pre_allocated_vus=20,
        max_vus=200,
    )
    scaled = scale_executor(spec, 0.5)
    assert scaled.rate == 5.0
    assert [s.target for s in scaled.stages] == [50.0, 0.0]
    assert (scaled.pre_allocated_vus, scaled.max_vus) == (10, 100)


def test_stretch_constant_and_ramping() -> None:
    constant = ExecutorSpec(kind="constant-arrival-rate", rate=5, duration_s=30)
    assert stretch_executor(constant, 90).duration_s == 90
    ramping = ExecutorSpec(kind="ramping-vus", stages=(Stage(10, 5.0), Stage(30, 5.0)))
    assert [s.duration_s for s in stretch_executor(ramping, 20).stages] == [5.0, 15.0]
