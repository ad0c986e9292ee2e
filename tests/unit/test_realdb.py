"""Real-server measurement without a server: request checks, missing drivers, host locality.

Nothing here connects to a database or forks; the tests that do are in tests/os/test_realdb_os.py.
"""

import builtins
import resource

import dbservers
import pytest

from ostoolkit import budget
from ostoolkit.connections.dsn import discovery
from ostoolkit.connections.dsn import measure as realdb
from ostoolkit.connections.dsn.measure import SERVERS, measure_real_server
from ostoolkit.errors import InvalidRequest, LimitExceeded


@pytest.mark.parametrize(
    ("kind", "dsn"),
    [
        ("postgres", "host=127.0.0.1 port=notaport"),
        ("postgres", "this is = not a dsn"),
        ("mysql", "postgresql://127.0.0.1/x"),
        ("mysql", "mysql://127.0.0.1:99999/x"),
        ("oracle", "oracle://x"),
    ],
)
def test_bad_requests_are_refused(kind, dsn, psycopg, pymysql):
    with pytest.raises(InvalidRequest):
        measure_real_server(kind, dsn, [1])


@pytest.mark.parametrize("clients", [[], [0], [realdb.MAX_CLIENTS + 1]])
def test_bad_client_counts_are_refused(clients):
    with pytest.raises(InvalidRequest):
        measure_real_server("postgres", "postgresql://127.0.0.1/x", clients)


@pytest.mark.parametrize("kind", SERVERS)
def test_missing_driver_says_how_to_install(kind, monkeypatch):
    real_import = builtins.__import__

    def no_drivers(name, *args, **kwargs):
        if name.split(".")[0] in ("psycopg", "pymysql"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_drivers)
    with pytest.raises(InvalidRequest, match=r"pip install 'ostoolkit\[db\]'"):
        measure_real_server(kind, "postgresql://127.0.0.1/x", [1])


def test_open_files_limit_is_raised_then_restored():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * budget.FD_MARGIN
    if hard != resource.RLIM_INFINITY and hard < needed * 4:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} too low to test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        with budget.enough_open_files(needed):
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > needed
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (needed, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_open_files_over_the_hard_limit_are_refused(monkeypatch):
    monkeypatch.setattr(budget.resource, "getrlimit", lambda _: (256, 512))
    with pytest.raises(LimitExceeded, match="ulimit -Hn"), budget.enough_open_files(1000):
        pass


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("", True),
        ("/run/postgresql", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("192.0.2.1", False),
        ("a,b", False),
    ],
)
def test_locality(host, local):
    assert (discovery.locality(host) is None) == local


def test_missing_server_skips_here_but_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        dbservers.skip_or_fail("pgbouncer not found")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        dbservers.skip_or_fail("pgbouncer not found")


def test_cli_refuses_real_and_builtin_together():
    from click.testing import CliRunner

    from ostoolkit import cli as cli_module

    result = CliRunner().invoke(
        cli_module.cli,
        ["connections", "--mysql", "mysql://root@127.0.0.1:1/x", "--model", "thread"],
    )
    assert result.exit_code == 2
    assert "--model runs the built-in servers" in result.output
