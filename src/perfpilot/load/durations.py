"""Durations as people write them: ``30s``, ``4m30s``, ``1h``, ``250ms``, ``1.5s``.

A duration is one or more ``<number><unit>`` parts, largest unit first by
convention (not enforced), with units ``h``, ``m``, ``s``, ``ms``, ``us``
(or ``µs``) and ``ns``. A plain number, or a string holding only a number,
is seconds. The result is always a ``float`` number of seconds.

Example:
    >>> parse_duration("4m30s")
    270.0
    >>> parse_duration("250ms")
    0.25
    >>> parse_duration(2)
    2.0
    >>> format_duration(270.0)
    '4m30s'
"""

from __future__ import annotations

import math
import re

from perfpilot.errors import ConfigError

UNIT_SECONDS: dict[str, float] = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,  # GREEK SMALL LETTER MU, which some keyboards produce instead of MICRO SIGN
    "ns": 1e-9,
}

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_PART = re.compile(rf"({_NUMBER})\s*(ms|us|µs|μs|ns|h|m|s)")
_PLAIN = re.compile(_NUMBER)

EXPECTED = "expected a duration such as 30s, 4m30s, 1h, 250ms or a number of seconds"


def parse_duration(
    value: object,
    *,
    field: str | None = None,
    path: str | None = None,
    line: int | None = None,
) -> float:
    """Parse a duration into seconds.

    Args:
        value: A string such as ``"4m30s"``, or an ``int``/``float`` of seconds.
        field: The name of the setting, for the error message.
        path: The file the value comes from, for the error message.
        line: The line the value is on, for the error message.

    Returns:
        The duration in seconds; never negative, NaN or infinite.

    Raises:
        ConfigError: ``value`` is not a duration (wrong type, unknown unit,
            negative, not finite).

    Example:
        >>> parse_duration("1.5s")
        1.5
    """

    def fail(detail: str) -> ConfigError:
        return ConfigError(f"{detail}; {EXPECTED}", path=path, line=line, field=field)

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(f"got {type(value).__name__} {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise fail(f"got {value!r}")
        if seconds < 0:
            raise fail(f"negative duration {value!r}")
        return seconds
    text = value.strip()
    if not text:
        raise fail("got an empty string")
    if text.startswith("-"):
        raise fail(f"negative duration {value!r}")
    if text.startswith("+"):
        text = text[1:].lstrip()
    if _PLAIN.fullmatch(text):
        seconds = float(text)
        if not math.isfinite(seconds):
            raise fail(f"got {value!r}")
        return seconds
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise fail(f"cannot read {value!r} at {text[pos:]!r}")
        total += float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not math.isfinite(total):
        raise fail(f"got {value!r}")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way :func:`parse_duration` reads them.

    Whole seconds print as ``1h2m3s``; anything shorter than a second or
    with a fraction prints with the largest unit that keeps it readable
    (``250ms``, ``1.5s``).

    Args:
        seconds: A non-negative duration.

    Returns:
        A short string such as ``4m30s``, ``250ms`` or ``0s``.
    """
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.6g}us"
    if seconds < 1:
        return f"{seconds * 1e3:.6g}ms"
    if seconds != int(seconds):
        return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs:
        parts.append(f"{secs}s")
    return "".join(parts)
