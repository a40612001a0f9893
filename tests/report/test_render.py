"""The renderer registry and the terminal, Markdown and JSON renderers."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from perfpilot.analyze.appdata import AppData
from perfpilot.app_records import RequestRow
from perfpilot.errors import UsageError
from perfpilot.report.markdown import cell, fence, text
from perfpilot.report.model import SECTIONS, Report, build_report
from perfpilot.report.render import FORMATS, format_for_path, render
from perfpilot.report.terminal import print_report
from tests.report.sample import (
    EVIL_CODE,
    EVIL_ROUTE,
    T0,
    hist,
    sample_app,
    sample_findings,
    sample_load,
)


def full_report() -> Report:
    return build_report(sample_app(), sample_load(), sample_findings())


def in_order(document: str, parts: list[str]) -> bool:
    positions = [document.index(p) for p in parts]
    return positions == sorted(positions)


def test_registry_names_and_file_extensions() -> None:
    assert FORMATS == ("terminal", "html", "markdown", "json")
    assert format_for_path("out/Report.HTML") == "html"
    assert format_for_path("summary.md") == "markdown"
    assert format_for_path("r.json") == "json"
    assert format_for_path("r.txt") == "terminal"
    assert format_for_path("report") is None
    with pytest.raises(UsageError, match="unknown report format 'pdf'"):
        render(full_report(), "pdf")


def test_json_renderer_is_the_versioned_document() -> None:
    report = full_report()
    document = json.loads(render(report, "json"))
    assert document["format"] == 1
    assert Report.from_dict(document) == report


def test_terminal_shows_the_sections_in_order_with_the_fixes() -> None:
    out = render(full_report(), "terminal")
    assert in_order(out, [f"{i}. {title}" for i, title in enumerate(SECTIONS, start=1)])
    assert "selectinload(Order.items)" in out  # the fix, ready to paste
    assert "✗ fail" in out
    assert "POST /<script>alert(1)</script>" in out  # shown as written
    assert "perfpilot load URL --threshold 'http_req_duration: p(95)<240'" in out
    assert "\x1b[" not in out  # plain text


def test_terminal_escapes_rich_markup_in_names() -> None:
    row = RequestRow("/[bold red]boom[/bold red]", "GET", 2, 5, 0, hist(*[0.01] * 5))
    app = AppData(since=T0, until=T0 + 60, requests=(row,), timeline=((T0, row),))
    buffer = io.StringIO()
    print_report(build_report(app), Console(file=buffer, width=160, color_system=None))
    assert "GET /[bold red]boom[/bold red]" in buffer.getvalue()


def test_markdown_has_the_sections_in_order_and_fenced_fixes() -> None:
    out = render(full_report(), "markdown")
    assert in_order(out, [f"## {i}. {title}" for i, title in enumerate(SECTIONS, start=1)])
    assert f"```python\n{EVIL_CODE}\n```" in out  # verbatim inside the fence
    assert "```sh\nperfpilot load URL --threshold" in out
    assert "| status | check | observed | target | rule |" in out


def test_markdown_escapes_everything_from_outside() -> None:
    out = render(full_report(), "markdown")
    outside_fences = re.sub(r"(`{3,})[^\n]*\n.*?\n\1", "", out, flags=re.DOTALL)
    for raw in (EVIL_ROUTE, "<script>", "<b>views</b>", "<img"):
        assert raw not in outside_fences
    assert "/&lt;script&gt;alert(1)&lt;/script&gt;" in out
    # every row of a table has as many cells as its header, whatever the cells hold
    for table in re.findall(r"(?:^\|.*\n)+", outside_fences, flags=re.MULTILINE):
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(widths) == 1, table


def test_markdown_cell_text_and_fence_helpers() -> None:
    assert cell("a | b\nc") == "a \\| b c"
    assert cell("`rm -rf`") == "\\`rm -rf\\`"
    assert text("<x> & *y*") == "&lt;x&gt; &amp; \\*y\\*"
    assert fence("a ``` b") == "````\na ``` b\n````"
    assert fence("x", "sql").startswith("```sql\n")


def test_renderers_handle_an_empty_report() -> None:
    report = build_report(AppData(since=0.0, until=60.0))
    assert "No problems found." in render(report, "terminal")
    assert "No problems found." in render(report, "markdown")
    assert "No problems found." in render(report, "html")


def test_terminal_and_markdown_show_cache_time_per_route() -> None:
    report = full_report()
    markdown = render(report, "markdown")
    header = next(line for line in markdown.splitlines() if line.startswith("| route"))
    assert [c.strip() for c in header.strip("|").split("|")][5:9] == ["app", "db", "ext", "cache"]
    orders = next(line for line in markdown.splitlines() if line.startswith("| GET /orders"))
    assert [c.strip() for c in orders.strip("|").split("|")][8] == "10.0"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_report(report, console)
    terminal = console.file.getvalue()  # type: ignore[attr-defined]
    lines = terminal.split("Routes by total time")[1].splitlines()
    assert lines[1].split()[5:9] == ["app", "db", "ext", "cache"]
    orders = next(line for line in lines if "GET /orders" in line)
    assert orders.split()[9] == "10.0"
