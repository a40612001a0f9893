"""``perfpilot db advise|health``: index advice and health checks for a database.

Example:
    $ perfpilot db advise postgresql://app@db/shop --from-statements
    $ perfpilot db advise shop.db --sql queries.sql --format markdown
    $ perfpilot db advise postgresql://app@db/shop --from-log postgresql.log --apply
    $ perfpilot db health postgresql://app@db/shop --format json
    $ perfpilot db advise shop.db --sql queries.sql -o advice.html
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from perfpilot.cli.options import (
    check_output_path,
    document_format,
    number_type,
    write_document,
)
from perfpilot.errors import EXIT_OK, EXIT_THRESHOLDS_FAILED, UsageError
from perfpilot.load.durations import parse_duration

_fraction = number_type(
    float, what="a number", valid=lambda value: 0.0 < value <= 1.0, bounds=" in (0, 1]"
)
_non_negative = number_type(
    float, what="a number", valid=lambda value: value >= 0.0, bounds=" of at least 0"
)


def register(subparsers: Any) -> None:
    """Add the ``db`` command and its ``advise`` and ``health`` sub-commands."""
    parser = subparsers.add_parser("db", help="index advice and health checks for a database")
    commands = parser.add_subparsers(dest="db_command", metavar="ACTION", parser_class=type(parser))
    commands.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "dsn", metavar="DSN", help="postgresql://user@host/db, a SQLite file or sqlite:///path"
    )
    common.add_argument(
        "--format",
        choices=("terminal", "json", "markdown", "html"),
        dest="fmt",
        help="terminal, json, markdown or html (default: from the -o extension, else terminal)",
    )
    common.add_argument(
        "-o", "--out", metavar="FILE", help="write the output here (atomically), not to stdout"
    )

    advise = commands.add_parser(
        "advise",
        parents=[common],
        help="recommend indexes, with their cost before and after (read-only)",
        description=(
            "Recommend the indexes that make the workload's queries cheaper (hypopg on "
            "PostgreSQL, create-measure-rollback on SQLite). Read-only unless --apply."
        ),
    )
    source = advise.add_mutually_exclusive_group()
    source.add_argument(
        "--from-store",
        nargs="?",
        const="",
        metavar="STORE",
        help="the queries perfpilot recorded in the app (default store when STORE is omitted)",
    )
    source.add_argument(
        "--from-statements",
        action="store_true",
        help="pg_stat_statements (the default on PostgreSQL)",
    )
    source.add_argument("--from-log", metavar="FILE", help="a log with log_min_duration_statement")
    source.add_argument("--sql", metavar="FILE", help="a file of SQL statements separated by ';'")
    advise.add_argument(
        "--min-gain",
        type=_fraction,
        default=0.5,
        metavar="F",
        help="recommend only when the cost drops by this fraction (default 0.5)",
    )
    advise.add_argument(
        "--min-cost",
        type=_non_negative,
        default=None,
        metavar="X",
        help="leave queries below this cost alone (planner units; ms on SQLite)",
    )
    advise.add_argument(
        "--statement-timeout", default="30s", metavar="DURATION", help="per statement (30s)"
    )
    advise.add_argument(
        "--apply", action="store_true", help="create the recommended indexes after confirmation"
    )
    advise.add_argument("--yes", action="store_true", help="with --apply: do not ask")
    advise.add_argument(
        "--no-hints",
        dest="hints",
        action="store_false",
        help="leave out the query hints (SELECT *, functions on columns, implicit casts...)",
    )
    advise.set_defaults(handler=run_advise)

    health = commands.add_parser(
        "health", parents=[common], help="PgHero-style health checks (read-only)"
    )
    health.set_defaults(handler=run_health)


def run_advise(args: argparse.Namespace, console: Console | None = None) -> int:
    """Advise on the workload, render the findings, apply them when asked.

    Returns:
        0, or 1 when ``--apply`` could not create an index.

    Raises:
        UsageError, ConfigError: Bad options, files or connection.
    """
    from perfpilot.dbadvisor.advice_findings import advice_findings
    from perfpilot.dbadvisor.advisor import AdviceOptions, advise
    from perfpilot.dbadvisor.database import open_database

    if args.yes and not args.apply:
        raise UsageError("--yes goes with --apply")
    out = console or Console()
    fmt = document_format(args.fmt, args.out)
    check_output_path(args.out)
    timeout = parse_duration(args.statement_timeout, field="--statement-timeout")
    options = AdviceOptions(min_gain=args.min_gain, min_cost=args.min_cost, hints=args.hints)
    with open_database(args.dsn, statement_timeout_s=timeout) as db:
        workload = _workload(args, db)
        advice = advise(db, workload, options)
    findings = advice_findings(advice)
    _output(
        args.out, fmt, out, findings, title="Index advice", database=advice.database, advice=advice
    )
    if not args.apply:
        return EXIT_OK
    return _apply(args, advice.recommendations, out if fmt == "terminal" and not args.out else None)


def run_health(args: argparse.Namespace, console: Console | None = None) -> int:
    """Run the health checks and render their findings."""
    from perfpilot.dbadvisor.database import display_name
    from perfpilot.dbadvisor.health import check_health

    out = console or Console()
    fmt = document_format(args.fmt, args.out)
    check_output_path(args.out)
    findings = check_health(args.dsn)
    _output(args.out, fmt, out, findings, title="Database health", database=display_name(args.dsn))
    return EXIT_OK


def _output(
    path: str | None,
    fmt: str,
    console: Console,
    findings: Any,
    *,
    title: str,
    database: str,
    advice: Any = None,
) -> None:
    """Print the findings in ``fmt``, or write them to ``path`` (``-o FILE``)."""
    from perfpilot.dbadvisor.render import render, to_text

    if path is None and fmt != "html":
        render(findings, fmt, console, title=title, database=database, advice=advice)
        return
    text = to_text(findings, fmt, title=title, database=database, advice=advice)
    write_document(text, path, console)


def _workload(args: argparse.Namespace, db: Any) -> Any:
    from perfpilot.dbadvisor import workload as wl

    if args.sql:
        return wl.sql_file_workload(args.sql, dialect=db.kind)
    if args.from_log:
        return wl.log_workload(args.from_log, dialect=db.kind)
    if args.from_store is not None:
        from perfpilot.config import load_settings
        from perfpilot.store import open_store
        from perfpilot.store.app_data import read_app_data

        location = load_settings({"store": args.from_store or None}).store
        with open_store(location, create=False) as store:
            app = read_app_data(store)
        return wl.app_data_workload(app, dialect=db.kind)
    if db.kind != "postgresql" and not args.from_statements:
        raise UsageError("give the SQLite workload with --sql FILE or --from-store")
    return wl.database_statements_workload(db)


def _apply(args: argparse.Namespace, recommendations: Any, console: Console | None) -> int:
    from perfpilot.dbadvisor.apply import apply_recommendations

    talk = console or Console(stderr=True)
    if not recommendations:
        talk.print("Nothing to apply.")
        return EXIT_OK
    talk.print("[bold]To create:[/bold]")
    for rec in recommendations:
        talk.print(f"  {rec.ddl}", markup=False, highlight=False)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("--apply asks for confirmation: run it in a terminal or add --yes")
        answer = talk.input(f"Create {len(recommendations)} index(es)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            talk.print("Nothing created.")
            return EXIT_OK
    failed = 0
    for result in apply_recommendations(args.dsn, recommendations):
        if result.ok:
            talk.print(f"[green]created[/green] {escape(result.ddl)}", highlight=False)
        else:
            failed += 1
            talk.print(
                f"[red]failed[/red] {escape(result.ddl)}: {escape(result.error)}", highlight=False
            )
    return EXIT_THRESHOLDS_FAILED if failed else EXIT_OK
