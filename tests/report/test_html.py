"""The HTML report: one self-contained page, everything from outside escaped."""

from __future__ import annotations

import html
import json
import re

import pytest

from perfpilot.errors import UsageError
from perfpilot.report import html as html_renderer
from perfpilot.report.html import plotly_js, render_html, script_json
from perfpilot.report.model import SECTIONS, build_report
from tests.report.sample import (
    EVIL_CODE,
    EVIL_HEADER,
    EVIL_PATH,
    EVIL_ROUTE,
    EVIL_SQL,
    sample_app,
    sample_findings,
    sample_load,
)


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(build_report(sample_app(), sample_load(), sample_findings()))


def without_plotly(page: str) -> str:
    return page.replace(plotly_js(), "")


def embedded_data(page: str) -> dict[str, object]:
    match = re.search(
        r'<script type="application/json" id="perfpilot-data">(.*?)</script>', page, re.S
    )
    assert match is not None
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_page_is_self_contained(page: str) -> None:
    assert plotly_js() in page  # the bundle is inlined
    assert len(plotly_js()) > 1_000_000
    rest = without_plotly(page)
    assert not re.search(r"<script[^>]*\bsrc=", rest, re.I)
    assert not re.search(r"<link\b", rest, re.I)
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", rest, re.I)
    assert "default-src 'none'" in rest  # the CSP forbids any network access


def test_every_chart_has_a_div_and_a_figure(page: str) -> None:
    data = embedded_data(page)
    ids = [c["id"] for c in data["charts"]]  # type: ignore[attr-defined]
    assert ids == ["latency", "throughput", "distribution", "routes", "breakdown", "outbound"]
    for chart_id in ids:
        assert f'id="chart-{chart_id}"' in page


def test_sections_appear_in_order(page: str) -> None:
    positions = [page.index(f"{i}. {title}</h2>") for i, title in enumerate(SECTIONS, start=1)]
    assert positions == sorted(positions)


def test_nothing_from_outside_appears_unescaped(page: str) -> None:
    rest = without_plotly(page)
    for raw in (EVIL_ROUTE, EVIL_SQL, EVIL_HEADER, EVIL_PATH, "<script>alert", "<img", "<b>views"):
        assert raw not in rest, raw
    # exactly the page's own three script elements
    assert len(re.findall(r"<script\b", rest, re.I)) == 3
    assert len(re.findall(r"</script", rest, re.I)) == 3
    # and the strings are there, escaped, in the tables, the guide and the evidence
    assert html.escape(EVIL_ROUTE, quote=False) in rest
    assert html.escape(EVIL_SQL, quote=False).replace("'", "&#39;") in rest
    assert html.escape(EVIL_PATH, quote=False) in rest
    assert html.escape(EVIL_CODE, quote=False) in rest  # the fix, verbatim once unescaped
    assert "{{ 7*7 }}" in rest  # data is never evaluated as a template


def test_names_in_chart_data_are_shown_verbatim_by_plotly(page: str) -> None:
    data = embedded_data(page)
    routes = next(c for c in data["charts"] if c["id"] == "routes")  # type: ignore[attr-defined]
    labels = routes["data"][0]["y"]
    assert f"POST {html.escape(EVIL_ROUTE, quote=False)}" in labels  # Plotly decodes entities


def test_script_json_escapes_what_could_end_or_confuse_a_script() -> None:
    value = {"a": "</script><!-- & \u2028\u2029 >", "n": float("nan"), "i": [float("inf")]}
    text = script_json(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029", "NaN", "Infinity"):
        assert bad not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028\u2029 >", "n": None, "i": [None]}


def test_missing_plotly_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    plotly_js.cache_clear()
    monkeypatch.setattr(html_renderer.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(UsageError, match="pip install plotly"):
            plotly_js()
    finally:
        plotly_js.cache_clear()


def test_the_breakdown_shows_cache_time(page: str) -> None:
    data = embedded_data(page)
    (chart,) = [c for c in data["charts"] if c["id"] == "breakdown"]  # type: ignore[attr-defined]
    bars = {trace["name"]: trace for trace in chart["data"]}
    assert list(bars) == ["app", "database", "outbound", "cache"]
    orders = bars["cache"]["y"].index("GET /orders")
    assert bars["cache"]["x"][orders] == pytest.approx(10.0)
    assert "cache" in chart["title"]
    table = page[page.index("<h3>Routes by total time</h3>") :]
    table = table[: table.index("</table>")]
    assert '<th class="num">cache</th>' in table
    assert "counted, not timed" not in page
