"""The injectable clock.

Components take ``clock=`` so tests can drive time with :class:`FakeClock`
instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What perfpilot needs to know about time."""

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for measuring durations."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds on ``time.perf_counter``."""
        return time.perf_counter()


class FakeClock:
    """A clock that moves only when told to.

    Args:
        start: The initial wall-clock time, in seconds since the epoch.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 0.0

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        return self._wall

    def monotonic(self) -> float:
        """Monotonic seconds since the clock was made."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._wall += seconds
        self._mono += seconds


SYSTEM_CLOCK = SystemClock()
