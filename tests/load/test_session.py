"""Multi-step flows against a real loopback server: tokens, vars, checks, errors, timing."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from perfpilot.load.plan import ExecutorSpec, FlowSpec, LoadPlan
from perfpilot.load.runner import run_load
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def flow_plan(
    tmp_path: Path,
    source: str,
    base_url: str,
    executor: ExecutorSpec | None = None,
    **kwargs: object,
) -> LoadPlan:
    """A plan whose flow is ``journey`` in a real file written from ``source``."""
    path = tmp_path / "flows.py"
    path.write_text(textwrap.dedent(source))
    return LoadPlan(  # type: ignore[arg-type]
        name="flow",
        executor=executor or ExecutorSpec(kind="constant-vus", vus=2, duration_s=0.6),
        flow=FlowSpec(path=str(path), function="journey"),
        base_url=base_url,
        **kwargs,
    )


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


LOGIN_FLOW = """
    async def journey(session):
        r = await session.post("/login", name="login", json={"user": f"u{session.vu}"})
        token = r.json()["token"]
        me = await session.get("/me", name="me", headers={"Authorization": f"Bearer {token}"})
        session.check(me, "me is 200", me.status == 200)
        anon = await session.get("/me", name="me anonymous")
        session.check(anon, "anonymous is 401", anon.status == 401)
"""


@pytest.mark.parametrize("processes", [1, 2])
def test_login_token_is_carried_between_steps(
    server: LoopbackServer, tmp_path: Path, processes: int
) -> None:
    plan = flow_plan(tmp_path, LOGIN_FLOW, server.url)
    result = run_load(plan, processes=processes)
    login = result.names["login"].totals()
    me = result.names["me"].totals()
    anonymous = result.names["me anonymous"].totals()
    assert login.requests > 10
    assert login.errors == {}
    assert me.errors == {}
    assert login.requests == server.counts["/login"]
    assert me.requests + anonymous.requests == server.counts["/me"]
    assert me.requests == anonymous.requests == login.requests
    assert anonymous.errors == {"status_4xx": anonymous.requests}
    assert result.names["me"].checks == {"me is 200": [me.requests, 0]}
    assert result.names["me anonymous"].checks == {"anonymous is 401": [anonymous.requests, 0]}
    assert login.latency.count == login.requests
    assert result.counters["iterations"] == login.requests
    assert result.counters.get("flow_errors", 0) == 0
    assert result.counters["vus_max"] == 2


def test_vars_persist_across_iterations_of_a_vu(server: LoopbackServer, tmp_path: Path) -> None:
    source = """
        async def journey(session):
            if "token" not in session.vars:
                r = await session.post("/login", name="login", json={"user": "ann"})
                session.vars["token"] = r.json()["token"]
                session.vars["first_iteration"] = session.iteration
            auth = {"Authorization": f"Bearer {session.vars['token']}"}
            me = await session.get("/me", name="me", headers=auth)
            session.check(me, "authorised", me.status == 200)
            session.check(me, "logged in on iteration 1", session.vars["first_iteration"] == 1)
    """
    executor = ExecutorSpec(kind="constant-vus", vus=3, duration_s=0.6)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    assert result.names["login"].totals().requests == server.counts["/login"] == 3
    me = result.names["me"].totals()
    assert me.requests == server.counts["/me"] > 10
    assert me.errors == {}
    assert result.counters["iterations"] == me.requests
    checks = result.names["me"].checks
    assert checks["authorised"] == [me.requests, 0]
    assert checks["logged in on iteration 1"] == [me.requests, 0]


def test_vars_persist_in_worker_processes(server: LoopbackServer, tmp_path: Path) -> None:
    source = """
        async def journey(session):
            if "token" not in session.vars:
                r = await session.post("/login", name="login", json={"user": "ann"})
                session.vars["token"] = r.json()["token"]
            await session.get("/me", name="me",
                              headers={"Authorization": f"Bearer {session.vars['token']}"})
    """
    executor = ExecutorSpec(kind="constant-vus", vus=4, duration_s=0.6)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=2)
    # one login per VU, whichever process runs it
    assert result.names["login"].totals().requests == server.counts["/login"] == 4
    me = result.names["me"].totals()
    assert me.requests == server.counts["/me"] > 10
    assert me.errors == {}


def test_names_group_requests_and_default_to_method_and_path(
    server: LoopbackServer, tmp_path: Path
) -> None:
    source = """
        async def journey(session):
            for item in (1, 2, 3):
                await session.get(f"/status?code=200&item={item}", name="item")
            await session.get("/json")
            await session.post("/echo", body="hi")
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.4)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    assert set(result.names) == {"item", "GET /json", "POST /echo"}
    items = result.names["item"].totals().requests
    assert items == server.counts["/status"] == 3 * result.counters["iterations"]
    assert result.names["GET /json"].totals().requests == server.counts["/json"]
    assert result.names["POST /echo"].totals().requests == server.counts["/echo"]


