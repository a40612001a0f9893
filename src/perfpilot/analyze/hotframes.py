"""A route's hot frames, from the stack samples of the in-app sampler.

Each :class:`~perfpilot.app_records.ProfileRow` counts samples of one route
whose innermost application frames were ``stack`` (innermost first, up to
three, ``file:line function`` joined by `` < ``) while ``via`` (a library
frame, or nothing) was executing. Per application function this module sums:

* **self**: samples with the function as the innermost application frame
  (its own code, or the libraries it called directly, was running);
* **total**: samples with the function among the innermost application
  frames (itself or an application function it called).

Shares are of all the route's samples, including those with no application
frame on the stack (framework or library code only, shown as ``<library>``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from perfpilot.app_records import NO_APP_FRAME, ProfileRow

#: The key under which the sampler folds keys past its bounds.
OTHER = "<other>"
_SELF_WEIGHT = 1_000_000


@dataclasses.dataclass(frozen=True)
class HotFrame:
    """One application function's part of a route's samples.

    Attributes:
        function: Qualified function name (``create_app.<locals>.stats_similar``),
            or ``<library>`` for samples with no application frame.
        file: Source file ("" for ``<library>``).
        line: The function's line most often executing in the samples.
        self_share: Share (0..1) of the route's samples with the function as
            the innermost application frame.
        total_share: Share with the function among the innermost application
            frames.
        via: The library frame most often executing under it
            (``json/encoder.py:258 iterencode``), or ``None`` when mostly its
            own code ran.
    """

    function: str
    file: str
    line: int
    self_share: float
    total_share: float
    via: str | None = None

    @property
    def location(self) -> str | None:
        """``file:line``, or ``None`` for ``<library>``."""
        return f"{self.file}:{self.line}" if self.file else None

    @property
    def frame(self) -> str:
        """``file:line function``, as the sampler names frames."""
        return f"{self.location} {self.function}" if self.file else self.function

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (shares rounded to 0.001)."""
        return {
            "frame": self.frame,
            "function": self.function,
            "location": self.location,
            "self_share": round(self.self_share, 3),
            "total_share": round(self.total_share, 3),
            "via": self.via,
        }


def parse_frame(text: str) -> tuple[str, int, str]:
    """``file:line function`` as ``(file, line, function)``.

    Raises:
        ValueError: The text is not in that form.
    """
    location, _, function = text.rpartition(" ")
    file, _, line = location.rpartition(":")
    if not file or not function:
        raise ValueError(f"not a frame: {text!r}")
    return file, int(line), function


def route_samples(profiles: Iterable[ProfileRow], route: str) -> int:
    """All samples of ``route``."""
    return sum(row.samples for row in profiles if row.route == route)


def hot_frames(profiles: Iterable[ProfileRow], route: str, limit: int = 5) -> list[HotFrame]:
    """The functions with the largest self share of ``route``'s samples, then
    those that only called them (self share 0, by total share).

    Args:
        profiles: Stack samples (any routes).
        route: The route template.
        limit: The most functions to return.

    Returns:
        Up to ``limit`` functions, largest self share first (ties: total
        share, then name); ``<library>`` among them when it ranks.
    """
    total = 0
    self_counts: dict[tuple[str, str], int] = {}
    total_counts: dict[tuple[str, str], int] = {}
    lines: dict[tuple[str, str], dict[int, int]] = {}
    vias: dict[tuple[str, str], dict[str, int]] = {}
    for row in profiles:
        if row.route != route:
            continue
        total += row.samples
        if row.stack == OTHER:
            continue
        if row.stack == NO_APP_FRAME:
            frames = [("", 0, NO_APP_FRAME)]
        else:
            try:
                frames = [parse_frame(part) for part in row.stack.split(" < ")]
            except ValueError:
                continue
        seen: set[tuple[str, str]] = set()
        for i, (file, line, function) in enumerate(frames):
            key = (file, function)
            per_line = lines.setdefault(key, {})
            # the lines it executed itself outweigh the lines it called from
            per_line[line] = per_line.get(line, 0) + row.samples * (1 if i else _SELF_WEIGHT)
            if i == 0:
                self_counts[key] = self_counts.get(key, 0) + row.samples
                per_via = vias.setdefault(key, {})
                per_via[row.via] = per_via.get(row.via, 0) + row.samples
            if key not in seen:
                seen.add(key)
                total_counts[key] = total_counts.get(key, 0) + row.samples
    if not total:
        return []
    found = [
        HotFrame(
            function=function,
            file=file,
            line=_most(lines[(file, function)]),
            self_share=self_counts.get((file, function), 0) / total,
            total_share=n / total,
            via=(_most(vias[(file, function)]) or None) if (file, function) in vias else None,
        )
        for (file, function), n in total_counts.items()
    ]
    found.sort(key=lambda f: (-f.self_share, -f.total_share, f.function, f.file))
    return found[:limit]


def _most(counts: dict[Any, int]) -> Any:
    """The key with the largest count (ties: the smallest key)."""
    return min(counts, key=lambda k: (-counts[k], k))
