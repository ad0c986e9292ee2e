"""Shared fixtures: every test must leave no child process and no extra thread behind.

The real-server fixtures live in tests/os/conftest.py, next to the tests that use them; the
database drivers' fixtures are here, for the pure DSN-path tests and the server tests alike.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dbservers
import psutil
import pytest


def _descendants() -> list[psutil.Process]:
    """This process's descendants, less those below the session's servers (their backends
    come and go: an autovacuum worker, say). Judged by each one's own ancestry, so a backend
    forked while the list is read is never mistaken for a test's leftover."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if not any(parent.pid in dbservers.SESSION_SERVERS for parent in proc.parents()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a child process (alive or zombie) or a thread behind."""
    threads_before = threading.active_count()
    before = {p.pid for p in _descendants()}
    yield
    left = [p for p in _descendants() if p.pid not in before]
    gone, alive = psutil.wait_procs(left, timeout=3)
    assert not alive, f"test left processes behind: {alive}"
    assert not gone, f"test left unreaped children: {gone}"
    assert threading.active_count() <= threads_before, "test left a thread running"


@pytest.fixture(scope="module")
def psycopg():
    """The PostgreSQL driver, or a skip (a failure under CI)."""
    return dbservers.require_module("psycopg")


@pytest.fixture(scope="module")
def pymysql():
    """The MySQL driver, or a skip (a failure under CI)."""
    return dbservers.require_module("pymysql")
