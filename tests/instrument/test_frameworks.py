"""Real apps under real servers on 127.0.0.1, instrumented with one line.

Flask and Django under gunicorn (sync workers), FastAPI and Starlette under
uvicorn. Each app (``tests/instrument/apps/``) calls
``perfpilot.instrument(app, store=..., flush_interval_s=0.5)`` at import. The
test sends a known number of requests, stops the server with SIGTERM (a
graceful stop: the workers flush at exit), and reads the store: every count
must match what was sent, exactly, also with several worker processes writing
one SQLite store.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perfpilot.store import open_store
from tests.instrument.apps import QUERIES_PER_REQUEST, make_app_db
from tests.netutil import free_port, get

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
UNMATCHED = "<unmatched>"
ORDER = "/orders/{order_id}"
ITEMS = "/orders/{order_id}/items"
BOOM = "/boom"

Serve = Callable[..., "Server"]


@dataclasses.dataclass
class Server:
    """One app server process (and its workers), stopped with SIGTERM."""

    argv: list[str]
    port: int
    store: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, app_db: Path, extra_env: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFPILOT_")}
        env.update(extra_env)
        env.update(
            PERFPILOT_TEST_STORE=str(self.store),
            PERFPILOT_TEST_APP_DB=str(app_db),
            # No trace is dropped for being one too many when a loaded machine
            # makes requests slow: the tests assert that nothing is dropped.
            PERFPILOT_SLOW_REQUEST_MS="60000",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited early ({self.process.returncode}):\n{self.output()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return  # listening (a TCP probe: no HTTP request to count)
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"server did not listen on {self.port}:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM, then wait for the graceful exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"server ignored SIGTERM:\n{self.output()}")
        # gunicorn exits 0; uvicorn re-raises SIGTERM after its graceful
        # shutdown, so atexit never runs there (perfpilot flushes at lifespan
        # shutdown instead)
        assert code in (0, -signal.SIGTERM), self.output()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def gunicorn(module: str, workers: int) -> list[str]:
    return [PYTHON, "-m", "gunicorn", "-k", "sync", "-w", str(workers), "--graceful-timeout", "20",
            "--log-level", "warning", "-b", "{bind}", module]  # fmt: skip


def uvicorn(module: str, workers: int = 1) -> list[str]:
    argv = [PYTHON, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning"]  # fmt: skip
    if workers > 1:
        argv += ["--workers", str(workers)]
    return argv


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    app_db = tmp_path / "app.db"
    make_app_db(str(app_db))
    servers: list[Server] = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> Server:
        port = free_port()
        argv = [a.replace("{bind}", f"127.0.0.1:{port}").replace("{port}", str(port)) for a in argv]
        server = Server(
            argv, port, tmp_path / "perfpilot.db", tmp_path / f"server{len(servers)}.log"
        )
        servers.append(server)
        server.start(app_db, env or {})
        return server

    yield start
    for server in servers:
        server.kill()


@dataclasses.dataclass
class Traffic:
    """What the client sent and what came back."""

    sent: collections.Counter[tuple[str, int]] = dataclasses.field(
        default_factory=collections.Counter
    )
    pids: set[int] = dataclasses.field(default_factory=set)


def mix(orders: int, items: int, booms: int, missing: int) -> list[tuple[str, str]]:
    """(path, route template expected) pairs, interleaved."""
    plan = (
        [(f"/orders/{i % 17}", ORDER) for i in range(orders)]
        + [(f"/orders/{i % 13}/items", ITEMS) for i in range(items)]
        + [(BOOM, BOOM)] * booms
        + [(f"/missing/{i}", UNMATCHED) for i in range(missing)]
    )
    plan.sort(key=lambda p: hash(p[0]) % 997)
    return plan


def send(server: Server, plan: list[tuple[str, str]], threads: int = 8) -> Traffic:
    traffic = Traffic()

    def one(item: tuple[str, str]) -> tuple[str, int, bytes]:
        status, body = get(server.url + item[0])
        return item[1], status, body

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for route, status, body in pool.map(one, plan):
            traffic.sent[route, status] += 1
            if route == ORDER and status == 200:
                traffic.pids.add(int(json.loads(body)["pid"]))
    return traffic


def expected_rows(traffic: Traffic) -> dict[tuple[str, str, int], tuple[int, int]]:
    rows: dict[tuple[str, str, int], tuple[int, int]] = {}
    for (route, status), n in traffic.sent.items():
        key = (route, "GET", status // 100)
        count, errors = rows.get(key, (0, 0))
        rows[key] = (count + n, errors + (n if status >= 500 else 0))
    return rows


def stored_rows(store: Path) -> dict[tuple[str, str, int], tuple[int, int]]:
    with open_store(str(store)) as db:
        return {(r.route, r.method, r.status_class): (r.count, r.errors) for r in db.app_requests()}


def check_store(server: Server, traffic: Traffic, *, items: int) -> None:
    """Everything sent is in the store, exactly, with templates and db counts."""
    assert traffic.sent[ORDER, 200] and traffic.sent[ITEMS, 200]
    assert traffic.sent[BOOM, 500] and traffic.sent[UNMATCHED, 404]
    assert stored_rows(server.store) == expected_rows(traffic), server.output()
    with open_store(str(server.store)) as db:
        rows = {r.route: r for r in db.app_requests()}
        assert rows[ITEMS].db_count == QUERIES_PER_REQUEST * items
        assert rows[ORDER].db_count == 0
        queries = [q for q in db.app_queries() if q.route == ITEMS]
        assert sum(q.count for q in queries) == QUERIES_PER_REQUEST * items
        assert len({q.fingerprint for q in queries}) == QUERIES_PER_REQUEST
        # nothing counted was dropped; kept traces are samples, bounded per
        # interval by design (a request with repeated queries is always traced)
        assert set(db.app_drops()) <= {"traces"}


FRAMEWORKS = {
    "flask-gunicorn": gunicorn("tests.instrument.apps.flask_app:app", 1),
    "django-gunicorn": gunicorn("tests.instrument.apps.django_app:application", 1),
    "fastapi-uvicorn": uvicorn("tests.instrument.apps.fastapi_app:app"),
    "starlette-uvicorn": uvicorn("tests.instrument.apps.starlette_app:app"),
    # Django's ASGI handler does not speak lifespan: perfpilot answers it, to flush at exit
    "django-asgi-uvicorn": uvicorn("tests.instrument.apps.django_app:application"),
}
ENV = {"django-asgi-uvicorn": {"PERFPILOT_TEST_DJANGO": "asgi"}}
# a mounted router (Starlette) and an included router with a prefix (FastAPI)
USERS = [(f"/api/users/{i}", "/api/users/{user_id}") for i in range(4)]
EXTRA = {"starlette-uvicorn": USERS, "fastapi-uvicorn": USERS}


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_framework_counts_templates_errors_and_queries(serve: Serve, name: str) -> None:
    server = serve(FRAMEWORKS[name], ENV.get(name))
    items = 12
    plan = mix(orders=30, items=items, booms=5, missing=6) + EXTRA.get(name, [])
    traffic = send(server, plan, threads=4)
    server.stop()
    check_store(server, traffic, items=items)


def test_four_gunicorn_workers_share_one_store_and_lose_nothing(
    serve: Serve,
) -> None:
    server = serve(gunicorn("tests.instrument.apps.flask_app:app", 4))
    items = 500
    traffic = send(server, mix(orders=1000, items=items, booms=250, missing=250), threads=8)
    assert sum(traffic.sent.values()) == 2000
    assert len(traffic.pids) > 1  # several processes really served (and write)
    server.stop()
    check_store(server, traffic, items=items)


def test_uvicorn_workers_share_one_store_and_lose_nothing(
    serve: Serve,
) -> None:
    server = serve(uvicorn("tests.instrument.apps.starlette_app:app", workers=2))
    items = 100
    traffic = send(server, mix(orders=200, items=items, booms=50, missing=50), threads=8)
    server.stop()
    check_store(server, traffic, items=items)
