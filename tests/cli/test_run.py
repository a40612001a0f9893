"""``perfpilot run -- COMMAND`` as a user runs it: the real console script, real signals.

The command replaces perfpilot (``exec``): it has perfpilot's pid, signals sent
to that pid reach it, and its exit status is what the caller sees.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.autorun.harness import clean_env, perfpilot

PYTHON = sys.executable
NOTHING_FOUND = "no Flask, FastAPI/Starlette or Django app found"

# prints its pid and "ready", then waits; exits 7 on SIGTERM and 5 on Ctrl-C
WAITER = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    try:
        print(os.getpid(), "ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        sys.exit(5)
    """
)


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*perfpilot(), "run", *command], capture_output=True, text=True, env=clean_env(),
        cwd=cwd, timeout=60, check=False,
    )  # fmt: skip


def test_a_non_python_command_runs_unchanged_with_one_line_and_its_exit_code() -> None:
    done = run("--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout == "out\n"
    lines = done.stderr.splitlines()
    assert lines[1:] == ["err"]
    assert lines[0].startswith("perfpilot: /bin/sh is not a Python program")


def test_a_python_program_without_an_app_says_so_once_at_exit(tmp_path: Path) -> None:
    done = run("--", PYTHON, "-c", "import sqlite3, sys; sqlite3.connect(':memory:'); sys.exit(4)",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and NOTHING_FOUND in done.stderr, done.stderr
    assert not (tmp_path / ".perfpilot").exists()  # nothing to write, nothing written


def test_the_dash_dash_is_optional_and_options_after_the_command_are_its_own() -> None:
    done = run(PYTHON, "-c", "import sys; print(sys.argv[1:])", "--store", "x")
    assert done.returncode == 0
    assert done.stdout == "['--store', 'x']\n"


@pytest.mark.parametrize(
    ("command", "message"),
    [((), "no command to run"), (("--", "no-such-command-xyz"), "command not found: no-such-command-xyz"),
     (("--sample-rate", "2", "--", "true"), "trace_sample_rate")],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(command: tuple[str, ...], message: str) -> None:
    done = run(*command)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def start_waiter(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    script = tmp_path / "waiter.py"
    script.write_text(WAITER)
    process = subprocess.Popen(
        [*perfpilot(), "run", "--", PYTHON, str(script)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline().split()
    assert first[1:] == ["ready"], first
    return process, int(first[0])


@pytest.mark.integration
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 7), (signal.SIGINT, 5)])
def test_signals_reach_the_command_and_its_exit_code_is_returned(
    tmp_path: Path, sig: int, code: int
) -> None:
    process, pid = start_waiter(tmp_path)
    try:
        assert pid == process.pid  # exec: the command is the process perfpilot started as
        process.send_signal(sig)
        assert process.wait(30) == code
    finally:
        process.kill()
        process.communicate()


@pytest.mark.integration
def test_a_command_killed_by_a_signal_is_reported_as_killed_by_it(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*perfpilot(), "run", "--", PYTHON, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == -signal.SIGTERM
    finally:
        process.kill()
        process.communicate()
