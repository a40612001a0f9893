"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg
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
