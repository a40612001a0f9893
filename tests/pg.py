"""A throwaway PostgreSQL 15 server on 127.0.0.1 for integration tests.

It uses the Debian packages (``postgresql``, ``postgresql-15-hypopg``), which
``make test`` installs: ``initdb`` into a temporary directory, ``postgres`` on a
free port with ``pg_stat_statements`` preloaded, then ``pg_ctl stop`` at the
end. As root the server runs as the ``postgres`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> str | None:
    """``None`` when a server can be started here, else why not."""
    if not (PG_BIN / "initdb").exists():
        return "PostgreSQL 15 is not installed (make test installs it: apt-get install postgresql)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A running throwaway server; ``dsn`` connects as the superuser ``perfpilot``."""

    def __init__(self, root: Path, port: int, run_as: str | None) -> None:
        self.root = root
        self.port = port
        self.run_as = run_as
        self.data = root / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://perfpilot@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://perfpilot@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *argv: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *argv]
        return list(argv)

    def start(self) -> None:
        subprocess.run(
            self._cmd(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "perfpilot",
                "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C",
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "shared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.track = all\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
            )
        subprocess.run(
            self._cmd(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                "-w", "-t", "60", "start",
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start: {(self.root / 'log').read_text()[-2000:]}")

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            ),
            check=False,
            capture_output=True,
        )


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway server; stop it and remove its files afterwards."""
    root = Path(tempfile.mkdtemp(prefix="perfpilot-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        pw = pwd.getpwnam(run_as)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    root.chmod(0o700)
    server = PostgresServer(root, _free_port(), run_as)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
