"""Linear trends: is a series going up, how fast, and how sure can we be?

Used for memory growth (RSS over time): an ordinary least-squares line with the
standard error of its slope, so a trend is called only when the slope is many
standard errors away from zero, not merely positive.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Trend:
    """A least-squares line ``y = intercept + slope * x`` and how well it fits.

    Attributes:
        n: Points fitted.
        slope: Change of ``y`` per unit of ``x``.
        intercept: ``y`` at ``x = 0``.
        slope_stderr: Standard error of the slope (``inf`` with fewer than 3
            points or no spread in ``x``).
        r_squared: Share of the variance of ``y`` the line explains (0..1).
        x_span: ``max(x) - min(x)``.
    """

    n: int
    slope: float
    intercept: float
    slope_stderr: float
    r_squared: float
    x_span: float

    @property
    def t_stat(self) -> float:
        """The slope in standard errors (0 when the error is infinite; ``inf``
        for a perfect fit with a non-zero slope)."""
        if math.isinf(self.slope_stderr):
            return 0.0
        if self.slope_stderr == 0.0:
            return math.inf if self.slope else 0.0
        return self.slope / self.slope_stderr

    @property
    def change(self) -> float:
        """Fitted change of ``y`` over the span of ``x`` (``slope * x_span``)."""
        return self.slope * self.x_span


def linear_trend(x: Sequence[float], y: Sequence[float]) -> Trend:
    """Fit ``y = a + b x`` by ordinary least squares.

    The slope's standard error is ``sqrt(SSE / (n - 2) / Sxx)``, the textbook
    formula under independent errors; for autocorrelated series (memory
    samples) it is optimistic, so callers require a large t and a large change.

    Args:
        x: Abscissae (e.g. seconds).
        y: Ordinates (e.g. MiB), as many as ``x``.

    Returns:
        The fitted :class:`Trend`; a flat line with infinite error for fewer
        than two points or no spread in ``x``.

    Raises:
        ValueError: ``x`` and ``y`` differ in length.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} != {len(y)})")
    n = len(x)
    if n < 2:
        return Trend(n, 0.0, float(y[0]) if n else 0.0, math.inf, 0.0, 0.0)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    x_mean = float(xs.mean())
    y_mean = float(ys.mean())
    dx = xs - x_mean
    dy = ys - y_mean
    sxx = float(dx @ dx)
    span = float(xs.max() - xs.min())
    if sxx == 0.0:
        return Trend(n, 0.0, y_mean, math.inf, 0.0, span)
    slope = float(dx @ dy) / sxx
    intercept = y_mean - slope * x_mean
    residuals = dy - slope * dx
    sse = float(residuals @ residuals)
    syy = float(dy @ dy)
    r_squared = 1.0 - sse / syy if syy > 0 else 1.0
    stderr = math.sqrt(sse / (n - 2) / sxx) if n > 2 else math.inf
    return Trend(n, slope, intercept, stderr, max(0.0, r_squared), span)
