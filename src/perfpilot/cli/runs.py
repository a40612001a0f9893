"""``perfpilot runs list|show``: read saved runs back from the store.

Example:
    $ perfpilot runs list --limit 10
    $ perfpilot runs show 42 --store results/perf.db
"""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perfpilot.cli.options import number_type
from perfpilot.config import load_settings
from perfpilot.errors import EXIT_OK
from perfpilot.load.summary import render_summary
from perfpilot.records import LoadResult
from perfpilot.store import RunSummary, open_store

_positive = number_type(int, what="a positive integer", valid=lambda value: value >= 1)


def register(subparsers: Any) -> None:
    """Add the ``runs`` command and its ``list`` and ``show`` sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="PATH",
        default=None,
        help="a SQLite path or postgresql://user@host/db (default .perfpilot/perfpilot.db)",
    )
    parser = subparsers.add_parser("runs", help="list and show saved runs")
    commands = parser.add_subparsers(
        dest="runs_command", metavar="ACTION", parser_class=type(parser)
    )
    commands.required = True

    listing = commands.add_parser("list", parents=[common], help="list saved runs, newest first")
    listing.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="show at most N runs"
    )
    listing.set_defaults(handler=list_runs)

    show = commands.add_parser("show", parents=[common], help="show one saved run")
    show.add_argument("id", type=int, metavar="ID", help="the run id (see 'perfpilot runs list')")
    show.set_defaults(handler=show_run)


def list_runs(args: argparse.Namespace, console: Console | None = None) -> int:
    """Print a table of saved runs, newest first.

    Args:
        args: Parsed options: ``store`` (or ``None`` for the configured one) and ``limit``.
        console: Where to print (defaults to standard output).

    Returns:
        The exit code, 0.

    Raises:
        StoreError: The store is missing or unreadable.
    """
    out = Console() if console is None else console
    with open_store(_store_location(args), create=False) as store:
        summaries = store.list_runs(args.limit)
    if not summaries:
        out.print("No runs saved yet.")
        return EXIT_OK
    out.print(_runs_table(summaries))
    return EXIT_OK


def show_run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Print one saved run: its configuration, per-name statistics and thresholds.

    Args:
        args: Parsed options: ``store`` (or ``None`` for the configured one) and ``id``.
        console: Where to print (defaults to standard output).

    Returns:
        The exit code, 0.

    Raises:
        StoreError: The store is missing or unreadable, or has no such run.
    """
    out = Console() if console is None else console
    with open_store(_store_location(args), create=False) as store:
        result = store.get_run(args.id)
    out.print(f"[bold]Run {args.id}[/bold]: {escape(result.name)}")
    for label, value in _overview(result):
        out.print(f"  {label}: {escape(value)}")
    render_summary(result, out)
    return EXIT_OK


def _store_location(args: argparse.Namespace) -> str:
    return load_settings({"store": args.store}).store


def _runs_table(summaries: list[RunSummary]) -> Table:
    table = Table(
        title="Saved runs",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("started (local)", no_wrap=True)
    table.add_column("name", overflow="fold", ratio=1)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("requests", justify="right", no_wrap=True)
    table.add_column("err %", justify="right", no_wrap=True)
    table.add_column("p95 ms", justify="right", no_wrap=True)
    table.add_column("pass", justify="center", no_wrap=True)
    for run in summaries:
        verdict = {True: "[green]✓[/green]", False: "[red]✗[/red]", None: "-"}[run.passed]
        name = escape(run.name) + (" [yellow](aborted)[/yellow]" if run.aborted else "")
        table.add_row(
            str(run.id),
            _local_time(run.started_at, seconds=False),
            name,
            _duration(run.duration_s),
            f"{run.requests:,}",
            f"{100 * run.error_rate:.2f}",
            "-" if run.p95_ms is None else f"{run.p95_ms:.1f}",
            verdict,
        )
    return table


def _overview(result: LoadResult) -> list[tuple[str, str]]:
    lines = [
        ("started", _local_time(result.started_at)),
        ("duration", _duration(result.duration_s)),
    ]
    if result.aborted:
        lines.append(("aborted", result.aborted))
    for key, value in sorted(result.config.items()):
        text = (
            value
            if isinstance(value, str)
            else json.dumps(value, separators=(",", ":"), default=str)
        )
        lines.append((key, text if len(text) <= 100 else text[:99] + "…"))
    return lines


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _local_time(timestamp: float, *, seconds: bool = True) -> str:
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return datetime.datetime.fromtimestamp(timestamp).strftime(pattern)
