"""Start and stop the demo: seed the database, run the LLM stub and the app, clean up.

Both servers run in child processes (``python -m perfpilot.demo.serve``) on
127.0.0.1, each on a listening socket this process binds to a free port and
hands over, so there is no race for the port. :class:`DemoServers` stops them
on exit (SIGTERM, then SIGKILL after a timeout) whatever ends the ``with``
block: an exception, ``KeyboardInterrupt`` or ``SystemExit``. If this process
is killed outright, each child notices its parent is gone and exits by itself.

This module imports neither Starlette nor uvicorn; only the children do.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.resources
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from perfpilot.demo.seed import (
    DEFAULT_CUSTOMERS,
    DEFAULT_MAX_ITEMS_PER_ORDER,
    DEFAULT_ORDERS,
    DEFAULT_PRODUCTS,
    DEFAULT_SEED,
    SeedReport,
    seed_database,
)
from perfpilot.errors import InternalError, UsageError

HOST = "127.0.0.1"
DEFAULT_WORK_DIR = Path(".perfpilot") / "demo"
"""Where the demo keeps its database and server logs, relative to the working directory."""
DB_FILENAME = "demo.sqlite3"

_PASS_FDS = os.name == "posix"


def scenario_path() -> Path:
    """Return the path of the demo's load scenario (``scenario.toml``, shipped in the package).

    The scenario has paths only; the caller supplies the app's base URL.

    Returns:
        The file's path.
    """
    return Path(str(importlib.resources.files("perfpilot.demo").joinpath("scenario.toml")))


def _package_root() -> str:
    """The directory holding the ``perfpilot`` package, for the children's import path."""
    return str(Path(__file__).resolve().parents[2])


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    root = _package_root()
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root if not path else f"{root}{os.pathsep}{path}"
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


