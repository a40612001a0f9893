"""Real apps with no perfpilot line, started only through ``perfpilot run``.

Flask and Django under gunicorn with two sync workers, FastAPI under uvicorn
with two worker processes (spawned, not forked), Django's ASGI handler under
uvicorn and Django's own ``runserver``. Each serves requests that run SQL
(sqlite3) and outbound calls (requests, httpx) to a loopback server. The
flush interval is ten minutes, so nothing reaches the store before the
server is stopped: every count in the store was written at shutdown, the last
seconds included.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfpilot.store import open_store
from tests.autorun.apps import CALLS_PER_REQUEST, QUERIES_PER_REQUEST, make_app_db
from tests.autorun.harness import PYTHON, Command, clean_env, perfpilot, sent_rows
from tests.loopback import LoopbackServer
from tests.netutil import free_port, get

pytestmark = pytest.mark.integration

ORDER = "/orders/{order_id}"
ITEMS = "/orders/{order_id}/items"
BOOM = "/boom"
UNMATCHED = "<unmatched>"
FLUSH_INTERVAL_S = "600"


def gunicorn(app: str, *options: str) -> list[str]:
    return [PYTHON, "-m", "gunicorn", "-k", "sync", "-w", "2", "--graceful-timeout", "20",
            "--log-level", "warning", "--no-control-socket", *options, "-b", "127.0.0.1:{port}", app]  # fmt: skip


def uvicorn(app: str, *options: str) -> list[str]:
    return [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning", "--no-access-log", *options]  # fmt: skip


COMMANDS = {
    "flask-gunicorn-2-workers": (gunicorn("tests.autorun.apps.flask_app:app"), {}),
    "flask-gunicorn-preload": (gunicorn("tests.autorun.apps.flask_app:app", "--preload"), {}),
    "fastapi-uvicorn-2-workers": (uvicorn("tests.autorun.apps.fastapi_app:app", "--workers", "2"), {}),
    "fastapi-uvicorn-sigint": (uvicorn("tests.autorun.apps.fastapi_app:app", "--workers", "2"), {}),
    "django-gunicorn-2-workers": (gunicorn("tests.autorun.apps.django_app:application"), {}),
    "django-asgi-uvicorn": (uvicorn("tests.autorun.apps.django_app:application"),
                            {"PERFPILOT_TEST_DJANGO": "asgi"}),
    # no server-side SIGTERM handler here: perfpilot's own flushes, then the process dies of it
    "django-runserver": ([PYTHON, "-m", "tests.autorun.apps.django_app", "runserver", "--noreload",
                          "127.0.0.1:{port}"], {}),
}  # fmt: skip
# how each stops on SIGTERM, as without perfpilot: gunicorn and uvicorn's
# supervisor exit 0; a single uvicorn server re-raises the signal after its
# graceful shutdown, and runserver has no handler: both die of it
EXIT_ON_SIGTERM = {"flask-gunicorn-2-workers": 0, "flask-gunicorn-preload": 0,
                   "fastapi-uvicorn-2-workers": 0, "django-gunicorn-2-workers": 0,
                   "fastapi-uvicorn-sigint": 0}  # fmt: skip
# Ctrl-C: uvicorn's supervisor stops its workers gracefully. (gunicorn's Ctrl-C
# is a quick shutdown that may abort a response already sent but not yet
# closed: perfpilot records that request as failed, so counts are not exact.)
STOP_SIGNAL = {"fastapi-uvicorn-sigint": signal.SIGINT}


@pytest.fixture
def upstream() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def start(
    tmp_path: Path, argv: list[str], env: dict[str, str], upstream: str
) -> tuple[Command, int]:
    app_db = tmp_path / "app.db"
    make_app_db(str(app_db))
    port = free_port()
    command = Command(
        [*perfpilot(), "run", "--store", str(tmp_path / "perfpilot.db"), "--service", "shop",
         "--flush-interval", FLUSH_INTERVAL_S, "--", *(a.replace("{port}", str(port)) for a in argv)],
        clean_env(PERFPILOT_TEST_APP_DB=str(app_db), PERFPILOT_TEST_UPSTREAM=upstream, **env),
        tmp_path / "server.log",
    )  # fmt: skip
    command.start().wait_listening(port)
    return command, port


def plan() -> list[tuple[str, str]]:
    """(path, expected route template) pairs."""
    pairs = (
        [(f"/orders/{i % 7}", ORDER) for i in range(24)]
        + [(f"/orders/{i % 5}/items", ITEMS) for i in range(10)]
        + [(BOOM, BOOM)] * 3
        + [(f"/missing/{i}", UNMATCHED) for i in range(4)]
    )
    pairs.sort(key=lambda p: hash(p[0]) % 101)
    return pairs


def send(port: int) -> tuple[collections.Counter[tuple[str, int]], set[int]]:
    sent: collections.Counter[tuple[str, int]] = collections.Counter()
    pids: set[int] = set()

    def one(item: tuple[str, str]) -> tuple[str, int, bytes]:
        status, body = get(f"http://127.0.0.1:{port}{item[0]}")
        return item[1], status, body

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for route, status, body in pool.map(one, plan()):
            sent[route, status] += 1
            if route == ORDER:
                pids.add(json.loads(body)["pid"])
    return sent, pids


@pytest.mark.parametrize("name", COMMANDS)
def test_app_started_through_perfpilot_run_is_monitored(
    tmp_path: Path, upstream: LoopbackServer, name: str
) -> None:
    argv, env = COMMANDS[name]
    command, port = start(tmp_path, argv, env, upstream.url)
    try:
        sent, _ = send(port)
        assert sent[ORDER, 200] == 24 and sent[ITEMS, 200] == 10
        assert sent[BOOM, 500] == 3 and sent[UNMATCHED, 404] == 4
        store = tmp_path / "perfpilot.db"
        assert not store.exists(), "written before shutdown: the test would not show the last flush"
        code = command.signal(STOP_SIGNAL.get(name, signal.SIGTERM))
    finally:
        command.kill()
    output = command.output()
    assert code == EXIT_ON_SIGTERM.get(name, -signal.SIGTERM), output
    assert "perfpilot:" not in output, output  # nothing to say: no warning, no "nothing found"
    with open_store(str(store)) as db:
        assert db.app_requests(service="default") == []
        requests = db.app_requests(service="shop")
        stored: dict[tuple[str, str, int], int] = collections.Counter()
        for r in requests:
            stored[r.route, r.method, r.status_class] += r.count
        assert dict(stored) == sent_rows(sent), output
        items = [r for r in requests if r.route == ITEMS]
        assert sum(r.db_count for r in items) == QUERIES_PER_REQUEST * 10
        assert sum(r.outbound_count for r in items) == CALLS_PER_REQUEST * 10
        assert sum(r.db_count + r.outbound_count for r in requests if r.route != ITEMS) == 0
        queries = [q for q in db.app_queries() if q.route == ITEMS]
        assert sum(q.count for q in queries) == QUERIES_PER_REQUEST * 10
        assert len({q.fingerprint for q in queries}) == QUERIES_PER_REQUEST
        outbound = db.app_outbound()
        assert {(o.route, o.template) for o in outbound} == {(ITEMS, "/json")}
        assert sum(o.count for o in outbound) == CALLS_PER_REQUEST * 10
        assert db.app_drops() == {}
    assert upstream.counts["/json"] == CALLS_PER_REQUEST * 10


def test_an_app_instrumented_in_code_is_not_counted_twice(
    tmp_path: Path, upstream: LoopbackServer
) -> None:
    # tests/instrument/apps/flask_app.py calls perfpilot.instrument(app, store=...) itself
    store = tmp_path / "perfpilot.db"
    argv = gunicorn("tests.instrument.apps.flask_app:app")
    command, port = start(tmp_path, argv, {"PERFPILOT_TEST_STORE": str(store)}, upstream.url)
    try:
        statuses = collections.Counter(
            get(f"http://127.0.0.1:{port}/orders/{i}")[0] for i in range(12)
        )
        assert statuses == {200: 12}
        code = command.signal(signal.SIGTERM)
    finally:
        command.kill()
    assert code == 0, command.output()
    with open_store(str(store)) as db:
        assert sum(r.count for r in db.app_requests()) == 12, command.output()


@pytest.mark.parametrize("entry", ["app", "instrumented"])
def test_an_app_perfpilot_does_not_recognize_runs_unchanged_with_one_line(
    tmp_path: Path, upstream: LoopbackServer, entry: str
) -> None:
    in_code = tmp_path / "in-code.db"
    argv = gunicorn(f"tests.autorun.apps.plain_wsgi:{entry}")
    env = {"PERFPILOT_TEST_STORE": str(in_code)} if entry == "instrumented" else {}
    command, port = start(tmp_path, argv, env, upstream.url)
    try:
        assert [get(f"http://127.0.0.1:{port}/x/{i}") for i in range(6)] == [(200, b"plain")] * 6
        code = command.signal(signal.SIGTERM)
    finally:
        command.kill()
    output = command.output()
    assert code == 0, output
    assert not (tmp_path / "perfpilot.db").exists()  # perfpilot run's own store: nothing found
    if entry == "app":
        # the master says it once, for itself and both workers
        assert output.count("perfpilot:") == 1, output
        assert "no Flask, FastAPI/Starlette or Django app found in python -m gunicorn" in output
        assert not in_code.exists()
    else:
        # instrumented in its code: the workers tell the master, which says nothing
        assert "perfpilot:" not in output, output
        with open_store(str(in_code)) as db:
            assert sum(r.count for r in db.app_requests()) == 6
