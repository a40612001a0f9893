"""The Markdown renderer, for pull requests and ``$GITHUB_STEP_SUMMARY``.

GitHub-flavoured Markdown: one table per list, fixes in fenced code blocks.
Text from outside (routes, SQL, paths, titles) is escaped so it shows as
written: Markdown punctuation gets a backslash, ``<``, ``>`` and ``&`` become
entities (GitHub would otherwise treat them as HTML), and table cells also
escape ``|`` and fold newlines. A fence is longer than any run of backticks
inside the code it holds.
"""

from __future__ import annotations

import re

from perfpilot.report import numbers as fmt
from perfpilot.report.model import SECTIONS, Report

_SPECIAL = re.compile(r"([\\`*_\[\]#+!|~])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LANGUAGES = {"python": "python", "sql": "sql", "toml": "toml", "shell": "sh", "text": ""}


def text(value: str) -> str:
    """Escape ``value`` for Markdown inline text (it shows exactly as written)."""
    escaped = _SPECIAL.sub(r"\\\1", value)
    return "".join(_ENTITIES.get(c, c) for c in escaped)


def cell(value: str) -> str:
    """Escape ``value`` for a table cell: as :func:`text`, on one line."""
    return text(" ".join(value.split()))


def fence(code: str, language: str = "") -> str:
    """A fenced code block holding ``code`` verbatim."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{language}\n{code.rstrip()}\n{marks}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    right = "|".join("---" for _ in header)
    lines = ["| " + " | ".join(header) + " |", f"|{right}|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """Render ``report`` as GitHub-flavoured Markdown.

    Args:
        report: The report.

    Returns:
        The document, ending with a newline.
    """
    a = report.assessment
    run = f" · load run {text(report.run_name)}" if report.run_name else ""
    parts = [
        f"# {text(report.title)}",
        f"**{fmt.STATUS_MARKS[a.status]}** · {fmt.utc(report.since)} → "
        f"{fmt.utc(report.until)}{run}",
        *_assessment(report),
        *_bottlenecks(report),
        *_plan(report),
        *_guide(report),
        *_monitoring(report),
    ]
    if report.notes:
        parts.append("\n".join(f"> {text(note)}" for note in report.notes))
    return "\n\n".join(parts) + "\n"


def _heading(index: int) -> str:
    return f"## {index + 1}. {SECTIONS[index]}"


def _assessment(report: Report) -> list[str]:
    a = report.assessment
    side = "client side (load run)" if a.source == "load" else "server side (in-app)"
    rows = [
        [
            fmt.STATUS_MARKS[c.status],
            cell(c.label),
            fmt.check_value(c, c.observed),
            fmt.check_value(c, c.target),
            cell(c.rule),
        ]
        for c in a.checks
    ]
    return [
        _heading(0),
        f"{a.requests:,} requests over {fmt.seconds(a.duration_s)}, {side}: "
        f"p50 {fmt.ms(a.p50_ms)} ms, p95 {fmt.ms(a.p95_ms)} ms, p99 {fmt.ms(a.p99_ms)} ms.",
        _table(["status", "check", "observed", "target", "rule"], rows),
    ]


def _bottlenecks(report: Report) -> list[str]:
    b = report.bottlenecks
    root = fmt.source_root(report)
    parts = [_heading(1)]
    if not b.routes:
        parts.append("No requests in this window.")
    else:
        rows = []
        for r in b.routes[:15]:
            known = r.split_known
            rows.append(
                [
                    cell(r.label), f"{r.requests:,}", f"{r.errors:,}", fmt.ms(r.p95_ms),
                    fmt.ms(r.mean_ms), fmt.ms(r.app_ms) if known else "-",
                    fmt.ms(r.db_ms) if known else "-", fmt.ms(r.outbound_ms) if known else "-",
                    fmt.ms(r.cache_ms) if known else "-",
                    fmt.percent(r.share), f"{r.queries_per_request:.1f}" if known else "-",
                ]
            )  # fmt: skip
        parts.append("**Routes by total time** (mean ms per request: app, db, outbound, cache)")
        header = ["route", "req", "err", "p95 ms", "mean ms", "app", "db", "ext", "cache", "share",
                  "q/req"]  # fmt: skip
        parts.append(_table(header, rows))
    if b.queries:
        rows = [
            [
                cell(q.sql), f"{q.calls:,}", fmt.seconds(q.total_s), fmt.ms(q.p95_ms),
                fmt.percent(q.share),
                cell(" < ".join(fmt.frames(q.call_site, root)) if q.call_site else "-"),
            ]
            for q in b.queries[:10]
        ]  # fmt: skip
        parts.append("**Queries by total time**")
        if root:
            parts.append(
                f"Call sites: innermost frame first (< reads called from), under {text(root)}"
            )
        parts.append(_table(["query", "calls", "total", "p95 ms", "share", "call site"], rows))
    if b.outbound:
        rows = [
            [
                cell(o.label), f"{o.calls:,}", fmt.ms(o.p95_ms), fmt.seconds(o.total_s),
                fmt.usd(o.cost_usd), fmt.usd(o.cost_per_hour_usd), f"{o.repeated:,}",
            ]
            for o in b.outbound[:10]
        ]  # fmt: skip
        parts.append("**Outbound calls**")
        header = ["call", "calls", "p95 ms", "total", "cost", "cost/h", "repeated"]
        parts.append(_table(header, rows))
    if b.caches:
        rows = [
            [cell(c.cache), f"{c.hits:,}", f"{c.misses:,}", fmt.percent(c.hit_rate)]
            for c in b.caches
        ]
        parts.append("**Caches**")
        parts.append(_table(["cache", "hits", "misses", "hit rate"], rows))
    return parts


def _plan(report: Report) -> list[str]:
    if not report.findings:
        return [_heading(2), "No problems found."]
    rows = [
        [
            str(i),
            f.severity,
            cell(f.title),
            fmt.seconds(f.impact.time_s_per_hour) if f.impact.time_s_per_hour else "-",
            fmt.usd(f.impact.usd_per_hour) if f.impact.usd_per_hour else "-",
            f"{f.confidence:.0%}",
        ]
        for i, f in enumerate(report.findings, start=1)
    ]
    header = ["#", "severity", "finding", "server time saved/h", "saved $/h", "confidence"]
    return [_heading(2), _table(header, rows)]


def _guide(report: Report) -> list[str]:
    parts = [_heading(3)]
    root = fmt.source_root(report)
    if not report.findings:
        parts.append("Nothing to change.")
    elif root:
        parts.append(f"File paths are relative to {text(root)}")
    for i, finding in enumerate(report.findings, start=1):
        fix = finding.fix
        parts.append(f"### {i}. {text(finding.title)}")
        lines = [text(fix.summary)]
        if fix.location:
            lines.append(f"*Where:* {text(fmt.site_text(fix.location, root))}")
        if finding.impact.note:
            lines.append(f"*Estimate:* {text(finding.impact.note)}")
        parts.append("  \n".join(lines))
        if fix.code:
            parts.append(fence(fix.code, _LANGUAGES.get(fix.language, "")))
    return parts


def _monitoring(report: Report) -> list[str]:
    m = report.monitoring
    parts = [_heading(4)]
    if not m.rules and not m.budgets:
        parts.append("No baseline to derive alerts from (no requests).")
        return parts
    if m.rules:
        rows = [
            [
                r.severity, cell(r.scope), cell(r.condition), fmt.duration_words(r.for_s),
                cell(r.rationale),
            ]
            for r in m.rules
        ]  # fmt: skip
        parts.append("**Alert rules**")
        parts.append(_table(["severity", "scope", "condition", "for", "why"], rows))
    if m.budgets:
        rows = [
            [
                cell(b.metric), cell(b.scope), fmt.amount(b.limit, b.unit),
                fmt.amount(b.baseline, b.unit), cell(b.rationale),
            ]
            for b in m.budgets
        ]  # fmt: skip
        parts.append("**Budgets**")
        parts.append(_table(["budget", "scope", "limit", "observed", "why"], rows))
    command = m.load_command()
    if command:
        parts.append("Check the budgets in CI:")
        parts.append(fence(command, "sh"))
    return parts
