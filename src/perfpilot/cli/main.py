"""Entry point of the ``perfpilot`` command.

Each sub-command module exposes ``register(subparsers)``, which adds its parser
and sets ``handler`` to a function ``(args) -> int``. Only this module turns
exceptions into messages and exit codes; no message it prints shows a password
(:func:`perfpilot.store.dsn.redact_credentials`). An unrecognized argument is
reported by the sub-command's parser, so the hint names that sub-command's help.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from perfpilot import __version__
from perfpilot.errors import EXIT_INTERNAL, EXIT_USAGE, PerfpilotError, ThresholdSyntaxError
from perfpilot.store.dsn import redact_credentials

SUBCOMMANDS = ("load", "runs", "merge", "demo", "run", "report", "db")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"perfpilot: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    import importlib

    parser = _Parser(
        prog="perfpilot",
        description="Local-first performance engineering for Python web services.",
    )
    parser.add_argument("--version", action="version", version=f"perfpilot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"perfpilot.cli.{name}")
        module.register(sub)
    return parser


def chosen_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The innermost sub-command parser ``args`` went through (``parser`` itself if none)."""
    current = parser
    while True:
        found = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, found[0].dest, None) if found else None
        child = found[0].choices.get(name) if found and isinstance(name, str) else None
        if child is None:
            return current
        current = child


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        chosen_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        code: int = args.handler(args)
    except ThresholdSyntaxError as exc:
        print(f"perfpilot: error: {redact_credentials(str(exc))}", file=sys.stderr)
        print(exc.pointer(), file=sys.stderr)
        return exc.exit_code
    except PerfpilotError as exc:
        print(f"perfpilot: error: {redact_credentials(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("perfpilot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line unless asked for details
        if os.environ.get("PERFPILOT_DEBUG"):
            traceback.print_exc()
        print(
            f"perfpilot: internal error: {type(exc).__name__}: {redact_credentials(str(exc))} "
            "(set PERFPILOT_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
