"""``perfpilot demo``: the sample app, a short mixed load, the summary, the stored run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from perfpilot.config import load_settings
from perfpilot.load.durations import parse_duration
from perfpilot.load.live import LiveView
from perfpilot.load.runner import run_load
from perfpilot.load.scenario import load_scenario
from perfpilot.records import LoadResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demo on the embedded sample app",
        description=(
            "Start the sample app (with seeded performance problems) and a stub of a paid "
            "LLM API on 127.0.0.1, run a short mixed load against them, print the summary, "
            "store the run, and stop everything."
        ),
    )
    p.add_argument("-d", "--duration", help="length of the load (default: the scenario's 20s)")
    p.add_argument("--work-dir", default=".perfpilot/demo", help="where the demo database lives")
    p.add_argument("--store", help="store path (default .perfpilot/perfpilot.db)")
    p.add_argument("--out", help="also write the JSON result here")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run, no_store=False, no_live=False)


def run(args: argparse.Namespace) -> int:
    """Start the servers, run the demo scenario, report, stop."""
    from perfpilot.cli.load import finish, make_console
    from perfpilot.cli.options import check_output_path
    from perfpilot.demo.server import DemoServers, scenario_path

    check_output_path(args.out)
    settings = load_settings({"store": args.store})
    console = make_console(args.quiet)
    duration_s = parse_duration(args.duration, field="--duration") if args.duration else None
    console.print("[bold]perfpilot demo[/]: seeding the sample database and starting the app…")
    started = time.time()
    with DemoServers(args.work_dir, store=settings.store) as demo:
        report = demo.seed_report
        if report is not None:
            verb = "reused" if report.reused else f"seeded in {report.duration_s:.1f} s"
            console.print(f"database: {report.total_rows:,} rows ({verb})")
        console.print(f"sample app on {demo.app_url}, LLM stub on {demo.llm_url}")
        plan = load_scenario(str(scenario_path()), base_url=demo.app_url, duration_s=duration_s)
        # One load process: on a small machine the app needs the other cores.
        with LiveView(console, plan.executor.total_duration_s) as live:
            result = run_load(plan, processes=1, live=None if args.quiet else live)
    console.print("servers stopped")
    code = finish(result, args, settings.store, console)
    if not args.quiet:
        show_monitoring(console, settings.store, started)
    write_report(console, settings.store, started, result, args.work_dir)
    return code


def write_report(
    console: Console, store_path: str, since: float, result: LoadResult, work_dir: str
) -> Path:
    """Diagnose the demo, write its report into ``work_dir``, print the top findings.

    The report goes to ``report.html`` and, for tools and tests, to ``report.json``
    (the versioned JSON rendering); the HTML path is returned.
    """
    from perfpilot.atomic import write_bytes_atomic
    from perfpilot.report.collect import window_report
    from perfpilot.report.render import render
    from perfpilot.store import open_store

    with open_store(store_path) as store:
        report = window_report(store, start=since, end=time.time(), load=result, service="demo")
    path = Path(work_dir) / "report.html"
    write_bytes_atomic(path, render(report, "html").encode("utf-8"))
    write_bytes_atomic(path.with_suffix(".json"), render(report, "json").encode("utf-8"))
    console.print(f"report: {path}", markup=False, highlight=False)
    for i, finding in enumerate(report.findings[:5], start=1):
        console.print(f"  {i}. {finding.title}", markup=False, highlight=False)
    return path


def show_monitoring(console: Console, store_path: str, since: float) -> None:
    """Print what the instrumented app recorded about itself since ``since``."""
    from perfpilot.analyze.breakdown import (
        cache_hit_rates,
        outbound_summary,
        route_breakdown,
        unit_costs,
    )
    from perfpilot.report.monitoring import render_monitoring
    from perfpilot.store import open_store

    with open_store(store_path) as store:
        service = "demo"
        routes = route_breakdown(store.app_requests(since=since, service=service))
        outbound = outbound_summary(store.app_outbound(since=since, service=service))
        units = unit_costs(store.app_units(since=since, service=service))
        caches = cache_hit_rates(store.app_caches(since=since, service=service))
    render_monitoring(console, routes, outbound, units, caches)
