"""The one :class:`Report` model that every renderer draws, and the pure function that builds it.

A report has five sections, always in this order (:data:`SECTIONS`):

1. **Performance Assessment**: health at a glance against :class:`Targets`.
2. **Bottleneck Identification**: routes by total time with their time split,
   the costliest queries, outbound cost, cache hit rates.
3. **Optimization Plan**: the findings, ranked by estimated impact.
4. **Implementation Guide**: the fix of each finding, ready to paste.
5. **Monitoring Strategy**: alert rules and budgets from the observed baselines.

It also carries the series the charts need (timelines, the latency
distribution). :meth:`Report.to_dict` is versioned (``"format": 1``) and
:meth:`Report.from_dict` reads it back to an equal report.

Example:
    >>> from perfpilot.analyze.appdata import AppData
    >>> report = build_report(AppData(since=0.0, until=60.0))
    >>> report.to_dict()["format"]
    1
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.findings import Finding, rank
from perfpilot.errors import ConfigError
from perfpilot.records import LoadResult
from perfpilot.report.assessment import Assessment, Targets, assess, headline
from perfpilot.report.bottlenecks import Bottlenecks, find_bottlenecks
from perfpilot.report.series import (
    Distribution,
    Timeline,
    app_timeline,
    latency_distribution,
    load_timeline,
)
from perfpilot.report.strategy import MonitoringStrategy, monitoring_strategy

#: Version of :meth:`Report.to_dict`'s output.
REPORT_FORMAT = 1
#: ``kind`` of a report document, so other perfpilot JSON is not mistaken for one.
REPORT_KIND = "perfpilot.report"
#: Section titles, in the order every renderer shows them.
SECTIONS = (
    "Performance Assessment",
    "Bottleneck Identification",
    "Optimization Plan",
    "Implementation Guide",
    "Monitoring Strategy",
)


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything a performance report says.

    Attributes:
        title: The report's title.
        service: The service, or ``None`` for every service in the store.
        since: Start of the window, Unix time.
        until: End of the window, Unix time.
        generated_at: When the report was built, Unix time.
        run_name: The load run's name, when the report covers one.
        targets: The targets the assessment judged against.
        assessment: Section 1.
        bottlenecks: Section 2.
        findings: Section 3, ranked (most costly first); their fixes are section 4.
        monitoring: Section 5.
        distribution: The latency distribution.
        timelines: Series for the over-time charts (client side first).
        notes: Caveats about the data (dropped items, missing sources).
    """

    title: str
    service: str | None
    since: float
    until: float
    generated_at: float
    run_name: str | None
    targets: Targets
    assessment: Assessment
    bottlenecks: Bottlenecks
    findings: tuple[Finding, ...]
    monitoring: MonitoringStrategy
    distribution: Distribution
    timelines: tuple[Timeline, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document, sections in report order.

        ``optimization_plan`` holds the full findings with their rank;
        ``implementation_guide`` repeats each fix beside its finding's id and
        title, for readers that want only the changes.
        """
        return {
            "format": REPORT_FORMAT,
            "kind": REPORT_KIND,
            "title": self.title,
            "service": self.service,
            "since": self.since,
            "until": self.until,
            "generated_at": self.generated_at,
            "run_name": self.run_name,
            "targets": self.targets.to_dict(),
            "assessment": self.assessment.to_dict(),
            "bottlenecks": self.bottlenecks.to_dict(),
            "optimization_plan": [
                {"rank": i, **f.to_dict()} for i, f in enumerate(self.findings, start=1)
            ],
            "implementation_guide": [
                {"finding": f.id, "title": f.title, "fix": f.fix.to_dict()} for f in self.findings
            ],
            "monitoring": self.monitoring.to_dict(),
            "charts": {
                "timelines": [t.to_dict() for t in self.timelines],
                "distribution": self.distribution.to_dict(),
            },
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Report:
        """Inverse of :meth:`to_dict`.

        Args:
            data: A parsed report document.
            source: The file it came from, for error messages.

        Raises:
            ConfigError: ``data`` is not a perfpilot report of a known format.
        """
        if not isinstance(data, Mapping) or data.get("kind") != REPORT_KIND:
            raise ConfigError("not a perfpilot report", path=source)
        if data.get("format") != REPORT_FORMAT:
            raise ConfigError(
                f"unsupported report format {data.get('format')!r} "
                f"(this perfpilot reads {REPORT_FORMAT})",
                path=source,
            )
        try:
            charts = data.get("charts", {})
            return cls(
                title=str(data["title"]),
                service=None if data.get("service") is None else str(data["service"]),
                since=float(data["since"]),
                until=float(data["until"]),
                generated_at=float(data["generated_at"]),
                run_name=None if data.get("run_name") is None else str(data["run_name"]),
                targets=Targets.from_dict(data.get("targets", {})),
                assessment=Assessment.from_dict(data["assessment"]),
                bottlenecks=Bottlenecks.from_dict(data.get("bottlenecks", {})),
                findings=tuple(Finding.from_dict(f) for f in data.get("optimization_plan", ())),
                monitoring=MonitoringStrategy.from_dict(data.get("monitoring", {})),
                timelines=tuple(Timeline.from_dict(t) for t in charts.get("timelines", ())),
                distribution=Distribution.from_dict(charts.get("distribution", {"source": "app"})),
                notes=tuple(str(n) for n in data.get("notes", ())),
            )
        except ConfigError as exc:
            raise ConfigError(exc.message, path=source) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed report: {exc!r}", path=source) from None


def build_report(
    app: AppData,
    load: LoadResult | None = None,
    findings: Iterable[Finding] = (),
    targets: Targets | None = None,
    *,
    title: str | None = None,
    generated_at: float | None = None,
) -> Report:
    """Build a report from one window's data and its findings. Pure: no I/O.

    Args:
        app: In-app data of the window.
        load: The load run over the window, when there was one: the assessment
            and the first timeline are then what its clients saw.
        findings: The diagnosis (:func:`perfpilot.analyze.diagnose.diagnose`);
            ranked again here, so any order will do.
        targets: What healthy means; :class:`Targets` defaults when ``None``.
        title: The title; derived from the service or the run when ``None``.
        generated_at: When the report is made; the end of the window when ``None``
            (so the same input always gives the same report).

    Returns:
        The report.
    """
    goals = targets or Targets()
    figures = headline(app, load)
    assessment = assess(app, load, goals, figures)
    bottlenecks = find_bottlenecks(app, load)
    timelines = []
    if load is not None:
        timelines.append(load_timeline(load))
    if app.timeline:
        timelines.append(app_timeline(app))
    histogram = figures.latency
    return Report(
        title=title or _title(app, load),
        service=app.service,
        since=app.since if load is None else min(app.since, load.started_at),
        until=app.until if load is None else max(app.until, load.ended_at),
        generated_at=app.until if generated_at is None else generated_at,
        run_name=None if load is None else load.name,
        targets=goals,
        assessment=assessment,
        bottlenecks=bottlenecks,
        findings=tuple(rank(findings)),
        monitoring=monitoring_strategy(assessment, bottlenecks, app, goals),
        timelines=tuple(t for t in timelines if t.points),
        distribution=latency_distribution(histogram, assessment.source),
        notes=_notes(app, load),
    )


def _title(app: AppData, load: LoadResult | None) -> str:
    subject = app.service or (load.name if load is not None else None)
    return f"Performance report: {subject}" if subject else "Performance report"


def _notes(app: AppData, load: LoadResult | None) -> tuple[str, ...]:
    notes = []
    if app.empty:
        notes.append(
            "No in-app data in this window: the time split, queries and outbound calls "
            "need perfpilot.instrument(app)."
        )
    if load is None:
        notes.append("No load run: figures are what the instrumented app saw of its own traffic.")
    dropped = {kind: n for kind, n in app.drops.items() if n}
    if dropped:
        listed = ", ".join(f"{n:,} {kind}" for kind, n in sorted(dropped.items()))
        notes.append(f"The recorders dropped items to stay bounded: {listed}.")
    if load is not None and load.aborted:
        notes.append(f"The load run stopped early: {load.aborted}.")
    return tuple(notes)
