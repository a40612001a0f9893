"""``perfpilot run -- COMMAND``: run a command with in-app monitoring, no code change.

Example:
    $ perfpilot run -- gunicorn -w 4 app:app
    $ perfpilot run --store postgresql://perf@db/perf --service shop -- uvicorn shop:app
    $ perfpilot run -- python manage.py runserver --noreload
"""

from __future__ import annotations

import argparse
from typing import Any

from perfpilot.autorun.launch import exec_launch, prepare


def register(subparsers: Any) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help="run a command with in-app monitoring (no code change)",
        description=(
            "Run COMMAND so that every Python process it starts is monitored: Flask, "
            "FastAPI/Starlette and Django apps are found and timed per route, with their "
            "SQL, outbound HTTP and cache calls, and the data goes to the store. The "
            "command replaces perfpilot (same pid): signals reach it and its exit "
            "status is returned."
        ),
        usage="perfpilot run [OPTIONS] -- COMMAND [ARGS...]",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="a SQLite path or postgresql://user@host/db (default .perfpilot/perfpilot.db)",
    )
    parser.add_argument("--service", metavar="NAME", help="service name for the data")
    parser.add_argument(
        "--sample-rate",
        type=float,
        metavar="FRACTION",
        help="fraction (0..1) of requests traced at random, besides slow and failed ones",
    )
    parser.add_argument(
        "--flush-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between writes to the store (default 5)",
    )
    parser.add_argument("--prices", metavar="PATH", help="price table for outbound API calls")
    parser.add_argument(
        "--profile-interval",
        type=float,
        metavar="MS",
        help="milliseconds between stack samples of the threads serving requests "
        "(default 10; 0 turns the sampler off)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the command's environment and become the command (does not return)."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    launch = prepare(
        command,
        {
            "store": args.store,
            "service": args.service,
            "trace_sample_rate": args.sample_rate,
            "flush_interval_s": args.flush_interval,
            "prices": args.prices,
            "profile_interval_ms": args.profile_interval,
        },
    )
    exec_launch(launch)