def test_checks_on_a_response_count_under_its_name(server: LoopbackServer, tmp_path: Path) -> None:
    source = """
        async def journey(session):
            r = await session.get("/json", name="doc")
            session.check(r, "status ok", r.json()["status"] == "ok")
            session.check(r, "has no errors key", "errors" in r.json())
            session.check(r, "content length", r.headers["content-length"] == str(len(r.body)))
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.4)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    n = result.names["doc"].totals().requests
    assert n == server.counts["/json"] > 0
    assert result.names["doc"].checks == {
        "status ok": [n, 0],
        "has no errors key": [0, n],
        "content length": [n, 0],
    }
    # checks are not errors
    assert result.names["doc"].totals().errors == {}


def test_a_timeout_is_a_response_with_status_0(server: LoopbackServer, tmp_path: Path) -> None:
    source = """
        async def journey(session):
            r = await session.get("/hang", name="hang")
            session.check(r, "status 0", r.status == 0 and not r.ok)
            session.check(r, "error is timeout", r.error == "timeout")
            session.check(r, "no body", r.body == b"" and r.headers == {})
            await session.get("/", name="after")
    """
    executor = ExecutorSpec(kind="constant-vus", vus=2, duration_s=0.7, graceful_stop_s=1.0)
    plan = flow_plan(tmp_path, source, server.url, executor, request_timeout_s=0.2)
    result = run_load(plan, processes=1)
    hang = result.names["hang"]
    n = hang.totals().requests
    assert n == server.counts["/hang"] >= 2
    assert hang.totals().errors == {"timeout": n}
    assert hang.totals().latency.count == 0
    assert hang.checks == {
        "status 0": [n, 0],
        "error is timeout": [n, 0],
        "no body": [n, 0],
    }
    # the flow went on after the failed step, on a new connection
    assert result.names["after"].totals().requests == server.counts["/"] == n
    assert result.names["after"].totals().errors == {}
    assert result.counters.get("flow_errors", 0) == 0


def test_a_refused_connection_is_a_response_with_status_0(
    server: LoopbackServer, tmp_path: Path
) -> None:
    source = f"""
        async def journey(session):
            r = await session.get("http://127.0.0.1:{closed_port()}/", name="nowhere")
            session.check(r, "refused", r.status == 0 and r.error == "refused")
            await session.get("/", name="here")
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.5)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    nowhere = result.names["nowhere"]
    n = nowhere.totals().requests
    assert n > 0
    assert nowhere.totals().errors == {"refused": n}
    assert nowhere.checks == {"refused": [n, 0]}
    assert result.names["here"].totals().requests == server.counts["/"] == n
    assert result.counters.get("flow_errors", 0) == 0
    # connect failures back off like scenario requests do (50 ms a time),
    # instead of spinning on a dead port
    assert n < 25


def test_a_flow_that_raises_is_counted_and_the_run_goes_on(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
        async def journey(session):
            r = await session.get("/", name="root")
            if session.iteration % 2 == 0:
                raise RuntimeError("boom")
            await session.get("/json", name="json")
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.5)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    iterations = result.counters["iterations"]
    assert iterations == server.counts["/"] > 4
    assert result.counters["flow_errors"] == iterations // 2
    assert result.names["json"].totals().requests == server.counts["/json"]
    assert server.counts["/json"] == iterations - iterations // 2
    # said once, then counted silently
    assert capsys.readouterr().err.count("RuntimeError: boom") == 1


