"""The signal harness's options (tests/os/test_signals.py) and the throwaway database servers.

``--signal-trials N`` (or ``OSTOOLKIT_SIGNAL_TRIALS=N``) runs N random trials per command
instead of the default set; ``--signal-seed S`` (or ``OSTOOLKIT_SIGNAL_SEED=S``) replays a run.
The options are known to pytest when tests/os (or a file in it) is named on the command line;
the environment variables work however pytest is started.

The real-server fixtures start throwaway PostgreSQL, MariaDB and PgBouncer once per session
through ostoolkit's own ``throwaway.Servers`` (the code ``connections --real`` uses), for
tests/os/test_realdb_os.py. Session fixtures are set up before any function-scoped fixture,
so the root conftest's ``no_leftovers`` takes its snapshot after a server started, and it
leaves the servers' descendants (dbservers.SESSION_SERVERS) out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import dbservers
import pytest
from harness import signal_trials

from ostoolkit.connections.real.servers import RealServer, Servers, check_installed
from ostoolkit.errors import InvalidRequest
from ostoolkit.scratch import remove_run_dir


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
        signal_trials.set_seed(seed)


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"signal harness: seed {signal_trials.seed()} "
        f"(replay: OSTOOLKIT_SIGNAL_SEED={signal_trials.seed()}), "
        f"trials per command: {signal_trials.trials(config) or 'default set'}"
    )


@pytest.fixture(scope="session")
def throwaway() -> Iterator[Servers]:
    """The session's server supervisor, in a private directory removed at the end."""
    run_dir = Path(tempfile.mkdtemp(prefix="ostoolkit-tests-"))
    try:
        with Servers(run_dir) as servers:
            yield servers
    finally:
        remove_run_dir(run_dir)


def _start(kind: str, start: Callable[[], RealServer]) -> RealServer:
    """Start a server, or skip (fail under CI) when its programs are missing here."""
    try:
        check_installed(kind)
    except InvalidRequest as err:
        dbservers.skip_or_fail(str(err))
    server = start()
    dbservers.SESSION_SERVERS.add(server.pid)
    return server


@pytest.fixture(scope="session")
def postgres_server(throwaway: Servers) -> RealServer:
    """A throwaway PostgreSQL for the whole session (skipped, or failed under CI, if absent)."""
    return _start("postgres", lambda: throwaway.postgres(dbservers.MAX_CONNECTIONS))


@pytest.fixture(scope="session")
def mariadb_server(throwaway: Servers) -> RealServer:
    """A throwaway MariaDB for the whole session."""
    return _start("mariadb", throwaway.mariadb)


@pytest.fixture(scope="session")
def pgbouncer_server(throwaway: Servers, postgres_server: RealServer) -> RealServer:
    """A throwaway PgBouncer (transaction pooling, pool of 10) in front of the PostgreSQL."""
    pool, most = dbservers.PGBOUNCER_POOL_SIZE, dbservers.PGBOUNCER_MAX_CLIENTS
    return _start("pgbouncer", lambda: throwaway.pgbouncer(postgres_server, pool, most))


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: RealServer) -> str:
    """libpq URL of the session's PostgreSQL (user postgres, trust auth, loopback)."""
    return postgres_server.dsn


@pytest.fixture(scope="session")
def mariadb_dsn(mariadb_server: RealServer) -> str:
    """mysql:// URL of the session's MariaDB (root without password, loopback)."""
    return mariadb_server.dsn


@pytest.fixture(scope="session")
def pgbouncer_dsn(pgbouncer_server: RealServer) -> str:
    """libpq URL of the session's PgBouncer."""
    return pgbouncer_server.dsn
