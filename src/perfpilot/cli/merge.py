"""``perfpilot merge``: combine the result files of shards of one test."""

from __future__ import annotations

import argparse
import json

from perfpilot.config import load_settings
from perfpilot.errors import EXIT_OK, EXIT_THRESHOLDS_FAILED, ConfigError
from perfpilot.load.thresholds import evaluate_all, parse_threshold
from perfpilot.records import LoadResult, merge_results


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``merge`` sub-command."""
    p = sub.add_parser(
        "merge",
        help="merge result files of one test run in shards (--segment i/N)",
        description="Merge result files exactly and re-evaluate their thresholds.",
    )
    p.add_argument("files", nargs="+", help="result files written with --out")
    p.add_argument("-o", "--out", help="write the merged result here")
    p.add_argument("--store", help="store path (default .perfpilot/perfpilot.db)")
    p.add_argument("--no-store", action="store_true", help="do not save the merged run")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=run)


def read_result(path: str) -> LoadResult:
    """Read one result file.

    Raises:
        ConfigError: unreadable, not JSON, or not a perfpilot result.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not JSON: {exc.msg}", path=path, line=exc.lineno, column=exc.colno
        ) from None
    return LoadResult.from_dict(document, source=path)


def run(args: argparse.Namespace) -> int:
    """Merge, re-evaluate thresholds, report, store."""
    from perfpilot.cli.load import finish, make_console
    from perfpilot.cli.options import check_output_path

    check_output_path(args.out)
    results = [read_result(path) for path in args.files]
    merged = merge_results(results)
    merged.config["merged_from"] = len(results)
    sources = [str(s) for s in merged.config.get("thresholds", [])]
    specs = [parse_threshold(source) for source in sources]
    merged.thresholds = evaluate_all(specs, merged)
    settings = load_settings({"store": args.store})
    args.no_live = True
    code = finish(merged, args, settings.store, make_console(args.quiet))
    return EXIT_THRESHOLDS_FAILED if code == EXIT_THRESHOLDS_FAILED else EXIT_OK
