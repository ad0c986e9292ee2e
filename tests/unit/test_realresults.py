"""A --real run turned into results, tables, charts and findings, from a run built by hand.

No server starts here: the RealRun holds figures chosen so every derived number is known
(PSS per connection, transactions per second, refusals at the default limit). The checks
that need no installed server (check_real's ranges, resolve_servers) are here too.
"""

import os
from dataclasses import replace

import pytest

from ostoolkit.connections.clients import window_figures
from ostoolkit.connections.group import ServerState
from ostoolkit.connections.real import run as realload
from ostoolkit.connections.real.results import (
    cell_results,
    charts,
    limit_change,
    real_measurement,
)
from ostoolkit.connections.real.run import (
    MAX_REAL_CLIENTS,
    Ceiling,
    Cell,
    RealConfig,
    RealRun,
    check_real,
    resolve_servers,
)
from ostoolkit.connections.real.transactions import window_latencies
from ostoolkit.errors import InvalidRequest
from ostoolkit.stats import percentile

MIB = 2**20
SERVERS = ("postgres", "pgbouncer", "mariadb", "mariadb-pool")
IDS = {
    "postgres": "postgres",
    "pgbouncer": "pgbouncer",
    "mariadb": "mariadb",
    "mariadb-pool": "mariadb_pool",
}
FIGURES = (
    "tps",
    "p50",
    "p99",
    "connect",
    "mem_per_conn",
    "procs",
    "threads",
    "cpu_per_tx",
    "switches_per_tx",
    "refused",
)
REFUSAL = "FATAL: sorry, too many clients already"
# Per server and client count: transactions in 2 s, PSS per connection, client and server CPU.
PLAN = {
    ("postgres", 10): (1600, 3 * MIB, 0.5, 1.6),
    ("postgres", 100): (2000, 2 * MIB, 1.0, 1.8),
    ("pgbouncer", 10): (1200, 64 * 1024, 0.5, 1.0),
    ("pgbouncer", 100): (1400, 16 * 1024, 0.5, 1.2),
    ("mariadb", 10): (1000, 256 * 1024, 3.0, 1.0),  # the client used more CPU: client-limited
    ("mariadb", 100): (1800, 128 * 1024, 0.5, 1.5),
    ("mariadb-pool", 10): (1100, 192 * 1024, 0.5, 1.2),
    ("mariadb-pool", 100): (1900, 96 * 1024, 0.5, 1.6),
}
IDLE_PSS = 40 * MIB


