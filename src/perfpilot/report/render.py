"""Renderers chosen by name: ``render(report, "html")``.

Each renderer is a function from a :class:`~perfpilot.report.model.Report` to
text, imported only when it is used (the HTML renderer needs Jinja2 and the
Plotly JavaScript; the others do not).

Example:
    >>> from perfpilot.analyze.appdata import AppData
    >>> from perfpilot.report.model import build_report
    >>> render(build_report(AppData(since=0.0, until=60.0)), "json")[:14]
    '{\\n "format": 1'
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from perfpilot.errors import UsageError
from perfpilot.report.model import Report

Renderer = Callable[[Report], str]


def _terminal(report: Report) -> str:
    from perfpilot.report.terminal import render_text

    return render_text(report)


def _html(report: Report) -> str:
    from perfpilot.report.html import render_html

    return render_html(report)


def _markdown(report: Report) -> str:
    from perfpilot.report.markdown import render_markdown

    return render_markdown(report)


def _json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n"


#: Renderer names and the functions behind them.
RENDERERS: Mapping[str, Renderer] = {
    "terminal": _terminal,
    "html": _html,
    "markdown": _markdown,
    "json": _json,
}

#: Renderer names, for command-line choices.
FORMATS = tuple(RENDERERS)

#: Output file extensions and the renderer each implies.
EXTENSIONS: Mapping[str, str] = {
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".txt": "terminal",
}


def render(report: Report, name: str) -> str:
    """Render ``report`` with the renderer called ``name``.

    Args:
        report: The report.
        name: One of :data:`RENDERERS` (``terminal`` gives plain text).

    Returns:
        The rendered document.

    Raises:
        UsageError: There is no renderer called ``name``.
    """
    renderer = RENDERERS.get(name)
    if renderer is None:
        known = ", ".join(RENDERERS)
        raise UsageError(f"unknown report format {name!r} (expected one of {known})")
    return renderer(report)


def format_for_path(path: str | os.PathLike[str]) -> str | None:
    """The renderer an output file's extension implies, or ``None`` when it implies none."""
    _, extension = os.path.splitext(os.fspath(path))
    return EXTENSIONS.get(extension.lower())
