import math

import numpy as np
import pytest

from perfpilot.stats.trend import linear_trend


def test_exact_line() -> None:
    trend = linear_trend([0, 1, 2, 3], [1, 3, 5, 7])
    assert (trend.slope, trend.intercept, trend.r_squared) == (2.0, 1.0, 1.0)
    assert trend.t_stat == math.inf
    assert trend.change == 6.0


def test_noisy_line_matches_numpy_and_the_textbook_error() -> None:
    rng = np.random.default_rng(4)
    x = np.arange(50.0)
    y = 3 + 0.5 * x + rng.normal(0, 2, 50)
    trend = linear_trend(list(x), list(y))
    slope, intercept = np.polyfit(x, y, 1)
    assert trend.slope == pytest.approx(slope)
    assert trend.intercept == pytest.approx(intercept)
    residuals = y - (intercept + slope * x)
    stderr = math.sqrt((residuals @ residuals) / 48 / ((x - x.mean()) @ (x - x.mean())))
    assert trend.slope_stderr == pytest.approx(stderr)
    assert trend.t_stat > 10


def test_flat_noise_has_a_small_t() -> None:
    rng = np.random.default_rng(5)
    trend = linear_trend(list(range(40)), list(rng.normal(100, 1, 40)))
    assert abs(trend.t_stat) < 3


def test_degenerate_inputs() -> None:
    assert linear_trend([], []).t_stat == 0.0
    assert linear_trend([1.0], [5.0]).intercept == 5.0
    assert linear_trend([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]).t_stat == 0.0
    assert linear_trend([0.0, 1.0], [0.0, 1.0]).t_stat == 0.0  # no error estimate
    with pytest.raises(ValueError, match="length"):
        linear_trend([1.0], [1.0, 2.0])
