"""Shared fixtures: every test must leave no child process and no extra thread behind.

The real-server fixtures start throwaway PostgreSQL, MariaDB and PgBouncer once per session
(tests/dbservers.py). Session fixtures are set up before any function-scoped fixture, so
``no_leftovers`` takes its snapshot after a server started; the servers are detached from
pytest anyway, so their backends and threads are never counted as a test's children.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dbservers
import psutil
import pytest


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a child process (alive or zombie) or a thread behind."""
    me = psutil.Process()
    threads_before = threading.active_count()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    left = [p for p in me.children(recursive=True) if p.pid not in before]
    gone, alive = psutil.wait_procs(left, timeout=3)
    assert not alive, f"test left processes behind: {alive}"
    assert not gone, f"test left unreaped children: {gone}"
    assert threading.active_count() <= threads_before, "test left a thread running"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dbservers.Server]:
    """A throwaway PostgreSQL for the whole session (skipped, or failed under CI, if absent)."""
    server = dbservers.start_or_skip(dbservers.start_postgres)
    yield server
    dbservers.stop_server(server)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[dbservers.Server]:
    """A throwaway MariaDB for the whole session."""
    server = dbservers.start_or_skip(dbservers.start_mariadb)
    yield server
    dbservers.stop_server(server)


@pytest.fixture(scope="session")
def pgbouncer_server(postgres_server: dbservers.Server) -> Iterator[dbservers.Server]:
    """A throwaway PgBouncer (transaction pooling, pool of 10) in front of the PostgreSQL."""
    server = dbservers.start_or_skip(lambda: dbservers.start_pgbouncer(postgres_server.port))
    yield server
    dbservers.stop_server(server)


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: dbservers.Server) -> str:
    """libpq URL of the session's PostgreSQL (user postgres, trust auth, loopback)."""
    return postgres_server.dsn


@pytest.fixture(scope="session")
def mariadb_dsn(mariadb_server: dbservers.Server) -> str:
    """mysql:// URL of the session's MariaDB (root without password, loopback)."""
    return mariadb_server.dsn


@pytest.fixture(scope="session")
def pgbouncer_dsn(pgbouncer_server: dbservers.Server) -> str:
    """libpq URL of the session's PgBouncer."""
    return pgbouncer_server.dsn
