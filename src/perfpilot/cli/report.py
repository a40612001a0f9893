"""``perfpilot report``: diagnose a stored run or a recent window and write the report.

Example:
    $ perfpilot report --since 1h                      # the last hour, in the terminal
    $ perfpilot report --run 42 -o report.html         # one load run, as one HTML file
    $ perfpilot report --since 30m --format markdown >> "$GITHUB_STEP_SUMMARY"
    $ perfpilot report --since 1h --db postgresql://app@db/shop -o report.html
"""

from __future__ import annotations

import argparse

from rich.console import Console

from perfpilot.cli.options import check_output_path, document_format, number_type, write_document
from perfpilot.config import load_settings
from perfpilot.errors import EXIT_OK, UsageError
from perfpilot.load.durations import parse_duration
from perfpilot.report.render import FORMATS

DEFAULT_SINCE = "1h"

_run_id = number_type(int, what="a run id", valid=lambda value: value >= 1)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser(
        "report",
        help="diagnose a run or a recent window and write the report",
        description=(
            "Read a stored load run (--run) or the last stretch of in-app monitoring "
            f"(--since, default {DEFAULT_SINCE}) from the store, find what is slow and why, "
            "and write the report: assessment, bottlenecks, a ranked plan, the fixes, "
            "and alert rules and budgets."
        ),
    )
    window = p.add_mutually_exclusive_group()
    window.add_argument("--run", type=_run_id, metavar="ID", help="a stored load run's id")
    window.add_argument(
        "--since", metavar="DURATION", help=f"window back from now (default {DEFAULT_SINCE})"
    )
    p.add_argument("--service", help="only this service's in-app data")
    p.add_argument(
        "--store", metavar="URL", help="store path or URL (default .perfpilot/perfpilot.db)"
    )
    p.add_argument(
        "--db",
        metavar="DSN",
        help=(
            "also advise on the window's recorded queries against this database "
            "(postgresql://user@host/db or a SQLite file) and check its health, read-only"
        ),
    )
    p.add_argument("-o", "--out", metavar="FILE", help="write the report here (atomically)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="terminal, html, markdown or json (default: from the -o extension, else terminal)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Collect, render and write or print the report.

    Returns:
        The exit code, 0.

    Raises:
        UsageError: Bad options (an ``-o`` directory that does not exist, an
            extension without ``--format``), or nothing was recorded in the window.
        ConfigError: A malformed duration.
        StoreError: The store is missing or unreadable, or has no such run.
    """
    from perfpilot.report.collect import collect_report
    from perfpilot.report.render import render
    from perfpilot.report.terminal import print_report
    from perfpilot.store import open_store

    name = document_format(args.format, args.out)
    check_output_path(args.out)
    since = None
    if args.run is None:
        since = parse_duration(args.since or DEFAULT_SINCE, field="--since")
        if since <= 0:
            raise UsageError("--since must be longer than zero")
    settings = load_settings({"store": args.store})
    with open_store(settings.store, create=False) as store:
        report = collect_report(
            store, run_id=args.run, since=since, service=args.service, database=args.db
        )
    out = console or Console()
    if name == "terminal" and not args.out:
        print_report(report, out)
    else:
        write_document(render(report, name), args.out, out)
    return EXIT_OK
