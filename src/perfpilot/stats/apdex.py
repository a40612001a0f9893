"""Apdex: one 0..1 score of user satisfaction from a latency histogram.

Method (apdex.org): with a target time ``T``, a request is *satisfied* when it
took at most ``T``, *tolerating* when it took at most ``4T``, *frustrated*
otherwise; the score is ``(satisfied + tolerating / 2) / total``.

On a :class:`~perfpilot.stats.histogram.Histogram` each bucket is classified by
its lower bound: the bucket holding ``T`` (or ``4T``) counts as satisfied (or
tolerating) whole, so durations up to 1.6 % (one bucket width) above the limit
may be counted on the better side, and a duration of exactly ``T`` always is.
"""

from __future__ import annotations

from perfpilot.stats.histogram import Histogram

__all__ = ["apdex"]


def apdex(histogram: Histogram, target_s: float) -> float | None:
    """The Apdex score of the durations in ``histogram`` for target time ``target_s``.

    Args:
        histogram: Request durations, in seconds.
        target_s: The target time ``T`` in seconds (satisfied at or below it).

    Returns:
        The score from 0 (everyone frustrated) to 1 (everyone satisfied), or
        ``None`` when the histogram is empty.

    Raises:
        ValueError: ``target_s`` is not positive.

    Example:
        >>> h = Histogram()
        >>> h.record_many([0.1, 0.1, 1.0, 5.0])
        >>> apdex(h, 0.5)
        0.625
    """
    if not target_s > 0:
        raise ValueError(f"the Apdex target time must be positive, got {target_s!r}")
    total = histogram.count
    if total == 0:
        return None
    satisfied = tolerating = 0
    tolerable_s = 4.0 * target_s
    for lower_s, _upper_s, count in histogram.buckets():
        if lower_s <= target_s:
            satisfied += count
        elif lower_s <= tolerable_s:
            tolerating += count
    return (satisfied + tolerating / 2.0) / total
