"""The HTML renderer: one self-contained file that works offline.

The page is a Jinja2 template (``templates/report.html.j2``) with autoescape
on, so every string from outside (routes, SQL, paths, headers, evidence) is
escaped where it is written. Plotly's JavaScript is inlined from the Python
``plotly`` package, and the chart figures (:mod:`perfpilot.report.charts`) are
embedded as JSON in a ``<script type="application/json">`` element, escaped
for it by :func:`script_json`. A Content-Security-Policy forbids any network
access and any script but the page's own.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

from perfpilot.errors import UsageError
from perfpilot.report import numbers as fmt
from perfpilot.report.charts import charts
from perfpilot.report.model import SECTIONS, Report

_TEMPLATES = Path(__file__).parent / "templates"
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` are written as ``\\u`` escapes, so no ``</script>``
    or ``<!--`` can end or confuse the element, and U+2028/U+2029 too, which
    older JavaScript parsers take as line ends. Non-finite numbers become
    ``null`` (JSON has no NaN).
    """
    text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_ESCAPES)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@cache
def plotly_js() -> str:
    """The minified Plotly JavaScript shipped in the Python ``plotly`` package.

    Raises:
        UsageError: The ``plotly`` package is not installed.
    """
    spec = importlib.util.find_spec("plotly")
    locations = None if spec is None else spec.submodule_search_locations
    path = None if not locations else Path(locations[0]) / "package_data" / "plotly.min.js"
    if path is None or not path.is_file():
        raise UsageError("the HTML report needs the plotly package: pip install plotly")
    # Never true of the shipped bundle, but an inline script must not contain its end tag.
    return _SCRIPT_END.sub(r"<\\/\1", path.read_text(encoding="utf-8"))


def render_html(report: Report) -> str:
    """Render ``report`` as one self-contained HTML page.

    Args:
        report: The report.

    Returns:
        The page.

    Raises:
        UsageError: Jinja2 or plotly is not installed.
    """
    try:
        import jinja2
        from markupsafe import Markup
    except ImportError:  # pragma: no cover - both are dependencies
        raise UsageError("the HTML report needs Jinja2: pip install jinja2") from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=fmt.ms,
        seconds=fmt.seconds,
        usd=fmt.usd,
        percent=fmt.percent,
        rate=fmt.rate,
        utc=fmt.utc,
        duration=fmt.duration_words,
        pretty=_pretty,
    )
    root = fmt.source_root(report)
    env.filters["frames"] = lambda site: fmt.frames(site, root)
    env.globals.update(
        check_value=fmt.check_value, amount=fmt.amount, marks=fmt.STATUS_MARKS, root=root
    )
    figures = charts(report)
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        sections=SECTIONS,
        chart_ids={figure["id"] for figure in figures},
        chart_titles={figure["id"]: figure["title"] for figure in figures},
        data_json=Markup(script_json({"charts": figures})),
        plotly_js=Markup(plotly_js()),
        ci_command=report.monitoring.load_command(),
    )


def _pretty(value: Any) -> str:
    """An evidence value as text: strings as they are, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, ensure_ascii=False, default=str)
