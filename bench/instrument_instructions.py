"""In-app overhead in instructions: the variants of ``instrument_overhead.py`` under callgrind.

``instrument_overhead.py`` times the variants in microseconds, which is what
the targets are stated in, but on a shared machine every figure moves with the
neighbours' load: in one hour the same code measured 1.2 µs and 2.4 µs per
query. Instructions executed do not move. This script runs each variant of
``instrument_overhead.py`` (the same apps, the same perfpilot, OpenTelemetry
and prometheus_client setups) in a child process under
``valgrind --tool=callgrind``, counting only the ``n`` measured requests (the
recorder collected and the spans cleared every 500 requests, as there): the
child runs them inside a ``functools.reduce`` call, and callgrind collects
only inside that C function (``--collect-atstart=no
--toggle-collect=functools_reduce``), so start-up and imports are not
counted. Added per request and per query, and the OpenTelemetry ratios, are
computed as in ``instrument_overhead.py``.

Instructions are not time: a cache miss costs more than an add. The figures
are for comparing versions of perfpilot and perfpilot with its peers; the
targets themselves are judged in microseconds by ``instrument_overhead.py``.

Needs valgrind (``make bench`` installs it). Usage::

    .venv/bin/python bench/instrument_instructions.py            # a few minutes
    .venv/bin/python bench/instrument_instructions.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERIES_PER_REQUEST = 10
COLLECT_EVERY = 500
KINDS = ("asgi", "wsgi", "sql")
NAMES = ("bare", "perfpilot", "otel", "prometheus")
# OpenTelemetry costs 25-50 times more per request: fewer requests for it
SLOW = {"otel"}


def _load_overhead_module() -> object:
    path = HERE / "instrument_overhead.py"
    spec = importlib.util.spec_from_file_location("instrument_overhead", path)
    if spec is None or spec.loader is None:
        raise RuntimeError("bench/instrument_overhead.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules["instrument_overhead"] = module
    spec.loader.exec_module(module)
    return module


def child(key: str, n: int) -> int:
    """Run ``n`` requests of one variant (in the process callgrind measures)."""
    bench = _load_overhead_module()
    loop = asyncio.new_event_loop()
    variants, _notes = bench.build_variants(loop)  # type: ignore[attr-defined]
    variant = next(v for v in variants if v.key == key)
    variant.run(50)  # warm: first-call paths, caches
    variant.after_batch()

    def measured(_a: object, _b: object) -> None:
        left = n
        while left > 0:
            step = min(COLLECT_EVERY, left)
            variant.run(step)
            variant.after_batch()
            left -= step

    functools.reduce(measured, (0, 0))  # callgrind counts inside this call only
    loop.close()
    return 0


def instructions(key: str, n: int, workdir: str) -> int:
    """Instructions callgrind counts for a child running ``n`` requests of ``key``."""
    out = os.path.join(workdir, f"{key.replace('/', '_')}.{n}.out")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    cmd += ["--collect-atstart=no", "--toggle-collect=functools_reduce"]
    cmd += [sys.executable, str(Path(__file__).resolve()), "--child", key, str(n)]
    if shutil.which("setarch"):  # no address randomization: steadier counts
        cmd = ["setarch", os.uname().machine, "-R", *cmd]
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=1800)
    with open(out, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]))
    if shutil.which("valgrind") is None:
        print("instrument_instructions: valgrind is not installed (make bench installs it)")
        return 0
    base_n = 300 if args.quick else 1000
    keys = [f"{k}/{n}" for k in KINDS for n in NAMES if not (k == "sql" and n == "prometheus")]
    jobs = [(key, base_n // 10 if key.split("/")[1] in SLOW else base_n) for key in keys]
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(os.cpu_count() or 1) as ex:
        counts = list(ex.map(lambda j: instructions(j[0], j[1], workdir), jobs))
    if not all(counts):
        print(
            "instrument_instructions: callgrind counted nothing inside functools_reduce "
            "(a Python built without symbols?)"
        )
        return 0
    per_request = {key: count / n for (key, n), count in zip(jobs, counts, strict=True)}

    print(
        f"perfpilot in-app overhead in instructions (callgrind): Python {sys.version.split()[0]}, "
        f"{base_n} requests per variant (OpenTelemetry: {base_n // 10}), after a warm-up, "
        "only the measured requests counted"
    )
    print(f"{'variant':18} {'instr/request':>14} {'added':>12}")
    for key in keys:
        bare = per_request[f"{key.split('/')[0]}/bare"]
        added = "" if key.endswith("/bare") else f"{per_request[key] - bare:+12,.0f}"
        print(f"{key:18} {per_request[key]:14,.0f} {added:>12}")

    def added(kind: str, name: str) -> float:
        return per_request[f"{kind}/{name}"] - per_request[f"{kind}/bare"]

    print(
        "\nadded per query: ((sql variant - sql bare) - (wsgi variant - wsgi bare)) / "
        f"{QUERIES_PER_REQUEST}"
    )
    per_query = {
        name: (added("sql", name) - added("wsgi", name)) / QUERIES_PER_REQUEST
        for name in ("perfpilot", "otel")
    }
    for name, value in per_query.items():
        print(f"  {name:10} {value:+10,.0f} instructions/query")
    print("\nOpenTelemetry-added / perfpilot-added")
    for kind in ("asgi", "wsgi"):
        print(f"  {kind} request: {added(kind, 'otel') / added(kind, 'perfpilot'):6.1f}x")
    print(f"  SQL query:    {per_query['otel'] / per_query['perfpilot']:6.1f}x")
    for kind in ("asgi", "wsgi"):
        ratio = added(kind, "perfpilot") / added(kind, "prometheus")
        print(f"  (reference) {kind} perfpilot / prometheus_client middleware: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
