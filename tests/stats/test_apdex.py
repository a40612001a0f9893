"""Apdex from a histogram."""

from __future__ import annotations

import pytest

from perfpilot.stats.apdex import apdex
from perfpilot.stats.histogram import Histogram


def test_satisfied_tolerating_and_frustrated_requests_count_1_half_and_0() -> None:
    h = Histogram()
    h.record_many([0.1] * 6 + [1.0] * 2 + [5.0] * 2)  # T = 0.5 s: 6 satisfied, 2 tolerating
    assert apdex(h, 0.5) == pytest.approx((6 + 2 / 2) / 10)


def test_boundaries_are_inclusive_within_the_histogram_resolution() -> None:
    h = Histogram()
    h.record_many([0.5, 2.0])  # exactly T and exactly 4T
    assert apdex(h, 0.5) == pytest.approx(0.75)


def test_empty_histogram_has_no_score_and_target_must_be_positive() -> None:
    assert apdex(Histogram(), 0.5) is None
    with pytest.raises(ValueError, match="positive"):
        apdex(Histogram(), 0.0)
