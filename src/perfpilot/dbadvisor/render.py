"""Rendering the database advisor's findings: terminal (rich), JSON, Markdown, HTML.

The same renderers serve ``perfpilot db advise`` and ``perfpilot db health``:
they take :class:`~perfpilot.analyze.findings.Finding` objects and, for
``advise``, the per-query outcomes. HTML is the report package's page
(:func:`perfpilot.report.database.findings_report`): the findings fill its
Optimization Plan and Implementation Guide, the advice's summary is a note.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from perfpilot.analyze.findings import FINDING_FORMAT, Finding
from perfpilot.dbadvisor.advisor import Advice

#: Output formats, by name.
FORMATS = ("terminal", "json", "markdown", "html")

#: Width of the terminal format written to a file.
TEXT_WIDTH = 110

_COLORS = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def render(
    findings: Sequence[Finding],
    fmt: str,
    console: Console,
    *,
    title: str,
    database: str,
    advice: Advice | None = None,
) -> None:
    """Print ``findings`` in format ``fmt`` (one of :data:`FORMATS`).

    Args:
        findings: What to show.
        fmt: ``terminal``, ``json``, ``markdown`` or ``html``.
        console: Where to print.
        title: A heading (``Index advice``, ``Database health``).
        database: The database, password already removed.
        advice: The advisor's result, for the per-query table.
    """
    if fmt == "html":
        text = to_text(findings, fmt, title=title, database=database, advice=advice)
        console.file.write(text)
    elif fmt == "json":
        console.print_json(json.dumps(to_json(findings, database=database, advice=advice)))
    elif fmt == "markdown":
        text = to_markdown(findings, title=title, database=database, advice=advice)
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    else:
        _terminal(findings, console, title=title, database=database, advice=advice)


def to_text(
    findings: Sequence[Finding],
    fmt: str,
    *,
    title: str,
    database: str,
    advice: Advice | None = None,
    generated_at: float | None = None,
) -> str:
    """The document in format ``fmt`` as text, for a file.

    Args:
        findings: What to show.
        fmt: One of :data:`FORMATS`; ``terminal`` is plain text, 110 columns.
        title: A heading (``Index advice``, ``Database health``).
        database: The database, password already removed.
        advice: The advisor's result, for the per-query table and summary.
        generated_at: When the findings were made (now when ``None``), for HTML.
    """
    if fmt == "html":
        from perfpilot.report.database import findings_report
        from perfpilot.report.render import render as render_report

        report = findings_report(
            findings,
            title=f"{title}: {database}",
            database=database,
            generated_at=time.time() if generated_at is None else generated_at,
            notes=() if advice is None else (advice.summary(),),
        )
        return render_report(report, "html")
    if fmt == "json":
        document = to_json(findings, database=database, advice=advice)
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return to_markdown(findings, title=title, database=database, advice=advice) + "\n"
    buffer = io.StringIO()
    console = Console(file=buffer, width=TEXT_WIDTH, no_color=True, highlight=False)
    _terminal(findings, console, title=title, database=database, advice=advice)
    return buffer.getvalue()


def to_json(
    findings: Sequence[Finding], *, database: str, advice: Advice | None = None
) -> dict[str, Any]:
    """The JSON document: format version, database, findings, and per-query outcomes."""
    document: dict[str, Any] = {
        "format": FINDING_FORMAT,
        "database": database,
        "findings": [f.to_dict() for f in findings],
    }
    if advice is not None:
        document["cost_unit"] = advice.unit
        document["source"] = advice.source
        document["queries"] = [o.to_dict() for o in advice.outcomes]
    return document


def to_markdown(
    findings: Sequence[Finding], *, title: str, database: str, advice: Advice | None = None
) -> str:
    """A Markdown document: one section per finding, then the per-query table."""
    lines = [f"# {title}", "", f"Database: `{database}`", ""]
    if not findings:
        lines += ["No findings.", ""]
    for finding in findings:
        lines += [f"## {finding.title}", ""]
        lines.append(
            f"*{finding.kind}*, severity **{finding.severity}**, "
            f"confidence {finding.confidence:.0%}, subject `{finding.subject}`"
        )
        lines.append("")
        for key, value in _evidence_lines(finding):
            lines.append(f"- {key}: {value}")
        lines += ["", f"**Fix.** {finding.fix.summary}", ""]
        if finding.fix.code:
            lines += [f"```{finding.fix.language}", finding.fix.code, "```", ""]
    if advice is not None and advice.outcomes:
        lines += [
            "## Queries",
            "",
            f"| status | {advice.unit} | query | why |",
            "|---|---|---|---|",
        ]
        for outcome in advice.outcomes:
            cost = "" if outcome.before is None else f"{outcome.before.cost:.4g}"
            sql = outcome.query.sql.replace("|", "\\|")
            if len(sql) > 100:
                sql = sql[:99] + "…"
            lines.append(f"| {outcome.status} | {cost} | `{sql}` | {outcome.reason} |")
        lines.append("")
    return "\n".join(lines)


def _evidence_lines(finding: Finding) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in finding.evidence.items():
        if key == "queries" and isinstance(value, list):
            for item in value:
                out.append(
                    (
                        f"query {item.get('fingerprint', '')}",
                        f"{item.get('cost_before')} → {item.get('cost_after')} "
                        f"({float(item.get('gain', 0)):.0%} less, values {item.get('values')}): "
                        f"`{item.get('sql')}`",
                    )
                )
        elif value not in (None, [], ""):
            out.append((key, str(value)))
    return out


def _terminal(
    findings: Sequence[Finding],
    console: Console,
    *,
    title: str,
    database: str,
    advice: Advice | None,
) -> None:
    console.print(f"[bold]{escape(title)}[/bold] for {escape(database)}")
    if not findings:
        console.print("No findings.")
    for number, finding in enumerate(findings, start=1):
        color = _COLORS.get(finding.severity, "")
        console.print()
        console.print(
            f"[{color}]{number}. \\[{finding.severity}][/{color}] "
            f"[bold]{escape(finding.title)}[/bold]"
            f"  [dim](confidence {finding.confidence:.0%})[/dim]"
        )
        for key, value in _evidence_lines(finding):
            console.print(f"   [dim]{escape(key)}:[/dim] {escape(value)}", soft_wrap=True)
        console.print(f"   [green]fix:[/green] {escape(finding.fix.summary)}")
        if finding.fix.code:
            console.print(Syntax(finding.fix.code, finding.fix.language, word_wrap=True))
    if advice is not None and advice.outcomes:
        console.print()
        table = Table(title="Queries", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        table.add_column("status", no_wrap=True)
        table.add_column(advice.unit, justify="right", no_wrap=True)
        table.add_column("after", justify="right", no_wrap=True)
        table.add_column("query", overflow="fold", ratio=2)
        table.add_column("why", overflow="fold", ratio=1)
        for outcome in advice.outcomes:
            before = "" if outcome.before is None else f"{outcome.before.cost:.4g}"
            after = "" if outcome.after is None else f"{outcome.after:.4g}"
            table.add_row(
                outcome.status, before, after, escape(outcome.query.sql), escape(outcome.reason)
            )
        console.print(table)
