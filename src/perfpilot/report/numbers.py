"""How every report renderer writes figures, so the terminal, Markdown and HTML agree."""

from __future__ import annotations

import datetime
import math
import posixpath
from typing import TYPE_CHECKING

from perfpilot.report.assessment import HealthCheck

if TYPE_CHECKING:
    from perfpilot.report.model import Report

#: A short mark per check status.
STATUS_MARKS = {"pass": "✓ pass", "warn": "! warn", "fail": "✗ fail", "info": "· info"}


def ms(value: float) -> str:
    """Milliseconds with precision that suits their size: ``1,234``, ``56.7``, ``0.89``."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def seconds(value: float) -> str:
    """A duration in seconds, minutes or hours."""
    if value < 60:
        return f"{value:.1f} s" if value < 10 else f"{value:,.0f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:,.1f} h"


def usd(value: float) -> str:
    """US dollars: cents for large amounts, significant digits for tiny ones."""
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) >= 0.01:
        return f"${value:.3f}"
    digits = 1 - math.floor(math.log10(abs(value)))  # two significant digits, no exponent
    return f"${value:.{digits}f}"


def percent(value: float) -> str:
    """A 0..1 share as a percentage."""
    return f"{value:.1%}" if value >= 0.001 or value == 0 else f"{value:.3%}"


def rate(value: float) -> str:
    """Requests per second."""
    return f"{value:,.1f}/s" if value >= 10 else f"{value:.2f}/s"


def check_value(check: HealthCheck, value: float | None) -> str:
    """A health check's observed or target value in its unit."""
    if value is None or check.unit in ("ms", "ratio", "score", "req/s"):
        return amount(value, check.unit)
    return f"{value:g}"


def amount(value: float | None, unit: str) -> str:
    """A rule's or budget's value in its unit (``ms``, ``ratio``, ``usd``, ``usd/h``,
    ``bytes``, ``req/s``, ``score``, or a count such as ``queries``)."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{ms(value)} ms"
    if unit == "ratio":
        return percent(value)
    if unit == "usd":
        return usd(value)
    if unit == "usd/h":
        return f"{usd(value)}/h"
    if unit == "bytes":
        return f"{value / 2**20:,.0f} MiB"
    if unit == "req/s":
        return rate(value)
    if unit == "score":
        return f"{value:.2f}"
    if value == 1 and unit.endswith("s"):
        unit = unit.removesuffix("ies") + "y" if unit.endswith("ies") else unit[:-1]
    return f"{value:,.4g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def utc(timestamp: float) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_words(value_s: float) -> str:
    """A rule's ``for`` or window duration: ``5m``, ``1h``, ``90s``."""
    whole = round(value_s)
    if whole and whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def source_root(report: Report) -> str:
    """The directory (with a final ``/``) every file named in the report's call sites
    and fix locations is under, or "" when they share none: renderers show the
    paths below it and say it once.

    Call sites are ``file:line`` frames, innermost first, joined by ``" < "``
    (read "called from"); only ``/``-separated absolute paths are shortened.
    """
    sites = [q.call_site for q in report.bottlenecks.queries]
    sites += [f.fix.location for f in report.findings]
    files = [frame.rpartition(":")[0] for site in sites if site for frame in site.split(" < ")]
    if not files or not all(f.startswith("/") for f in files):
        return ""
    root = posixpath.commonpath([posixpath.dirname(f) for f in files])
    return "" if root == "/" else root + "/"


def frames(site: str, root: str = "") -> list[str]:
    """A call site's ``file:line`` frames, innermost first, with ``root`` left out."""
    return [frame.removeprefix(root) if root else frame for frame in site.split(" < ")]


def site_text(site: str, root: str = "") -> str:
    """A call site in words: ``app.py:219, called from app.py:345``."""
    return ", called from ".join(frames(site, root))