class ServerProcess:
    """One HTTP server in a child process, listening on 127.0.0.1.

    This process binds a free port and passes the listening socket to the child
    as ``--fd N`` (``--port N`` where sockets cannot be inherited), so the URL is
    known before the child starts. The child's stdout and stderr go to
    ``log_path``.

    Args:
        name: A label for messages, e.g. ``"demo app"``.
        command: The child's command line; ``--fd N`` or ``--port N`` is appended.
        log_path: The file that receives the child's output (overwritten).
        env: Extra environment variables for the child.

    Example:
        >>> proc = ServerProcess(
        ...     "llm stub",
        ...     [sys.executable, "-m", "perfpilot.demo.serve", "--app", "llm"],
        ...     "llm.log",
        ... )  # doctest: +SKIP
        >>> with proc:  # doctest: +SKIP
        ...     proc.wait_ready(10.0)
        ...     print(proc.url)
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = Path(log_path)
        self._env = dict(env) if env else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.returncode: int | None = None

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 (known once started)."""
        if self._port is None:
            raise InternalError(f"{self.name} is not started")
        return self._port

    @property
    def url(self) -> str:
        """The server's base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (None before start and after stop)."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Bind a free port and start the child; returns without waiting for it.

        Raises:
            InternalError: When already started.
        """
        if self._proc is not None:
            raise InternalError(f"{self.name} is already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, 0))
            self._port = sock.getsockname()[1]
            if _PASS_FDS:
                sock.listen(1024)  # connections queue here until the child accepts
                args = ["--fd", str(sock.fileno())]
                pass_fds: tuple[int, ...] = (sock.fileno(),)
            else:  # no socket inheritance: hand over the port and hope it stays free
                sock.close()
                args = ["--port", str(self._port)]
                pass_fds = ()
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    [*self.command, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=pass_fds,
                    env=_child_env(self._env),
                    # Its own session: Ctrl-C reaches only us, and we stop it in order.
                    start_new_session=_PASS_FDS,
                )
            self.returncode = None
        finally:
            sock.close()  # the child has its own copy

    def wait_ready(self, timeout_s: float, path: str = "/health") -> None:
        """Poll ``GET path`` until it answers 200.

        Args:
            timeout_s: How long to wait, in seconds.
            path: The health-check path.

        Raises:
            InternalError: When the child exits or does not answer in time; the
                message includes the end of its log.
        """
        deadline = time.monotonic() + timeout_s
        last_error = "no answer"
        while True:
            proc = self._proc
            if proc is None:
                raise InternalError(f"{self.name} is not started")
            code = proc.poll()
            if code is not None:
                raise InternalError(
                    f"{self.name} exited with status {code} before it answered "
                    f"GET {path}; the end of its log ({self.log_path}):\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InternalError(
                    f"{self.name} did not answer GET {path} on {self.url} within "
                    f"{timeout_s:g} s ({last_error}); the end of its log "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            conn = http.client.HTTPConnection(HOST, self.port, timeout=min(1.0, remaining))
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    return
                last_error = f"status {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            finally:
                conn.close()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the child: SIGTERM, then SIGKILL after ``timeout_s``; always reaps it.

        Safe to call more than once, and when the child has already exited.

        Args:
            timeout_s: Grace period for a clean shutdown, in seconds.
        """
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout_s)
        finally:
            # Runs even when interrupted above (a second Ctrl-C): kill and reap.
            if proc.poll() is None:
                proc.kill()
            self.returncode = proc.wait()
            self._proc = None

    def log_tail(self, max_lines: int = 20) -> str:
        """The last lines of the child's output."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 8192))
                text = log.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(cannot read the log: {exc})"
        lines = text.splitlines()[-max_lines:]
        return "\n".join(lines) if lines else "(empty)"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class DemoServers:
    """The running demo: a seeded database, the LLM API stub and the app.

    Use it as a context manager; everything it started is stopped on exit.

    Args:
        work_dir: Where the database and the server logs go
            (:data:`DEFAULT_WORK_DIR` when None). A complete database built
            with the same arguments is reused.
        customers: Customers to seed (the default gives the full-size demo).
        products: Products to seed.
        orders: Orders to seed.
        max_items_per_order: Items per order, from 1 to this.
        seed: Random seed of the data.
        chat_delay_s: Least latency of the stub's chat completions, in seconds.
        chat_jitter_s: Extra chat latency, from 0 to this, in seconds.
        embeddings_delay_s: Latency of the stub's embeddings calls, in seconds.
        startup_timeout_s: How long each server may take to answer ``/health``.
        store: When given, the app is started through ``perfpilot run`` (no
            change to its code) and writes its monitoring data to this store,
            with a price table for the LLM stub.
        stop_timeout_s: Grace period before a server is killed.

    Example:
        >>> with DemoServers() as demo:  # doctest: +SKIP
        ...     print(demo.app_url)  # run load against it here
        http://127.0.0.1:40123
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str] | None = None,
        *,
        customers: int = DEFAULT_CUSTOMERS,
        products: int = DEFAULT_PRODUCTS,
        orders: int = DEFAULT_ORDERS,
        max_items_per_order: int = DEFAULT_MAX_ITEMS_PER_ORDER,
        seed: int = DEFAULT_SEED,
        chat_delay_s: float = 0.15,
        chat_jitter_s: float = 0.15,
        embeddings_delay_s: float = 0.04,
        startup_timeout_s: float = 30.0,
        stop_timeout_s: float = 5.0,
        store: str | None = None,
    ) -> None:
        self.store = store
        self.work_dir = Path(work_dir) if work_dir is not None else DEFAULT_WORK_DIR
        self.db_path = self.work_dir / DB_FILENAME
        self._seed_args = {
            "customers": customers,
            "products": products,
            "orders": orders,
            "max_items_per_order": max_items_per_order,
            "seed": seed,
        }
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.seed_report: SeedReport | None = None
        self._llm_args = [
            "--app=llm",
            f"--chat-delay={chat_delay_s}",
            f"--chat-jitter={chat_jitter_s}",
            f"--embeddings-delay={embeddings_delay_s}",
        ]
        self._llm: ServerProcess | None = None
        self._app: ServerProcess | None = None

    @property
    def app_url(self) -> str:
        """Base URL of the demo app, e.g. ``http://127.0.0.1:40123``."""
        if self._app is None:
            raise InternalError("the demo is not started")
        return self._app.url

    @property
    def llm_url(self) -> str:
        """Base URL of the LLM API stub."""
        if self._llm is None:
            raise InternalError("the demo is not started")
        return self._llm.url

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the running servers (empty once stopped)."""
        servers = (self._llm, self._app)
        return tuple(s.pid for s in servers if s is not None and s.pid is not None)

    def start(self) -> DemoServers:
        """Seed the database (or reuse it), start both servers and wait until they answer.

        Returns:
            ``self``.

        Raises:
            UsageError: When Starlette or uvicorn is not installed.
            InternalError: When a server does not come up; everything started is
                stopped first.
        """
        missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(
                f"the demo needs {' and '.join(missing)}: pip install 'perfpilot[demo]'"
            )
        # The children exit by themselves if this process dies without stopping them.
        serve = [sys.executable, "-m", "perfpilot.demo.serve", f"--parent-pid={os.getpid()}"]
        try:
            self.seed_report = seed_database(self.db_path, **self._seed_args)
            self._llm = ServerProcess(
                "LLM API stub", [*serve, *self._llm_args], self.work_dir / "llm-stub.log"
            )
            self._llm.start()
            app_args = [*serve, "--app=demo", f"--db={self.db_path}", f"--llm-url={self._llm.url}"]
            if self.store is not None:
                prices = self.work_dir / "prices.toml"
                write_prices(prices, self._llm.url)
                app_args = [*perfpilot_run(self.store, prices), *app_args]
            self._app = ServerProcess("demo app", app_args, self.work_dir / "app.log")
            self._app.start()
            self._llm.wait_ready(self.startup_timeout_s)
            self._app.wait_ready(self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the app, then the stub; safe to call more than once."""
        try:
            if self._app is not None:
                self._app.stop(self.stop_timeout_s)
        finally:
            if self._llm is not None:
                self._llm.stop(self.stop_timeout_s)

    def __enter__(self) -> DemoServers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def perfpilot_run(store: str, prices: Path) -> list[str]:
    """The ``perfpilot run ... --`` prefix that starts the demo app instrumented.

    The app's code has no perfpilot line for this: ``perfpilot run`` finds the
    Starlette app and hooks sqlite3 and httpx as they are imported. Data is
    written twice a second, under the service name ``demo``; the resource
    sampler runs at each write, so a 20-second demo has about 40 memory
    samples, enough for a memory trend to stand out of the noise.
    """
    return [sys.executable, "-m", "perfpilot", "run", f"--store={store}", "--service=demo",
            "--flush-interval=0.5", f"--prices={prices}", "--"]  # fmt: skip


def write_prices(path: Path, llm_url: str) -> None:
    """Write the demo's price table: the LLM stub priced like a paid chat API.

    The prices are examples of the per-token prices such APIs charge (US
    dollars per million tokens), so the demo can show cost per request and per
    business unit.
    """
    from urllib.parse import urlsplit

    from perfpilot.atomic import write_bytes_atomic
    from perfpilot.demo.llm_stub import CHAT_MODEL, EMBEDDING_MODEL

    host = urlsplit(llm_url).netloc
    text = f"""# Prices of the demo's LLM stub (example figures, US dollars per million tokens).
[[api]]
host = "{host}"
kind = "openai"
[api.models."{CHAT_MODEL}"]
input_per_1m = 2.50
output_per_1m = 10.00
[api.models."{EMBEDDING_MODEL}"]
input_per_1m = 0.13
output_per_1m = 0.0
"""
    write_bytes_atomic(path, text.encode())
