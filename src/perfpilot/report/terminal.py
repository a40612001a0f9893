"""The terminal renderer: the five report sections as rich tables and syntax-highlighted fixes.

:func:`print_report` prints to a rich :class:`~rich.console.Console` (colours
when it is a terminal); :func:`render_text` returns the same as plain text.
Every string from outside (routes, SQL, paths) is escaped from rich markup.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from perfpilot.analyze.findings import Finding
from perfpilot.report import numbers as fmt
from perfpilot.report.model import SECTIONS, Report

_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "info": "dim"}
_SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
_LEXERS = {"python": "python", "sql": "sql", "toml": "toml", "shell": "bash", "text": "text"}


def render_text(report: Report, *, width: int = 110) -> str:
    """The terminal rendering as plain text (no colours), e.g. for ``-o report.txt``."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    print_report(report, console)
    return buffer.getvalue()


def print_report(report: Report, console: Console) -> None:
    """Print the report's five sections to ``console``."""
    status = report.assessment.status
    console.print(
        Text.assemble(
            (report.title, "bold"),
            "  ",
            (fmt.STATUS_MARKS[status], _STATUS_STYLE[status]),
        )
    )
    window = f"{fmt.utc(report.since)} → {fmt.utc(report.until)}"
    run = f"; load run {escape(report.run_name)!s}" if report.run_name else ""
    console.print(f"[dim]{window}{run}[/dim]")
    _assessment(report, console)
    _bottlenecks(report, console)
    _plan(report, console)
    _guide(report, console)
    _monitoring(report, console)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def _section(console: Console, index: int) -> None:
    console.print()
    console.rule(f"[bold]{index + 1}. {SECTIONS[index]}[/bold]", align="left")


