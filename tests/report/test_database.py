"""The database's findings in a report: findings only, and merged into a window's report."""

from __future__ import annotations

from typing import Any

from perfpilot.analyze.findings import Finding, Fix, Impact
from perfpilot.report.database import findings_report, superseded, with_database_findings
from perfpilot.report.model import build_report
from perfpilot.report.render import render
from tests.report.sample import sample_app


def finding(
    fid: str, kind: str, severity: str = "medium", rate: float = 0.0, **evidence: Any
) -> Finding:
    return Finding(
        fid,
        kind,
        severity,
        f"title of {fid}",
        fid,
        evidence,
        Impact(time_per_request_s=0.01, requests_per_s=rate),
        Fix(f"fix {fid}", "SELECT 1;", "sql"),
    )


def test_findings_report_keeps_the_order_and_has_no_data_sections() -> None:
    hint = finding("h", "function_on_column", "high", fingerprint="f2")
    index = finding("i", "missing_index", "low", queries=[{"fingerprint": "f1"}])
    report = findings_report(
        [index, hint],
        title="Index advice: shop.db",
        database="shop.db",
        generated_at=1e9,
        notes=["Index advice on 2 statement(s)."],
    )
    assert [f.id for f in report.findings] == ["i", "h"]  # not re-ranked: the hint stays second
    assert report.assessment.requests == 0 and not report.timelines
    assert report.notes == (
        "Database: shop.db. The report holds its findings only: no requests were read.",
        "Index advice on 2 statement(s).",
    )
    page = render(report, "html")
    body = page.split('<script type="application/json"', 1)[0]
    assert "No requests in this window: nothing to assess." in body
    assert "No requests were read, so no finding is ranked" in body
    assert 'class="chart' not in body
    assert body.index("title of i") < body.index("title of h")
    assert "→" not in body.split("</header>")[0]  # no window to show: only when it was made
    assert render(report, "markdown").count("title of") >= 2


def test_the_advisor_replaces_in_app_guesses_on_the_statements_it_costed() -> None:
    app = [
        finding("a1", "missing_index", fingerprint="f1"),
        finding("a2", "slow_query", fingerprint="f2"),
        finding("a3", "slow_query", fingerprint="f9"),  # not costed: stays
        finding("a4", "n_plus_one", fingerprint="f1"),  # another problem: stays
        finding("a5", "select_star", fingerprint="f3"),
        finding("a6", "unbounded_result", fingerprint="f4"),
    ]
    db = [
        finding("d1", "missing_index", queries=[{"fingerprint": "f1"}, {"fingerprint": "f7"}]),
        finding("d2", "no_index_helps", fingerprint="f2"),
        finding("d3", "select_star", fingerprint="f3"),  # said already by the detector
        finding("d4", "unbounded_select", fingerprint="f4"),  # likewise
        finding("d5", "select_star", fingerprint="f8"),  # new
        finding("d6", "unused_index", subject="posts.x"),
    ]
    assert superseded(app, db) == {"a1", "a2", "d3", "d4"}
    # a statement the app recorded, judged by the detectors and not reported:
    # their verdict (real rows and time) stands over the hint's (text only)
    assert superseded(app, db, observed={"f8"}) == {"a1", "a2", "d3", "d4", "d5"}
    assert superseded(app, db, observed={"f9"}) == {"a1", "a2", "d3", "d4"}


def test_with_database_findings_merges_ranks_and_notes() -> None:
    report = build_report(
        sample_app(), findings=[finding("a1", "slow_query", rate=1.0, fingerprint="f1")]
    )
    db = [
        finding("d1", "missing_index", rate=5.0, queries=[{"fingerprint": "f1"}]),
        finding("d2", "unused_index", "low"),
    ]
    merged = with_database_findings(
        report, db, database="postgresql://app@db/shop", notes=["Index advice on 1 statement(s)."]
    )
    assert [f.id for f in merged.findings] == ["d1", "d2"]  # ranked: d1 saves the most
    assert merged.notes[-2:] == (
        "Database postgresql://app@db/shop: 2 finding(s) from the index advisor, query hints and "
        "health checks; 1 in-app finding(s) replaced by the advisor's costed ones.",
        "Index advice on 1 statement(s).",
    )
    assert merged.notes[: len(report.notes)] == report.notes
    unchanged = with_database_findings(report, [], database="x.db")
    assert [f.id for f in unchanged.findings] == ["a1"]
