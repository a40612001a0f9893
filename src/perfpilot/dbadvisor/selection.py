"""Choosing the indexes to recommend from what-if trials (pure functions).

A candidate *serves* a query when, with it, the query's cost drops by at least
``min_gain`` (50% by default) and is within ``near_best`` (25%) of the lowest
cost any candidate gives that query, or within ``slack`` (1%) of the query's
cost before: a one-column index that halves a query's cost does not serve it
when a two-column one cuts it tenfold. Then a greedy
set cover picks the fewest indexes serving every query some candidate serves:
each round takes the candidate serving the most queries not yet served,
breaking ties by fewer columns (less to write and store), then by the larger
saving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from perfpilot.dbadvisor.candidates import IndexCandidate


@dataclasses.dataclass(frozen=True)
class Trial:
    """One query costed with one candidate.

    Attributes:
        query: The query's position in the workload.
        candidate: The index tried.
        before: The query's cost with the existing indexes.
        after: Its cost with the candidate (the baseline when unused).
    """

    query: int
    candidate: IndexCandidate
    before: float
    after: float

    @property
    def gain(self) -> float:
        """Fraction of the cost the candidate removes (0 when none)."""
        if self.before <= 0:
            return 0.0
        return max(0.0, 1.0 - self.after / self.before)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One recommended index and the trials of the queries it serves."""

    candidate: IndexCandidate
    trials: tuple[Trial, ...]


def serving(
    trials: Iterable[Trial],
    *,
    min_gain: float = 0.5,
    near_best: float = 0.25,
    slack: float = 0.01,
) -> dict[IndexCandidate, dict[int, Trial]]:
    """Which queries each candidate serves (see the module docstring).

    Args:
        trials: Every trial run.
        min_gain: The smallest cost drop that counts, as a fraction.
        near_best: How far above a query's best cost a candidate may be and
            still serve it, as a fraction of that best cost.
        slack: Or how far above, as a fraction of the query's cost before:
            near zero, relative differences are noise (0.004 ms against
            0.002 ms), and both candidates remove nearly all the cost.

    Returns:
        For each candidate serving at least one query: query -> trial.
    """
    trials = list(trials)
    best: dict[int, float] = {}
    for trial in trials:
        if trial.gain >= min_gain:
            best[trial.query] = min(best.get(trial.query, trial.after), trial.after)
    served: dict[IndexCandidate, dict[int, Trial]] = {}
    for trial in trials:
        if trial.gain < min_gain:
            continue
        shortfall = trial.after - best[trial.query]
        if shortfall <= near_best * best[trial.query] or shortfall <= slack * trial.before:
            served.setdefault(trial.candidate, {})[trial.query] = trial
    return served


def cover(served: Mapping[IndexCandidate, Mapping[int, Trial]]) -> list[Choice]:
    """The fewest candidates serving every query that some candidate serves.

    Greedy set cover (within a factor ln n of the optimum; exact on the small
    overlaps real workloads have). Each query is assigned to the first chosen
    candidate serving it.

    Returns:
        The choices in the order picked.
    """
    remaining = {q for queries in served.values() for q in queries}
    choices: list[Choice] = []
    while remaining:
        left = frozenset(remaining)
        pick = min(served, key=lambda c: _merit(served[c], c, left))
        mine = tuple(t for q, t in sorted(served[pick].items()) if q in remaining)
        if not mine:  # cannot happen: every remaining query has a server
            break
        choices.append(Choice(pick, mine))
        remaining -= {t.query for t in mine}
    return choices


def _merit(
    trials: Mapping[int, Trial], candidate: IndexCandidate, remaining: frozenset[int]
) -> tuple[int, int, float, IndexCandidate]:
    """Sort key of a candidate in one round: most queries served, fewest columns,
    largest saving, then by name (so ties break the same way every run)."""
    mine = [t for q, t in trials.items() if q in remaining]
    saving = sum(t.before - t.after for t in mine)
    return (-len(mine), candidate.width, -saving, candidate)