def test_a_flow_that_raises_in_worker_processes(server: LoopbackServer, tmp_path: Path) -> None:
    source = """
        async def journey(session):
            await session.get("/", name="root")
            raise ValueError("always")
    """
    executor = ExecutorSpec(kind="constant-vus", vus=2, duration_s=0.5)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=2)
    n = result.names["root"].totals().requests
    assert n == server.counts["/"] > 0
    assert result.counters["flow_errors"] == result.counters["iterations"] == n


def test_two_requests_at_once_on_one_session_fail_clearly(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
        import asyncio

        async def journey(session):
            outcomes = await asyncio.gather(
                session.get("/"), session.get("/json"), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.3)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    assert result.counters["flow_errors"] == result.counters["iterations"] > 0
    assert "one request at a time" in capsys.readouterr().err
    # the first request still completes and is counted
    assert result.names["GET /"].totals().requests == server.counts["/"]
    assert result.names["GET /"].totals().errors == {}


@pytest.mark.parametrize("follow", [False, True])
def test_redirects_are_followed_only_when_asked(
    server: LoopbackServer, tmp_path: Path, follow: bool
) -> None:
    source = """
        async def journey(session):
            r = await session.get("/redirect", name="r")
            session.check(r, "status 200", r.status == 200)
            session.check(r, "status 302", r.status == 302 and r.headers["location"] == "/")
            session.check(r, "no location", "location" not in r.headers)
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.4)
    plan = flow_plan(tmp_path, source, server.url, executor, follow_redirects=follow)
    result = run_load(plan, processes=1)
    r = result.names["r"]
    n = r.totals().requests
    assert n == server.counts["/redirect"] > 0
    assert r.totals().errors == {}
    if follow:
        assert server.counts["/"] == n
        assert r.checks == {"status 200": [n, 0], "status 302": [0, n], "no location": [n, 0]}
    else:
        assert server.counts["/"] == 0
        assert r.checks == {"status 200": [0, n], "status 302": [n, 0], "no location": [0, n]}


def test_followed_redirects_resolve_locations_and_keep_the_request(
    server: LoopbackServer, tmp_path: Path
) -> None:
    with LoopbackServer() as other:
        source = f"""
            from urllib.parse import quote

            async def journey(session):
                auth = {{"Authorization": "Bearer t-ann"}}
                # a relative Location resolves against the redirecting URL
                r = await session.get("/nested/redirect?to=json", name="relative")
                session.check(r, "resolved", r.status == 200)
                # on the same origin the request's own headers stay
                r = await session.get("/redirect?to=/me", name="same origin", headers=auth)
                session.check(r, "still authorised", r.status == 200)
                # ... and on another origin credentials are dropped
                there = quote("{other.url}/headers")
                r = await session.get(f"/redirect?to={{there}}", name="other origin", headers=auth)
                names = [k.lower() for k, _ in r.json()]
                session.check(r, "credentials dropped", "authorization" not in names)
                # 307 repeats the method and body; 303 turns into a GET without a body
                r = await session.post("/redirect?code=307&to=/echo", name="307", json={{"a": 1}})
                session.check(r, "body repeated", r.body == b'{{"a": 1}}')
                r = await session.post("/redirect?code=303&to=/headers", name="303", json={{"a": 1}})
                names = [k.lower() for k, _ in r.json()]
                session.check(r, "no body", "content-type" not in names)
                session.check(r, "no length", "content-length" not in names)
                # a Location that is not http(s) is an error of kind "redirect"
                r = await session.get("/redirect?to=ftp://example.invalid/", name="bad")
                session.check(r, "bad location", r.status == 0 and r.error == "redirect")
        """
        executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.3)
        plan = flow_plan(tmp_path, source, server.url, executor, follow_redirects=True)
        result = run_load(plan, processes=1)
    assert result.counters.get("flow_errors", 0) == 0
    n = result.counters["iterations"]
    assert n > 0
    assert server.counts["/nested/json"] == n
    assert other.counts["/headers"] == n
    for name, stats in result.names.items():
        assert stats.totals().requests == n, name
        for check, (passes, fails) in stats.checks.items():
            assert (passes, fails) == (n, 0), (name, check)
    assert result.names["bad"].totals().errors == {"redirect": n}


def test_open_model_times_the_first_request_from_the_intended_start(
    server: LoopbackServer, tmp_path: Path
) -> None:
    # 10 iterations a second, one VU, and an iteration takes at least 200 ms:
    # iteration k is due at 100·k ms but starts at about 200·k ms. Its first
    # request counts that wait; the second request is timed from its own send.
    source = """
        async def journey(session):
            await session.get("/delay?ms=200", name="first")
            await session.get("/", name="second")
    """
    executor = ExecutorSpec(
        kind="constant-arrival-rate",
        rate=10,
        duration_s=1.0,
        pre_allocated_vus=1,
        max_vus=1,
        graceful_stop_s=3.0,
    )
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    first = result.names["first"].totals()
    second = result.names["second"].totals()
    # iterations still waiting when the run ends are dropped and counted
    assert first.requests == server.counts["/delay"] >= 4
    assert first.requests + result.counters["dropped_iterations"] == 10
    assert second.requests == server.counts["/"] == first.requests
    assert first.service.percentile(100) * 1000 < 300
    # iteration 4, due at 400 ms, started after four 200 ms iterations
    assert first.latency.percentile(100) * 1000 > first.service.percentile(100) * 1000 + 300
    assert first.latency.percentile(0) * 1000 >= 200 * 0.99 - 1.5
    assert second.latency.percentile(100) == second.service.percentile(100)
    assert second.latency.percentile(100) * 1000 < 50


def test_closed_model_times_requests_from_their_send(
    server: LoopbackServer, tmp_path: Path
) -> None:
    source = """
        async def journey(session):
            await session.get("/delay?ms=20", name="first")
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.4)
    result = run_load(flow_plan(tmp_path, source, server.url, executor), processes=1)
    first = result.names["first"].totals()
    assert first.requests > 5
    assert first.latency.percentile(100) == first.service.percentile(100)
    assert first.latency.percentile(0) * 1000 >= 20 * 0.99 - 1.5


