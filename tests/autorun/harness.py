"""Start commands through the real ``perfpilot run`` and read what they stored.

Nothing here imports perfpilot's autorun package: the commands run in child
processes, started the way a user would start them.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def perfpilot() -> list[str]:
    """The installed console script (the entry point users run), else ``python -m perfpilot``."""
    script = Path(PYTHON).parent / "perfpilot"
    return [str(script)] if script.is_file() else [PYTHON, "-m", "perfpilot"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without PERFPILOT_* variables, with ``extra`` and the repo on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFPILOT_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclasses.dataclass
class Command:
    """One command started through ``perfpilot run``, its output in a file."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Command:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return self

    def wait_listening(self, port: int, timeout_s: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"exited early ({self.process.returncode}):\n{self.output()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 0.2),
            ):
                return  # a TCP probe: no HTTP request to count
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"nothing listens on {port}:\n{self.output()}")

    def signal(self, sig: int, timeout_s: float = 60) -> int:
        """Send ``sig`` to the process ``perfpilot run`` became; its exit status."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"ignored {signal.Signals(sig).name}:\n{self.output()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]


Rows = dict[tuple[str, str, int], int]


def sent_rows(sent: collections.Counter[tuple[str, int]]) -> Rows:
    """(route, method, status class) -> requests, from what the client sent."""
    rows: Rows = collections.Counter()
    for (route, status), n in sent.items():
        rows[route, "GET", status // 100] += n
    return dict(rows)