def cell(server, clients):
    """One cell of PLAN: four windows of 390, 410, 400 and 400 transactions, each with
    latencies of 250 µs and its slowest 5 % at 4 ms."""
    transactions, per_conn, client_cpu, server_cpu = PLAN[server, clients]
    counts = [transactions // 4 - 10, transactions // 4 + 10, transactions // 4, transactions // 4]
    windows = [[250.0] * (n - n // 20) + [4000.0] * (n // 20) for n in counts]
    processes = 1 + clients if server == "postgres" else 1
    return Cell(
        server=server,
        clients=clients,
        duration_s=2.0,
        idle=ServerState(1, 8, uss=30 * MIB, pss=IDLE_PSS, rss=50 * MIB),
        loaded=ServerState(
            processes, 8 + clients, 31 * MIB, IDLE_PSS + clients * per_conn, 90 * MIB
        ),
        connect_us=[300.0 + i for i in range(clients)],
        latency_us=[latency for window in windows for latency in window],
        windows=windows,
        errors=0,
        first_error=None,
        client_cpu_s=client_cpu,
        server_cpu_s=server_cpu,
        server_switches=transactions * 3,
        interference=None,
        backends=20 if server == "pgbouncer" else None,
    )


def run(pgbench=None):
    """The whole run: every server at 10 and 100 clients, PostgreSQL refusing 3 of 100."""
    config = RealConfig(servers=SERVERS, clients=(10, 100), duration_s=2.0)
    return RealRun(
        config,
        cells=[cell(s, c) for s in SERVERS for c in config.clients],
        ceilings={
            "postgres": Ceiling(100, (True,) * 97 + (False,) * 3, REFUSAL, 3),
            "pgbouncer": Ceiling(120, (True,) * 100, None),
            "mariadb": Ceiling(151, (True,) * 100, None),
            "mariadb-pool": Ceiling(151, (True,) * 100, None),
        },
        pgbench={10: (1000.0, []), 100: (2000.0, [])} if pgbench is None else pgbench,
        versions={
            "postgres": "16.3",
            "mariadb": "10.11.6",
            "mariadb-pool": "10.11.6",
            "pgbouncer": "1.22.0",
        },
        started_s={"postgres": 1.23456, "mariadb": 2.0},
    )


def by_id(measurement):
    return {r.id: r for r in measurement.results}


def test_every_figure_for_every_server_and_count():
    results = by_id(real_measurement(run()))
    expected = {f"conn.{IDS[s]}.{c}.{f}" for s in SERVERS for c in (10, 100) for f in FIGURES}
    expected |= {f"conn.{IDS[s]}.max_connections" for s in SERVERS}
    expected |= {"conn.pgbench.10.tps", "conn.pgbench.100.tps"}
    assert set(results) == expected
    assert len(results) == len(real_measurement(run()).results)  # no id twice


def test_refused_comes_from_the_ceiling():
    results = by_id(real_measurement(run()))
    assert results["conn.postgres.10.refused"].median == 0  # the first 10 were accepted
    assert results["conn.postgres.100.refused"].median == 3
    assert results["conn.postgres.100.refused"].extra["refusal"] == REFUSAL
    assert results["conn.mariadb.100.refused"].median == 0
    limit = results["conn.postgres.max_connections"]
    assert limit.median == 100
    assert limit.extra["accepted"] == 97
    assert limit.extra["attempted"] == 100
    assert limit.extra["superuser_reserved"] == 3
    assert results["conn.pgbouncer.max_connections"].median == 120


@pytest.mark.parametrize(("server", "clients"), list(PLAN))
def test_memory_per_connection_is_the_pss_the_connections_added(server, clients):
    one = cell(server, clients)
    expected = (one.loaded.pss - one.idle.pss) / clients
    assert expected == PLAN[server, clients][1]
    result = by_id(real_measurement(run()))[f"conn.{IDS[server]}.{clients}.mem_per_conn"]
    assert result.median == expected
    assert result.extra["pss_idle"] == IDLE_PSS


def test_tps_samples_are_the_windows_over_half_a_second():
    results = by_id(real_measurement(run()))
    tps = results["conn.postgres.10.tps"]
    assert sorted(tps.samples) == [780.0, 800.0, 800.0, 820.0]  # windows 390, 400, 400, 410
    assert tps.extra["transactions"] == 1600
    assert results["conn.postgres.10.p50"].median == 250.0
    assert results["conn.postgres.10.p99"].median == 4000.0
    assert results["conn.postgres.10.p50"].n == results["conn.postgres.10.p99"].n == 4
    assert results["conn.postgres.10.cpu_per_tx"].median == pytest.approx(1.6 / 1600 * 1e6)
    assert results["conn.postgres.10.switches_per_tx"].median == 3.0
    assert results["conn.postgres.100.procs"].median == 101
    assert results["conn.mariadb.100.threads"].median == 108
    assert results["conn.pgbouncer.100.procs"].extra["backends"] == 20
    assert results["conn.pgbench.100.tps"].median == 2000.0
    assert results["conn.pgbench.100.tps"].extra["ours_over_pgbench"] == 0.5


def test_latency_percentiles_are_each_windows_own():
    one = cell("postgres", 10)
    slow = [[250.0] * 99 + [9000.0]] + [[250.0] * 100] * 3  # one window with a slow tail
    one = replace(one, windows=slow, latency_us=[t for w in slow for t in w])
    results = {r.id: r for r in cell_results(one, run())}
    assert results["conn.postgres.10.p99"].samples == pytest.approx(
        [percentile(slow[0], 99), 250.0, 250.0, 250.0]
    )
    assert results["conn.postgres.10.p99"].median == 250.0  # one bad window is not the figure
    assert results["conn.postgres.10.tps"].samples == (200.0, 200.0, 200.0, 200.0)


def test_window_latencies_merge_the_client_processes_windows():
    reports = [
        {"ends_us": [0, 499_999, 500_000, 1_700_000], "latency_us": [1.0, 2.0, 3.0, 4.0]},
        {"ends_us": [10, 999_999, 1_000_000], "latency_us": [5.0, 6.0, 7.0]},
    ]
    # 1.2 s: two whole windows of 0.5 s; what ended after 1 s is left out.
    assert window_latencies(reports, 1.2) == [[1.0, 2.0, 5.0], [3.0, 6.0]]
    assert window_latencies(reports, 0.4) == []
    assert window_figures([[1.0, 3.0], []], 0.5).p50 == [2.0]  # each window that holds any
    assert window_figures([[1.0, 3.0], []], 0.5).rate == [4.0, 0.0]
    assert window_figures([[], []], 0.5).p99 == [0.0]  # nothing completed


def test_counts_are_exact_and_memory_resolves_a_page():
    results = by_id(real_measurement(run()))
    exact = {r.id.rsplit(".", 1)[1] for r in results.values() if r.exact}
    assert exact == {"procs", "threads", "refused", "max_connections"}
    for figure in ("procs", "threads", "refused"):
        assert results[f"conn.mariadb.100.{figure}"].exact
    assert results["conn.pgbouncer.max_connections"].exact
    mem = results["conn.postgres.10.mem_per_conn"]
    assert mem.resolution == os.sysconf("SC_PAGE_SIZE")
    assert not any(r.resolution for r in results.values() if not r.id.endswith("mem_per_conn"))


def test_pgbench_samples_are_its_progress_seconds():
    with_seconds = run()
    with_seconds.pgbench[100] = (2000.0, [1900.0, 2100.0, 2050.0, 1950.0, 2000.0])
    results = by_id(real_measurement(with_seconds))
    tps = results["conn.pgbench.100.tps"]
    assert tps.n == 5
    assert tps.median == 2000.0
    assert tps.extra["pgbench_tps"] == 2000.0
    assert results["conn.pgbench.10.tps"].samples == (1000.0,)  # no progress lines: its TPS


def test_one_table_per_client_count_with_pgbench_where_it_ran():
    measurement = real_measurement(run(pgbench={100: (2000.0, [])}))
    ten, hundred = measurement.data["tables"]
    assert (ten["title"], hundred["title"]) == ("10 clients", "100 clients")
    assert ten["replaces_results"]
    assert hundred["replaces_results"]
    # pgbench did not run at 10 clients: no row for it there
    assert [row["server"] for row in ten["rows"]] == [
        "PostgreSQL",
        "PgBouncer",
        "MariaDB",
        "MariaDB (thread pool)",
    ]
    assert [row["server"] for row in hundred["rows"]][-1] == "pgbench -S (PostgreSQL)"
    assert hundred["rows"][-1]["tx/s"] == 2000.0
    assert hundred["rows"][-1]["p99"] is None
    postgres = hundred["rows"][0]
    assert postgres["tx/s"] == 1000.0
    assert postgres["memory/conn"] == 2 * MIB
    assert postgres["refused"] == 3
    columns = [name for name, _ in hundred["columns"]]
    assert all(set(row) == set(columns) for table in (ten, hundred) for row in table["rows"])
    assert hundred["note"]
    assert not ten["note"]


def test_two_charts_per_server_with_two_counts_or_more():
    made = charts(run())
    assert [c["title"] for c in made] == [
        "PostgreSQL: transactions per second",
        "PostgreSQL: PSS per connection (KiB)",
        "PgBouncer: transactions per second",
        "PgBouncer: PSS per connection (KiB)",
        "MariaDB: transactions per second",
        "MariaDB: PSS per connection (KiB)",
        "MariaDB (thread pool): transactions per second",
        "MariaDB (thread pool): PSS per connection (KiB)",
    ]
    assert made[0]["x"] == ["10", "100"]
    assert made[0]["values"] == [800, 1000]
    assert made[1]["values"] == [3072.0, 2048.0]
    alone = run()
    alone.cells = [c for c in alone.cells if not (c.server == "pgbouncer" and c.clients == 100)]
    assert not any(c["title"].startswith("PgBouncer") for c in charts(alone))
    assert len(charts(alone)) == 6


def test_findings_say_what_the_servers_did():
    found = real_measurement(run()).findings
    text = "\n".join(found)
    refusal = next(f for f in found if f.startswith("PostgreSQL, default max_connections 100"))
    assert ", 3 kept for superusers" in refusal
    assert "accepted 97 direct clients and refused the other 3" in refusal
    assert f'"{REFUSAL}"' in refusal
    assert refusal.endswith("raised to 140")  # 100 + margin 20 + pool 20
    assert "MariaDB accepted all 100 clients under its default max_connections 151" in text
    mariadb = next(f for f in found if f.startswith("MariaDB accepted all 100 clients"))
    assert mariadb.endswith("; the curves ran with it lowered to 120")  # 100 + margin 20 < 151
    assert "raised to 120" not in text
    assert "PgBouncer held 100 clients on 20 PostgreSQL backends" in text
    assert "PostgreSQL ran 100 backend processes" in text


@pytest.mark.parametrize(
    ("default", "used", "words"),
    [(100, 140, "raised to 140"), (151, 120, "lowered to 120"), (151, 151, "set to 151")],
)
def test_the_limit_change_is_named_by_the_numbers(default, used, words):
    assert limit_change(default, used) == words


def test_pgbench_ratio_explains_cpu_only_below_the_target():
    found = real_measurement(run()).findings
    [at_10] = [f for f in found if f.startswith("at 10 clients ostoolkit's client")]
    [at_100] = [f for f in found if f.startswith("at 100 clients ostoolkit's client")]
    assert at_10 == "at 10 clients ostoolkit's client reached 0.80× pgbench's 1,000 tx/s"
    assert at_100.startswith("at 100 clients ostoolkit's client reached 0.50× pgbench's 2,000")
    assert "its Python processes spent 500 µs of CPU per transaction" in at_100
    assert "beside the server's 900 µs" in at_100


def test_client_limited_only_where_the_client_used_more_cpu():
    found = real_measurement(run()).findings
    limited = [f for f in found if "the client limited the run" in f]
    assert limited == [
        "MariaDB at 10 clients: the client limited the run (its processes used 3.0 CPU-s "
        "against the server's 1.0)"
    ]
    results = by_id(real_measurement(run()))
    assert results["conn.mariadb.10.tps"].extra["client_limited"] is True
    assert results["conn.mariadb.100.tps"].extra["client_limited"] is False


def test_servers_data_holds_versions_and_start_times():
    data = real_measurement(run()).data
    assert data["servers"] == {
        "postgres": {"version": "16.3", "started_in_s": 1.235},
        "mariadb": {"version": "10.11.6", "started_in_s": 2.0},
    }


# -- requests refused before any server starts -------------------------------------------------


def test_resolve_servers_orders_and_refuses_unknown_names(monkeypatch):
    assert resolve_servers(["pgbouncer", "mariadb", "postgres"]) == (
        "postgres",
        "mariadb",
        "pgbouncer",
    )
    assert resolve_servers(["mariadb-pool", "mariadb-pool"]) == ("mariadb-pool",)
    with pytest.raises(InvalidRequest) as caught:
        resolve_servers(["postgres", "oracle"])
    message = str(caught.value)
    assert "'oracle'" in message
    assert "all, postgres, mariadb, mariadb-pool, pgbouncer" in message
    monkeypatch.setattr(realload, "installed", lambda: ("mariadb",))
    assert resolve_servers(["all"]) == ("mariadb",)
    assert resolve_servers([]) == ("mariadb",)


@pytest.mark.parametrize("clients", [(MAX_REAL_CLIENTS + 1,), (10, 0), ()])
def test_check_real_refuses_client_counts_out_of_range(clients, monkeypatch):
    checked = []
    monkeypatch.setattr(realload, "check_installed", checked.append)
    with pytest.raises(InvalidRequest, match=f"within 1..{MAX_REAL_CLIENTS}"):
        check_real(RealConfig(servers=("postgres", "mariadb"), clients=clients))
    assert checked == ["postgres", "mariadb"]


def test_check_real_refuses_no_servers_and_unknown_ones():
    with pytest.raises(InvalidRequest, match="none of postgres, mariadb, pgbouncer"):
        check_real(RealConfig(servers=()))
    with pytest.raises(InvalidRequest, match="unknown server 'oracle'"):
        check_real(RealConfig(servers=("oracle",)))  # refused before looking for programs


def test_pss_slope_uses_every_count_of_a_server():
    from ostoolkit.connections.real.results import pss_slope
    from ostoolkit.connections.real.run import RealConfig, RealRun

    run = RealRun(RealConfig(servers=("postgres",), clients=(10, 100)))
    for clients in (10, 100):  # 1 MiB per connection on a 50 MiB idle server, exactly
        idle = ServerState(6, 6, pss=50 << 20)
        loaded = ServerState(6 + clients, 6, pss=(50 << 20) + clients * (1 << 20))
        run.cells.append(replace(cell("postgres", clients), idle=idle, loaded=loaded))
    assert pss_slope(run, "postgres") == pytest.approx(1 << 20)
    assert pss_slope(run, "mariadb") == 0.0  # no cells: no slope


def test_a_real_run_report_loads_back_with_its_number_units(tmp_path):
    from ostoolkit.loader import load_report
    from ostoolkit.report import build_report

    report = build_report("connections", ["--real"], real_measurement(run()), {}, "2026-12-03", 1.0)
    path = tmp_path / "real.json"
    path.write_text(report.to_json())
    loaded = load_report(path)
    assert loaded.result("conn.postgres.10.switches_per_tx").unit == "number"


def test_a_connection_per_transaction_gives_no_switches_per_transaction():
    per_tx = run()
    per_tx = replace(per_tx, config=replace(per_tx.config, connect_per_tx=True))
    measurement = real_measurement(per_tx)
    ids = {r.id for r in measurement.results}
    assert not any(i.endswith(".switches_per_tx") for i in ids)  # live tasks would undercount
    assert "conn.postgres.10.cpu_per_tx" in ids  # CPU time of reaped tasks is kept
    assert any(f.startswith("switches per transaction are not given") for f in measurement.findings)
    rows = [row for table in measurement.data["tables"] for row in table["rows"]]
    assert all(row["switches/tx"] is None for row in rows)
    assert not any("not given" in f for f in real_measurement(run()).findings)
    pool = next(f for f in measurement.findings if "MariaDB's thread pool ran" in f)
    assert "context switches" not in pool  # the live threads' count would undercount
    persistent = real_measurement(run()).findings
    assert "context switches per transaction" in next(f for f in persistent if "pool ran" in f)
