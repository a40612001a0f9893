import json

import pytest

from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id, rank
from perfpilot.app_records import Span, Trace


def make(
    kind: str, time_s: float = 0.0, rate: float = 0.0, usd: float = 0.0, severity: str = "medium"
) -> Finding:
    return Finding(
        id=finding_id(kind, "GET /x"),
        kind=kind,
        severity=severity,
        title=f"{kind} on GET /x",
        subject="GET /x",
        evidence={"count": 3},
        impact=Impact(time_per_request_s=time_s, requests_per_s=rate, usd_per_request=usd),
        fix=Fix("do less", code="SELECT 1", language="sql", location="app.py:3"),
    )


def test_round_trip_through_json_keeps_everything() -> None:
    trace = Trace(
        1.0, "/x", "GET", 200, 0.5, ("slow",), (Span("db", "SELECT ?", 0.1, 0.2, {"rows": 3}),)
    )
    finding = dataclasses_replace(make("n_plus_one", 0.1, 2.0), trace=trace)
    again = Finding.from_dict(json.loads(json.dumps(finding.to_dict())))
    assert again == finding
    assert finding.to_dict()["impact"]["time_s_per_hour"] == pytest.approx(720.0)


def dataclasses_replace(f: Finding, **kw: object) -> Finding:
    import dataclasses

    return dataclasses.replace(f, **kw)  # type: ignore[arg-type]


def test_ids_are_stable_and_distinct() -> None:
    assert finding_id("slow_query", "a") == finding_id("slow_query", "a")
    assert finding_id("slow_query", "a") != finding_id("slow_query", "b")
    assert finding_id("slow_query", "a", "b") != finding_id("slow_query", "ab")


def test_rank_orders_by_time_and_money() -> None:
    small = make("a", time_s=0.001, rate=1.0)
    big = make("b", time_s=0.1, rate=1.0)
    costly = make("c", usd=0.01, rate=1.0)  # 36 $/h weighs more than 360 s/h
    none_high = make("d", severity="high")
    none_low = make("e", severity="low")
    assert [f.kind for f in rank([small, none_low, big, none_high, costly])] == [
        "c",
        "b",
        "a",
        "d",
        "e",
    ]


def test_bad_severity_and_confidence_are_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "k", "urgent", "t", "s", {}, Impact(), Fix("f"))
    with pytest.raises(ValueError, match="confidence"):
        Finding("x", "k", "low", "t", "s", {}, Impact(), Fix("f"), confidence=1.5)