def _table(columns: Sequence[str], left: Collection[str], title: str | None = None) -> Table:
    """A table with ``columns``: those in ``left`` left-justified, the others (numbers) right."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    return table


def _assessment(report: Report, console: Console) -> None:
    _section(console, 0)
    a = report.assessment
    side = "client side (load run)" if a.source == "load" else "server side (in-app)"
    console.print(
        f"{a.requests:,} requests over {fmt.seconds(a.duration_s)}, {side}: "
        f"p50 {fmt.ms(a.p50_ms)} ms, p95 {fmt.ms(a.p95_ms)} ms, p99 {fmt.ms(a.p99_ms)} ms"
    )
    table = _table(
        ("status", "check", "observed", "target", "rule"), left=("status", "check", "rule")
    )
    for check in a.checks:
        table.add_row(
            Text(fmt.STATUS_MARKS[check.status], style=_STATUS_STYLE[check.status]),
            escape(check.label),
            fmt.check_value(check, check.observed),
            fmt.check_value(check, check.target),
            escape(check.rule),
        )
    console.print(table)


def _bottlenecks(report: Report, console: Console) -> None:
    _section(console, 1)
    b = report.bottlenecks
    root = fmt.source_root(report)
    if not b.routes:
        console.print("No requests in this window.")
    else:
        table = _table(
            ("route", "req", "err", "p95", "mean", "app", "db", "ext", "cache", "share", "q/req"),
            left=("route",),
            title="Routes by total time (mean ms per request split into app, db, outbound, cache)",
        )
        for r in b.routes[:15]:
            table.add_row(
                escape(r.label), f"{r.requests:,}", f"{r.errors:,}", fmt.ms(r.p95_ms),
                fmt.ms(r.mean_ms), fmt.ms(r.app_ms) if r.split_known else "-",
                fmt.ms(r.db_ms) if r.split_known else "-",
                fmt.ms(r.outbound_ms) if r.split_known else "-",
                fmt.ms(r.cache_ms) if r.split_known else "-", fmt.percent(r.share),
                f"{r.queries_per_request:.1f}" if r.split_known else "-",
            )  # fmt: skip
        console.print(table)
    if b.queries:
        table = _table(
            ("query", "calls", "total", "p95 ms", "share", "call site"),
            left=("query", "call site"),
            title="Queries by total time",
        )
        for q in b.queries[:5]:
            sql = q.sql if len(q.sql) <= 70 else q.sql[:69] + "…"
            table.add_row(
                escape(sql), f"{q.calls:,}", fmt.seconds(q.total_s), fmt.ms(q.p95_ms),
                fmt.percent(q.share), escape(_site(q.call_site, root)),
            )  # fmt: skip
        console.print(table)
        if root:
            console.print(
                f"[dim]call sites (innermost first, < reads called from) under {escape(root)}[/dim]"
            )
    if b.outbound:
        table = _table(
            ("call", "calls", "p95 ms", "total", "cost", "cost/h", "repeated"),
            left=("call",),
            title="Outbound calls",
        )
        for o in b.outbound[:10]:
            table.add_row(
                escape(o.label), f"{o.calls:,}", fmt.ms(o.p95_ms), fmt.seconds(o.total_s),
                fmt.usd(o.cost_usd), fmt.usd(o.cost_per_hour_usd), f"{o.repeated:,}",
            )  # fmt: skip
        console.print(table)
    if b.caches:
        table = _table(("cache", "hits", "misses", "hit rate"), left=("cache",), title="Caches")
        for c in b.caches:
            table.add_row(escape(c.cache), f"{c.hits:,}", f"{c.misses:,}", fmt.percent(c.hit_rate))
        console.print(table)


def _plan(report: Report, console: Console) -> None:
    _section(console, 2)
    if not report.findings:
        console.print("[green]No problems found.[/green]")
        return
    table = _table(
        ("#", "severity", "finding", "saves/h", "$/h", "conf."), left=("severity", "finding")
    )
    for i, f in enumerate(report.findings, start=1):
        table.add_row(
            str(i),
            Text(f.severity, style=_SEVERITY_STYLE[f.severity]),
            escape(f.title),
            fmt.seconds(f.impact.time_s_per_hour) if f.impact.time_s_per_hour else "-",
            fmt.usd(f.impact.usd_per_hour) if f.impact.usd_per_hour else "-",
            f"{f.confidence:.0%}",
        )
    console.print(table)


def _guide(report: Report, console: Console) -> None:
    _section(console, 3)
    if not report.findings:
        console.print("Nothing to change.")
        return
    root = fmt.source_root(report)
    if root:
        console.print(f"[dim]file paths are relative to {escape(root)}[/dim]")
    for i, finding in enumerate(report.findings, start=1):
        _fix(console, i, finding, root)


def _site(site: str | None, root: str) -> str:
    return " < ".join(fmt.frames(site, root)) if site else "-"


def _fix(console: Console, index: int, finding: Finding, root: str) -> None:
    fix = finding.fix
    console.print(Text.assemble((f"{index}. ", "bold"), (finding.title, "bold")))
    console.print(Text(fix.summary))
    if fix.location:
        console.print(Text.assemble(("   where: ", "dim"), fmt.site_text(fix.location, root)))
    if finding.impact.note:
        console.print(Text.assemble(("   estimate: ", "dim"), finding.impact.note))
    if fix.code:
        lexer = _LEXERS.get(fix.language, "text")
        console.print(Syntax(fix.code, lexer, theme="ansi_dark", word_wrap=True, padding=(0, 2)))
    console.print()


def _monitoring(report: Report, console: Console) -> None:
    _section(console, 4)
    m = report.monitoring
    if not m.rules and not m.budgets:
        console.print("No baseline to derive alerts from (no requests).")
        return
    if m.rules:
        columns = ("severity", "scope", "condition", "for", "why")
        table = _table(columns, left=columns, title="Alert rules")
        for r in m.rules:
            table.add_row(
                r.severity, escape(r.scope), escape(r.condition), fmt.duration_words(r.for_s),
                escape(r.rationale),
            )  # fmt: skip
        console.print(table)
    if m.budgets:
        table = _table(
            ("budget", "scope", "limit", "observed"), left=("budget", "scope"), title="Budgets"
        )
        for b in m.budgets:
            table.add_row(
                escape(b.metric), escape(b.scope), fmt.amount(b.limit, b.unit),
                fmt.amount(b.baseline, b.unit),
            )  # fmt: skip
        console.print(table)
    command = m.load_command()
    if command:
        console.print("Check the budgets in CI:")
        console.print(Text(f"  {command}"))
