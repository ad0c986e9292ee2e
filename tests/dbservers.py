"""The real-server tests' helpers: skip (or fail under CI) when a server or driver is missing.

The servers themselves are ostoolkit's own throwaway ones (ostoolkit.connections.real.servers):
the same code starts them for ``connections --real`` and for these tests. The session's
servers are children of pytest; ``SESSION_SERVERS`` lists them so that the autouse
``no_leftovers`` fixture does not count their backends (an autovacuum worker, say) as a
test's leftovers.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from ostoolkit.connections.real.servers import free_port as free_port  # re-exported for tests

# Generous, so that tests may open a few hundred clients.
MAX_CONNECTIONS = 300
# PgBouncer's funnel: clients beyond this share the same server connections.
PGBOUNCER_POOL_SIZE = 10
PGBOUNCER_MAX_CLIENTS = 2000
# The pids of the session's servers: their descendants are theirs, not a test's.
SESSION_SERVERS: set[int] = set()


def in_ci() -> bool:
    """True under CI (``CI`` set, as GitHub Actions and most others do): never skip there."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip a test whose server or driver is missing; fail instead under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def require_module(name: str) -> Any:
    """Import a driver module, or skip (fail under CI) naming the extra that installs it."""
    try:
        return __import__(name)
    except ImportError:
        skip_or_fail(f"{name} is not installed: pip install 'ostoolkit[db]'")
        raise
