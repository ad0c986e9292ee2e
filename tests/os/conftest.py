"""The signal harness's options (tests/os/test_signals.py) and the throwaway database servers.

``--signal-trials N`` (or ``OSTOOLKIT_SIGNAL_TRIALS=N``) runs N random trials per command
instead of the default set; ``--signal-seed S`` (or ``OSTOOLKIT_SIGNAL_SEED=S``) replays a run.
The options are known to pytest when tests/os (or a file in it) is named on the command line;
the environment variables work however pytest is started.

The real-server fixtures start throwaway PostgreSQL, MariaDB and PgBouncer once per session
(tests/dbservers.py), for tests/os/test_realdb_os.py. Session fixtures are set up before any
function-scoped fixture, so the root conftest's ``no_leftovers`` takes its snapshot after a
server started; the servers are detached from pytest anyway, so their backends and threads are
never counted as a test's children.
"""

from __future__ import annotations

from collections.abc import Iterator

import dbservers
import harness
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ostoolkit signal harness")
    group.addoption(
        "--signal-trials",
        type=int,
        default=None,
        help="random signal trials per command instead of the default set "
        "(env OSTOOLKIT_SIGNAL_TRIALS)",
    )
    group.addoption(
        "--signal-seed",
        type=int,
        default=None,
        help="seed of the signal trials' delays, to replay a failure (env OSTOOLKIT_SIGNAL_SEED)",
    )


def pytest_configure(config: pytest.Config) -> None:
    seed = config.getoption("signal_seed", default=None)
    if seed is not None:
        harness.set_seed(seed)


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"signal harness: seed {harness.seed()} "
        f"(replay: OSTOOLKIT_SIGNAL_SEED={harness.seed()}), "
        f"trials per command: {harness.trials(config) or 'default set'}"
    )


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
