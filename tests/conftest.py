"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import pg, redis_server
from tests.loopback import LoopbackServer
from tests.pg import PostgresServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A fresh loopback HTTP server for one test."""
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL 15 server with pg_stat_statements, for the whole session."""
    why = pg.available()
    if why is not None:
        pytest.fail(why)
    with pg.postgres_server() as server:
        yield server


@pytest.fixture
def redis() -> Iterator[redis_server.RedisServer]:
    """A fresh throwaway redis-server on 127.0.0.1 for one test (``.url``, ``.port``)."""
    why = redis_server.available()
    if why is not None:
        pytest.fail(why)
    with redis_server.redis_server() as srv:
        yield srv


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    """A throwaway certificate authority (a ``trustme.CA``) for the whole session."""
    import trustme  # dev extra

    return trustme.CA()


@pytest.fixture
def tls_server(tls_ca: Any) -> Iterator[LoopbackServer]:
    """A fresh loopback HTTPS server; its certificate (for 127.0.0.1 and localhost)
    is signed by ``tls_ca``, so clients that do not trust that CA reject it."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with LoopbackServer(ssl_context=context) as srv:
        yield srv
