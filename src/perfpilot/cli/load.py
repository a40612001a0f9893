"""``perfpilot load``: run a load test from a URL or a scenario file."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from perfpilot.cli.options import check_output_path
from perfpilot.config import load_settings
from perfpilot.errors import EXIT_OK, EXIT_THRESHOLDS_FAILED, UsageError
from perfpilot.load.durations import parse_duration
from perfpilot.load.live import LiveView
from perfpilot.load.runner import run_load
from perfpilot.load.scenario import load_scenario, plan_from_url
from perfpilot.load.summary import render_summary
from perfpilot.records import LoadResult
from perfpilot.store.dsn import redact_credentials


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``load`` sub-command."""
    p = sub.add_parser(
        "load",
        help="run a load test",
        description="Run a load test against URL, or the scenario of -f FILE.",
    )
    p.add_argument("url", nargs="?", help="target URL for a one-line test")
    p.add_argument("-f", "--file", help="scenario TOML file")
    p.add_argument("--preset", help="smoke, normal, peak, stress, spike or soak")
    p.add_argument("--scale", type=float, help="multiply a preset's users (or rate) by this")
    p.add_argument("-c", "--vus", type=int, help="virtual users (closed model); default 1")
    p.add_argument("-d", "--duration", help="test length, e.g. 30s, 5m (default 10s)")
    p.add_argument("--rate", type=float, help="iterations per second (open model)")
    p.add_argument("--max-vus", type=int, help="VU cap for the open model")
    p.add_argument("-m", "--method", default="GET", help="HTTP method (default GET)")
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeat)")
    p.add_argument("--body", help="request body; @file reads it from a file")
    p.add_argument(
        "--threshold", action="append", default=[], help="e.g. 'http_req_duration: p(95)<500'"
    )
    p.add_argument("--out", help="write the versioned JSON result here")
    p.add_argument("--processes", type=int, help="load processes (default: one per core)")
    p.add_argument("--segment", help="run shard i of N of the whole load, e.g. 1/3")
    p.add_argument("--name", help="label of the run")
    p.add_argument("--store", help="store path (default .perfpilot/perfpilot.db)")
    p.add_argument("--no-store", action="store_true", help="do not save the run in the store")
    p.add_argument("--no-live", action="store_true", help="no live progress line")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run)


def make_console(quiet: bool) -> Console:
    """A console for summaries: wide enough for the tables when output is not a terminal."""
    console = Console(quiet=quiet)
    if not console.is_terminal:
        console = Console(quiet=quiet, width=max(console.width, 140))
    return console


def parse_segment(text: str) -> tuple[float, float]:
    """``"i/N"`` (1-based) to the segment ``[(i-1)/N, i/N)``."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise UsageError(f"--segment: expected i/N such as 1/3, got {text!r}") from None
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--segment: expected 1 <= i <= N, got {text!r}")
    return ((index - 1) / count, index / count)


def run(args: argparse.Namespace) -> int:
    """Build the plan, run it, report, store; exit 1 when a threshold failed."""
    settings = load_settings({"store": args.store, "processes": args.processes})
    if bool(args.url) == bool(args.file):
        raise UsageError("give a URL or -f scenario.toml (one of them)")
    check_output_path(args.out)
    if args.vus is not None and args.vus < 1:
        raise UsageError(f"--vus: expected a positive number, got {args.vus}")
    if args.rate is not None and args.rate <= 0:
        raise UsageError(f"--rate: expected a positive number, got {args.rate}")
    duration_s = parse_duration(args.duration, field="--duration") if args.duration else None
    segment = parse_segment(args.segment) if args.segment else (0.0, 1.0)
    if args.file:
        plan = load_scenario(
            args.file,
            preset=args.preset,
            scale=args.scale,
            duration_s=duration_s,
            extra_thresholds=args.threshold,
            vus=args.vus,
            rate=args.rate,
        )
    else:
        plan = plan_from_url(
            args.url,
            method=args.method,
            headers=args.header,
            body=args.body,
            vus=args.vus or 1,
            duration_s=duration_s,
            rate=args.rate,
            max_vus=args.max_vus,
            thresholds=args.threshold,
            name=args.name,
            preset=args.preset,
            scale=args.scale,
        )
    console = make_console(args.quiet)
    live = (
        None if (args.quiet or args.no_live) else LiveView(console, plan.executor.total_duration_s)
    )
    if live is not None:
        with live:
            result = run_load(plan, processes=settings.processes, segment=segment, live=live)
    else:
        result = run_load(plan, processes=settings.processes, segment=segment)
    return finish(result, args, settings.store, console)


def finish(result: LoadResult, args: argparse.Namespace, store_path: str, console: Console) -> int:
    """Print the summary, write the result file, save the run; return the exit code.

    Raises:
        UsageError: The result file cannot be written (its directory is not created).
    """
    from perfpilot.atomic import write_json_atomic

    if not args.quiet:
        render_summary(result, console)
    if args.out:
        try:
            write_json_atomic(args.out, result.to_dict(), make_parents=False)
        except OSError as exc:
            raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if not args.no_store:
        from perfpilot.store import open_store

        with open_store(store_path) as store:
            run_id = store.save_run(result)
        if not args.quiet:
            shown = redact_credentials(store_path)
            console.print(f"run {run_id} saved in {shown}", style="dim", markup=False)
    if not result.passed:
        print("perfpilot: thresholds failed", file=sys.stderr)
        return EXIT_THRESHOLDS_FAILED
    return EXIT_OK
