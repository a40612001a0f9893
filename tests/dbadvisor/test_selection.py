"""Choosing the smallest set of indexes that serve the queries."""

from __future__ import annotations

from perfpilot.dbadvisor.candidates import IndexCandidate
from perfpilot.dbadvisor.selection import Trial, cover, serving

A = IndexCandidate("t", ("a",))
AB = IndexCandidate("t", ("a", "b"))
B = IndexCandidate("t", ("b",))
C = IndexCandidate("t", ("c",))


def test_serving_needs_the_minimum_gain_and_a_cost_near_the_best() -> None:
    trials = [
        Trial(0, A, 100.0, 40.0),  # 60% cheaper but 4x the best: does not serve query 0
        Trial(0, AB, 100.0, 10.0),
        Trial(1, A, 100.0, 5.0),
        Trial(1, AB, 100.0, 5.5),  # within 25% of the best
        Trial(2, C, 100.0, 60.0),  # 40% cheaper: below the minimum gain
    ]
    served = serving(trials)
    assert set(served) == {A, AB}
    assert set(served[AB]) == {0, 1}
    assert set(served[A]) == {1}
    assert serving(trials, min_gain=0.3)[C].keys() == {2}


def test_near_zero_costs_compare_within_a_slack_of_the_cost_before() -> None:
    trials = [Trial(0, A, 10.0, 0.004), Trial(0, AB, 10.0, 0.002)]
    assert set(serving(trials)) == {A, AB}
    assert set(serving(trials, slack=0.0)) == {AB}


def test_cover_picks_the_fewest_indexes_then_the_narrowest() -> None:
    trials = [
        Trial(0, A, 100.0, 1.0),
        Trial(0, AB, 100.0, 1.0),
        Trial(1, AB, 100.0, 1.0),
        Trial(2, B, 100.0, 1.0),
        Trial(3, A, 100.0, 1.0),
        Trial(3, AB, 100.0, 1.1),
    ]
    choices = cover(serving(trials))
    assert [c.candidate for c in choices] == [AB, B]
    assert [t.query for t in choices[0].trials] == [0, 1, 3]
    # with a tie in queries served, fewer columns win
    tied = cover(serving([Trial(0, A, 10.0, 1.0), Trial(0, AB, 10.0, 1.0)]))
    assert [c.candidate for c in tied] == [A]
    assert cover({}) == []


def test_gain_is_never_negative() -> None:
    assert Trial(0, A, 10.0, 20.0).gain == 0.0
    assert Trial(0, A, 0.0, 0.0).gain == 0.0
    assert Trial(0, A, 10.0, 2.5).gain == 0.75
