"""A throwaway redis-server on 127.0.0.1 for integration tests.

It uses the Debian package ``redis-server`` (``scripts/system-deps.sh test``
installs it): one server on a free port, its working directory a temporary
directory, no persistence (``--save ''``, no AOF), stopped at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

START_TIMEOUT_S = 10.0


def available() -> str | None:
    """``None`` when a server can be started here, else why not."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (scripts/system-deps.sh test installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A running server: ``url`` is ``redis://127.0.0.1:PORT/0``."""

    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.process = process

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self, *args: str) -> bytes:
        """Send one command (RESP) and return the raw reply (for setup, no client needed)."""
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection((self.host, self.port), timeout=5) as conn:
            conn.sendall(payload)
            return conn.recv(65536)

    def flush(self) -> None:
        """Remove every key."""
        assert self.command("FLUSHALL").startswith(b"+OK")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start(port: int, workdir: str) -> subprocess.Popen[bytes] | None:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", workdir,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--loglevel", "warning",
            "--logfile", "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=workdir,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            why = process.stderr.read().decode(errors="replace") if process.stderr else ""
            _stop(process)
            if "in use" in why:  # the port was taken meanwhile: try another
                return None
            raise RuntimeError(f"redis-server exited with {process.returncode}: {why.strip()}")
        if _ping(port):
            return process
        time.sleep(0.02)
    _stop(process)
    raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{port} within {START_TIMEOUT_S}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stderr is not None:
        process.stderr.close()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start a redis-server on a free port; stop it and remove its directory after."""
    with tempfile.TemporaryDirectory(prefix="perfpilot-redis-") as workdir:
        for _attempt in range(5):
            port = _free_port()
            process = _start(port, workdir)
            if process is not None:
                break
        else:
            raise RuntimeError("redis-server would not start (5 ports tried)")
        try:
            yield RedisServer(port, process)
        finally:
            _stop(process)
