"""Real PostgreSQL, MariaDB and PgBouncer: one backend or thread per connection, the pool's funnel.

The servers are the session's throwaway ones (tests/dbservers.py). Tests assert invariants
(processes grow by one per connection, the pool never exceeds its size, everything is closed
afterwards), never how much a connection costs.
"""

import os

import dbservers
import psutil
import pytest
from harness.waiting import wait_until

from ostoolkit.connections.dsn import discovery
from ostoolkit.connections.dsn.measure import measure_real_server
from ostoolkit.errors import OstoolkitError

CLIENTS = (5, 20)
DEADLINE_S = 10.0


def by_id(measurement):
    """Results keyed by id."""
    return {r.id: r for r in measurement.results}


def pg_children(server):
    """The postmaster's children right now (auxiliary processes and backends)."""
    return psutil.Process(server.pid).children()


def test_servers_are_supervised_children(postgres_server, mariadb_server, pgbouncer_server):
    """Each server is pytest's own child, leads its own session, and runs as the package's
    system user when the tests run as root (PostgreSQL refuses root)."""
    mine = {p.pid for p in psutil.Process().children()}
    users = {"postgres": "postgres", "mariadb": "mysql", "pgbouncer": "postgres"}
    for server in (postgres_server, mariadb_server, pgbouncer_server):
        proc = psutil.Process(server.pid)
        assert server.pid in mine, f"{server.kind} is not a child of pytest"
        assert os.getsid(server.pid) == server.pid, f"{server.kind} shares a session"
        if os.geteuid() == 0:
            assert proc.username() == users[server.kind]


def test_postgres_one_backend_per_connection(postgres_server, psycopg):
    before = len(pg_children(postgres_server))
    measurement = measure_real_server("postgres", postgres_server.dsn, CLIENTS)
    results = by_id(measurement)
    assert set(results) >= {
        "conn.postgres.mem_per_conn",
        "conn.postgres.procs",
        "conn.postgres.threads",
        "conn.postgres.connect_ms",
    }
    assert not measurement.warnings
    memory = results["conn.postgres.mem_per_conn"]
    assert memory.extra["server_pid"] == postgres_server.pid
    assert memory.extra["version"].startswith("PostgreSQL ")
    by_clients = memory.extra["by_clients"]
    assert list(by_clients) == ["0", "5", "20"]
    for total in by_clients.values():
        assert 0 < total["uss"] <= total["pss"] <= total["rss"]
    assert by_clients["20"]["processes"] - by_clients["0"]["processes"] >= 20
    assert results["conn.postgres.procs"].median >= 20
    assert results["conn.postgres.threads"].median >= results["conn.postgres.procs"].median
    assert memory.median > 0
    assert memory.extra["slope_bytes"]["pss"] > 0
    assert results["conn.postgres.connect_ms"].n == 20
    assert any("backend process" in f for f in measurement.findings)
    wait_until(
        lambda: len(pg_children(postgres_server)) <= before,
        DEADLINE_S,
        f"backends back down within {DEADLINE_S} s",
    )


def test_mariadb_one_thread_per_connection(mariadb_server, pymysql):
    measurement = measure_real_server("mysql", mariadb_server.dsn, CLIENTS)
    results = by_id(measurement)
    assert not measurement.warnings
    memory = results["conn.mysql.mem_per_conn"]
    assert memory.extra["server_pid"] == mariadb_server.pid
    assert "MariaDB" in memory.extra["version"]
    assert memory.label.startswith("MariaDB")
    by_clients = memory.extra["by_clients"]
    threads = [by_clients[c]["threads"] for c in ("0", "5", "20")]
    assert threads[0] < threads[1] < threads[2]
    assert {total["processes"] for total in by_clients.values()} == {1}
    assert results["conn.mysql.procs"].median == 1
    assert results["conn.mysql.threads"].median == threads[2]
    assert memory.median > 0
    assert memory.extra["slope_bytes"]["pss"] > 0
    assert results["conn.mysql.connect_ms"].n == 20

    def connected() -> int:
        """Threads_connected, counting the probe itself."""
        conn = pymysql.connect(host="127.0.0.1", port=mariadb_server.port, user="root")
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW STATUS LIKE 'Threads_connected'")
                return int(cursor.fetchone()[1])
        finally:
            conn.close()

    wait_until(
        lambda: connected() == 1,
        DEADLINE_S,
        f"MariaDB clients all disconnected within {DEADLINE_S} s",
    )


def test_pgbouncer_funnels_clients_into_its_pool(pgbouncer_server, postgres_server, psycopg):
    measurement = measure_real_server("pgbouncer", pgbouncer_server.dsn, CLIENTS)
    results = by_id(measurement)
    assert not measurement.warnings
    backends = results["conn.pgbouncer.backends"]
    assert 1 <= backends.median <= dbservers.PGBOUNCER_POOL_SIZE
    assert backends.extra["pool_size"] == dbservers.PGBOUNCER_POOL_SIZE
    assert set(backends.extra["by_clients"]) == {"0", "5", "20"}
    assert results["conn.pgbouncer.procs"].median == 1
    assert results["conn.pgbouncer.connect_ms"].n == 20
    assert results["conn.pgbouncer.mem_per_conn"].extra["server_pid"] == pgbouncer_server.pid
    assert any("PgBouncer held" in f for f in measurement.findings)
    # The backends it holds really exist: the postmaster has at least as many children.
    assert len(pg_children(postgres_server)) >= backends.median

    admin_dsn = pgbouncer_server.dsn.rsplit("/", 1)[0] + "/pgbouncer"

    def clients_left() -> int:
        """Clients of the measured pool still connected to PgBouncer."""
        with psycopg.connect(
            admin_dsn, autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as admin:
            rows = admin.execute("SHOW CLIENTS").fetchall()
        return sum(1 for row in rows if row[2] == "postgres")

    wait_until(
        lambda: clients_left() == 0,
        DEADLINE_S,
        f"PgBouncer clients all disconnected within {DEADLINE_S} s",
    )


def test_remote_server_reports_connect_times_only(postgres_server, psycopg, monkeypatch):
    monkeypatch.setattr(discovery, "locality", lambda host: "host db.example is not this machine")
    measurement = measure_real_server("postgres", postgres_server.dsn, [3])
    assert list(by_id(measurement)) == ["conn.postgres.connect_ms"]
    assert by_id(measurement)["conn.postgres.connect_ms"].n == 3
    assert measurement.warnings == ("memory not measured: host db.example is not this machine",)


def test_refused_connection_is_one_line_error(psycopg):
    port = dbservers.free_port()  # nothing listens there
    with pytest.raises(OstoolkitError) as caught:
        measure_real_server("postgres", f"postgresql://postgres@127.0.0.1:{port}/x", [1])
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    assert "connection 1 of 1" in message


def test_refused_mysql_connection_hides_password(pymysql):
    port = dbservers.free_port()
    with pytest.raises(OstoolkitError) as caught:
        measure_real_server("mysql", f"mysql://root:s3cret@127.0.0.1:{port}/db", [1])
    assert "\n" not in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_cli_measures_a_real_postgres(postgres_dsn, psycopg):
    from click.testing import CliRunner

    from ostoolkit import cli as cli_module

    result = CliRunner().invoke(
        cli_module.cli,
        ["connections", "--postgres", postgres_dsn, "--clients", "3", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    import json

    ids = {r["id"] for r in json.loads(result.stdout)["results"]}
    assert {"conn.postgres.mem_per_conn", "conn.postgres.procs"} <= ids