def test_request_bodies_headers_and_default_headers(server: LoopbackServer, tmp_path: Path) -> None:
    source = """
        import json

        async def journey(session):
            r = await session.post("/echo", name="json", json={"a": [1, 2]})
            session.check(r, "json body", json.loads(r.body) == {"a": [1, 2]})
            r = await session.post("/echo", name="form", data={"q": "a b", "n": "1"})
            session.check(r, "form body", r.text == "q=a+b&n=1")
            r = await session.put("/echo", name="raw", body=b"\\x00raw")
            session.check(r, "raw body", r.body == b"\\x00raw")
            # a header given to the request replaces the default of the same name
            r = await session.get("/headers", name="own", headers={"authorization": "Bearer t-x"})
            sent = [value for key, value in r.json() if key.lower() == "authorization"]
            session.check(r, "own header wins", sent == ["Bearer t-x"])
            me = await session.get("/me", name="me", headers={"authorization": "Bearer t-x"})
            session.check(me, "authorised", me.status == 200)
            me = await session.get("/me", name="me default")
            session.check(me, "default header", me.status == 401)
    """
    executor = ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.3)
    plan = flow_plan(
        tmp_path,
        source,
        server.url,
        executor,
        default_headers=(("Authorization", "Bearer nope"),),
    )
    result = run_load(plan, processes=1)
    for name, check in (
        ("json", "json body"),
        ("form", "form body"),
        ("raw", "raw body"),
        ("own", "own header wins"),
        ("me", "authorised"),
        ("me default", "default header"),
    ):
        passes, fails = result.names[name].checks[check]
        assert passes > 0 and fails == 0, (name, check)
