"""The HTML report in a real browser: headless Chromium (Debian's), driven by Playwright.

Charts render, nothing goes to the network, no console or page errors; a
screenshot is saved as a test artifact under tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from perfpilot.report.charts import charts
from perfpilot.report.model import build_report
from perfpilot.report.render import render
from tests.report.sample import EVIL_ROUTE, sample_app, sample_findings, sample_load

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("Debian's chromium is not installed (sudo apt-get install chromium)")
    pytest.fail("chromium is missing: run 'bash scripts/system-deps.sh test' (make test does)")


def test_report_renders_its_charts_in_chromium_without_errors(tmp_path: Path) -> None:
    from playwright.sync_api import ConsoleMessage, Request, sync_playwright

    report = build_report(sample_app(), sample_load(), sample_findings())
    expected = [figure["id"] for figure in charts(report)]
    assert len(expected) == 6
    page_file = tmp_path / "report.html"
    page_file.write_text(render(report, "html"), encoding="utf-8")

    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    problems.append(f"console: {message.text}")

            def on_request(request: Request) -> None:
                requests.append(request.url)

            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("request", on_request)
            page.goto(page_file.as_uri(), wait_until="load")
            for chart_id in expected:
                page.wait_for_selector(f"#chart-{chart_id} .plot-container svg.main-svg")
            rendered = page.evaluate(
                "Array.from(document.querySelectorAll('.chart'))"
                ".filter(d => d.querySelector('.plot-container svg'))"
                ".map(d => d.id)"
            )
            bars = page.locator("#chart-routes .bars path").count()
            title = page.title()
            body_text = page.evaluate("document.body.innerText")
            ticks = page.evaluate(
                "Array.from(document.querySelectorAll('#chart-routes .ytick text'))"
                ".map(t => t.textContent)"
            )
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1400, "height": height})
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            # each plot stays inside its card, at the full-page size the
            # screenshot shows: no chart drawn over the next one
            overflows = page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).filter(d => {"
                " const svg = d.querySelector('svg.main-svg');"
                " return svg && svg.getBoundingClientRect().bottom"
                "  > d.getBoundingClientRect().bottom + 1; }).map(d => d.id)"
            )
        finally:
            browser.close()

    assert rendered == [f"chart-{chart_id}" for chart_id in expected]
    assert overflows == []
    assert bars == 3  # one bar per route
    assert title == report.title
    # names from outside are shown as written, in the tables and on the chart axes
    assert f"POST {EVIL_ROUTE}" in body_text
    assert f"POST {EVIL_ROUTE}" in ticks
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert shot.stat().st_size > 10_000
