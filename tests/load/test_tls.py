"""HTTPS against a loopback server with a throwaway CA: insecure, verified, rejected."""

from __future__ import annotations

import asyncio
import socket
import ssl
import textwrap
from pathlib import Path
from typing import Any

import pytest

from perfpilot.errors import ConnectError
from perfpilot.load.client import (
    HTTPConnection,
    encode_request,
    make_ssl_context,
    open_connection,
    split_url,
)
from perfpilot.load.plan import ExecutorSpec, FlowSpec, LoadPlan, RequestSpec
from perfpilot.load.runner import preflight, run_load
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def https_plan(url: str, vus: int = 4, **kwargs: Any) -> LoadPlan:
    return LoadPlan(
        name="tls",
        executor=ExecutorSpec(kind="constant-vus", vus=vus, duration_s=0.6, graceful_stop_s=1.0),
        requests=(RequestSpec(name="root", method="GET", url=f"{url}/"),),
        **kwargs,
    )


def test_the_server_speaks_https(tls_server: LoopbackServer) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize("processes", [1, 2])
def test_insecure_run_against_a_self_signed_server(
    tls_server: LoopbackServer, processes: int
) -> None:
    result = run_load(https_plan(tls_server.url, insecure=True), processes=processes)
    total = result.totals()
    assert total.requests > 20
    assert total.requests == tls_server.counts["/"]
    assert total.errors == {}
    assert total.latency.count == total.requests
    # one keep-alive TLS connection per VU (the TCP-only preflight probe never
    # finishes a handshake, so the server does not see it as a connection)
    assert tls_server.connections == 4


def test_verified_run_rejects_an_untrusted_certificate(tls_server: LoopbackServer) -> None:
    plan = https_plan(tls_server.url, vus=2)
    assert plan.insecure is False
    result = run_load(plan, processes=1)
    total = result.totals()
    assert total.requests > 0
    assert total.errors == {"tls": total.requests}
    assert total.latency.count == 0
    assert tls_server.total() == 0
    assert result.aborted is None
    # a failed handshake backs off like any failed connect: 2 VUs, 0.6 s, 50 ms apiece
    assert total.requests <= 2 * 0.6 / 0.05 + 4


def test_verified_run_trusts_a_ca_from_ssl_cert_file(
    tls_server: LoopbackServer, tls_ca: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plan has no CA option; OpenSSL's SSL_CERT_FILE is how a user trusts a private CA.
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    result = run_load(https_plan(tls_server.url), processes=1)
    total = result.totals()
    assert total.requests == tls_server.counts["/"] > 20
    assert total.errors == {}


def test_a_flow_over_https(tls_server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "flows.py"
    path.write_text(
        textwrap.dedent(
            """
            async def journey(session):
                r = await session.post("/login", name="login", json={"user": "ann"})
                token = r.json()["token"]
                me = await session.get("/me", name="me",
                                       headers={"Authorization": f"Bearer {token}"})
                session.check(me, "me is 200", me.status == 200)
            """
        )
    )
    plan = LoadPlan(
        name="tls-flow",
        executor=ExecutorSpec(kind="constant-vus", vus=2, duration_s=0.5),
        flow=FlowSpec(path=str(path), function="journey"),
        base_url=tls_server.url,
        insecure=True,
    )
    result = run_load(plan, processes=1)
    login = result.names["login"].totals()
    me = result.names["me"].totals()
    assert login.requests == tls_server.counts["/login"] > 5
    assert me.requests == tls_server.counts["/me"] == login.requests
    assert login.errors == me.errors == {}
    assert result.names["me"].checks == {"me is 200": [me.requests, 0]}


def test_a_flow_sees_a_rejected_certificate_as_status_0(
    tls_server: LoopbackServer, tmp_path: Path
) -> None:
    path = tmp_path / "flows.py"
    path.write_text(
        textwrap.dedent(
            """
            async def journey(session):
                r = await session.get("/", name="root")
                session.check(r, "tls error", r.status == 0 and r.error == "tls")
            """
        )
    )
    plan = LoadPlan(
        name="tls-flow",
        executor=ExecutorSpec(kind="constant-vus", vus=1, duration_s=0.4),
        flow=FlowSpec(path=str(path), function="journey"),
        base_url=tls_server.url,
    )
    result = run_load(plan, processes=1)
    root = result.names["root"]
    n = root.totals().requests
    assert n > 0
    assert root.totals().errors == {"tls": n}
    assert root.checks == {"tls error": [n, 0]}
    assert result.counters.get("flow_errors", 0) == 0
    assert tls_server.total() == 0


# The probe connects and closes before any TLS handshake; asyncio's TLS server
# side (the test server, not perfpilot) may then leave its socket to the GC.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_preflight_is_a_tcp_connect_for_https(tls_server: LoopbackServer) -> None:
    preflight(https_plan(tls_server.url))  # no handshake, so even an untrusted cert passes
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError, match="connection refused"):
        preflight(https_plan(f"https://127.0.0.1:{port}"))


class _Collect:
    def __init__(self) -> None:
        self.done: asyncio.Future[tuple[int, bytes | None]] = (
            asyncio.get_running_loop().create_future()
        )

    def on_response(
        self, conn: HTTPConnection, status: int, headers: dict[str, str] | None, body: bytes | None
    ) -> None:
        self.done.set_result((status, body))

    def on_error(self, conn: HTTPConnection, kind: str) -> None:
        self.done.set_exception(RuntimeError(kind))


async def _get(url: str, context: ssl.SSLContext) -> tuple[int, bytes | None]:
    origin, target = split_url(url)
    handler = _Collect()
    conn = await open_connection(
        origin, handler, want_headers=True, want_body=True, timeout_s=5, ssl_context=context
    )
    try:
        conn.send(encode_request("GET", origin, target))
        return await asyncio.wait_for(handler.done, 5)
    finally:
        conn.close()


def test_client_checks_the_host_name_against_the_certificate(
    tls_server: LoopbackServer, tls_ca: Any
) -> None:
    context = make_ssl_context(insecure=False)
    tls_ca.configure_trust(context)
    # the certificate names 127.0.0.1 as an IP address SAN
    assert asyncio.run(_get(f"{tls_server.url}/", context)) == (200, b"ok")
    # a name the certificate does not carry is refused, even from a trusted CA
    with LoopbackServer(ssl_context=_server_context(tls_ca, "example.test")) as other:
        with pytest.raises(ssl.SSLCertVerificationError):
            asyncio.run(_get(f"{other.url}/", context))
        assert other.total() == 0
    # insecure skips both the chain and the name
    assert asyncio.run(_get(f"{tls_server.url}/", make_ssl_context(insecure=True)))[0] == 200


def _server_context(ca: Any, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context
