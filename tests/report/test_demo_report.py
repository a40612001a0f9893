"""``perfpilot demo`` ends with the HTML report and the top findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfpilot.cli.main import main

pytestmark = pytest.mark.integration


def test_demo_writes_the_html_report_and_prints_the_top_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "demo"
    code = main(["demo", "-d", "4s", "--work-dir", str(work), "--store", str(tmp_path / "pp.db")])
    out = capsys.readouterr().out
    assert code == 0
    report = work / "report.html"
    assert f"report: {report}" in out
    page = report.read_text(encoding="utf-8")
    assert "Performance report: demo" in page
    assert 'id="chart-breakdown"' in page
    after = out[out.index(f"report: {report}") :]
    assert "\n  1. " in after  # the seeded problems are found and listed, five at most
    assert "\n  6. " not in after
