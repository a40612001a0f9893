"""One model for every diagnosis: what is wrong, the evidence, what it costs, the fix.

Detectors (N+1 queries, slow queries, repeated outbound calls, the database
advisor...) all return :class:`Finding` objects, so reports rank and render them
the same way. A finding's impact is an estimate of what the problem costs per
affected request times how often such requests arrive; ranking uses server
seconds per hour plus money, with one dollar counted as one server hour
(see :func:`impact_score`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from perfpilot.app_records import Span, Trace

#: Severities, most severe first.
SEVERITIES = ("critical", "high", "medium", "low", "info")

#: Finding format version, stored in JSON output.
FINDING_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Impact:
    """What a problem costs, and so what fixing it would save.

    Attributes:
        time_per_request_s: Time the problem adds to each affected request.
        requests_per_s: How often affected requests arrive (0 when unknown).
        usd_per_request: Money the problem costs per affected request.
        note: How the estimate was made, in one line.
    """

    time_per_request_s: float = 0.0
    requests_per_s: float = 0.0
    usd_per_request: float = 0.0
    note: str = ""

    @property
    def time_s_per_hour(self) -> float:
        """Server seconds the problem costs per hour at the observed rate."""
        return self.time_per_request_s * self.requests_per_s * 3600.0

    @property
    def usd_per_hour(self) -> float:
        """Money the problem costs per hour at the observed rate."""
        return self.usd_per_request * self.requests_per_s * 3600.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the derived per-hour figures."""
        return {
            "time_per_request_s": self.time_per_request_s,
            "requests_per_s": self.requests_per_s,
            "usd_per_request": self.usd_per_request,
            "time_s_per_hour": self.time_s_per_hour,
            "usd_per_hour": self.usd_per_hour,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Impact:
        """Inverse of :meth:`to_dict` (derived figures are recomputed)."""
        return cls(
            time_per_request_s=float(data.get("time_per_request_s", 0.0)),
            requests_per_s=float(data.get("requests_per_s", 0.0)),
            usd_per_request=float(data.get("usd_per_request", 0.0)),
            note=str(data.get("note", "")),
        )


@dataclasses.dataclass(frozen=True)
class Fix:
    """The change that removes a problem.

    Attributes:
        summary: One sentence: what to change.
        code: Ready-to-paste code, SQL or config ("" when there is none).
        language: Language of ``code`` for highlighting: ``sql``, ``python``,
            ``toml``, ``shell`` or ``text``.
        location: ``file:line`` where the change goes, when known.
    """

    summary: str
    code: str = ""
    language: str = "text"
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fix:
        """Inverse of :meth:`to_dict`."""
        location = data.get("location")
        return cls(
            summary=str(data["summary"]),
            code=str(data.get("code", "")),
            language=str(data.get("language", "text")),
            location=None if location is None else str(location),
        )


@dataclasses.dataclass(frozen=True)
class Finding:
    """One diagnosed problem.

    Attributes:
        id: Stable identifier (see :func:`finding_id`): the same problem found
            in two runs has the same id.
        kind: Detector name, e.g. ``n_plus_one``, ``slow_query``,
            ``missing_index``.
        severity: One of :data:`SEVERITIES`.
        title: One line a person reads first.
        subject: What the finding is about: a route, a query fingerprint, a
            host and path template, a table.
        evidence: The numbers behind the finding, JSON-ready (counts, times in
            fields named with their unit).
        impact: Estimated cost of the problem.
        fix: The change to make.
        confidence: 0 to 1: how sure the detector is that the fix helps.
        trace: A sample request showing the problem, when one was kept.
    """

    id: str
    kind: str
    severity: str
    title: str
    subject: str
    evidence: Mapping[str, Any]
    impact: Impact
    fix: Fix
    confidence: float = 0.8
    trace: Trace | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            allowed = ", ".join(SEVERITIES)
            raise ValueError(f"severity must be one of {allowed}, not {self.severity!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be between 0 and 1, not {self.confidence!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "subject": self.subject,
            "evidence": dict(self.evidence),
            "impact": self.impact.to_dict(),
            "fix": self.fix.to_dict(),
            "confidence": self.confidence,
            "trace": None if self.trace is None else trace_to_dict(self.trace),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        trace = data.get("trace")
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            severity=str(data["severity"]),
            title=str(data["title"]),
            subject=str(data["subject"]),
            evidence=dict(data.get("evidence", {})),
            impact=Impact.from_dict(data.get("impact", {})),
            fix=Fix.from_dict(data["fix"]),
            confidence=float(data.get("confidence", 0.8)),
            trace=None if trace is None else trace_from_dict(trace),
        )


def finding_id(kind: str, *subject: str) -> str:
    """A stable id: the kind and a short hash of what the finding is about."""
    digest = hashlib.sha1("\x1f".join(subject).encode(), usedforsecurity=False).hexdigest()
    return f"{kind}:{digest[:10]}"


def impact_score(finding: Finding) -> float:
    """Ranking key: server seconds per hour plus dollars per hour times 3600
    (one dollar weighs as much as one server hour), then severity breaks ties."""
    return finding.impact.time_s_per_hour + finding.impact.usd_per_hour * 3600.0


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Findings ordered by estimated impact, most costly first; findings with
    no measurable impact follow, by severity."""
    order = {name: i for i, name in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (-impact_score(f), order[f.severity], f.kind, f.subject))


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    """JSON-ready form of a trace."""
    return dataclasses.asdict(trace)


def trace_from_dict(data: Mapping[str, Any]) -> Trace:
    """Inverse of :func:`trace_to_dict`."""
    return Trace(
        at=float(data["at"]),
        route=str(data["route"]),
        method=str(data["method"]),
        status=int(data["status"]),
        duration_s=float(data["duration_s"]),
        reasons=tuple(data.get("reasons", ())),
        spans=tuple(
            Span(
                kind=str(s["kind"]),
                name=str(s["name"]),
                start_s=float(s["start_s"]),
                duration_s=float(s["duration_s"]),
                detail=dict(s.get("detail", {})),
            )
            for s in data.get("spans", ())
        ),
        spans_dropped=int(data.get("spans_dropped", 0)),
    )
