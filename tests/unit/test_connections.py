"""Pure logic of the connections command: splitting load, percentiles, limits, the table."""

import dataclasses
import os
import resource

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit.children import Fds
from ostoolkit.connections import builtin
from ostoolkit.connections.builtin import (
    ConnectionsConfig,
    RunFigures,
    ServerState,
    check_config,
    connection_findings,
    figures_to_results,
    open_files_needed,
    open_files_per_process,
    summary_table,
)
from ostoolkit.connections.load import LoadResult, LoadRun, _split, builtin_client
from ostoolkit.errors import InvalidRequest, LimitExceeded
from ostoolkit.render import render
from ostoolkit.report import Measurement, build_report


def test_split_spreads_connections_evenly():
    assert _split(10, 4) == [3, 3, 2, 2]
    assert _split(3, 4) == [1, 1, 1, 0]
    assert sum(_split(1000, 4)) == 1000


def test_limits():
    with pytest.raises(InvalidRequest, match="unknown model"):
        check_config(ConnectionsConfig(models=("fiber",)))
    with pytest.raises(InvalidRequest, match=r"outside 1\.\.10000"):
        check_config(ConnectionsConfig(clients=(20000,)))


def test_each_process_counts_only_its_own_sockets():
    # The pooler: every client's socket, K backend connections, its listener and selector.
    assert open_files_per_process("pooled", 10000, 20) == (10022, "the pooler")
    assert open_files_per_process("thread", 10000, 20) == (10001, "the thread server")
    # The process model's supervisor holds its listener: a load client's share is the most.
    assert open_files_per_process("process", 10000, 20) == (2500, "each load client")
    assert open_files_per_process("process", 10, 20) == (3, "each load client")
    assert open_files_per_process("process", 1, 20)[0] == 1
    config = ConnectionsConfig(clients=(10, 1000), models=("process", "thread"), pool_size=5)
    assert open_files_needed(config) == (1001, "the thread server")
    assert open_files_needed(ConnectionsConfig(clients=(1000,), models=("process",))) == (
        250,
        "each load client",
    )


@pytest.fixture
def hard_nofile(monkeypatch):
    """Make RLIMIT_NOFILE read as (soft 256, hard H); returns a setter for H."""
    real = resource.getrlimit
    hard = [1000]

    def getrlimit(which):
        return (256, hard[0]) if which == resource.RLIMIT_NOFILE else real(which)

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    return lambda value: hard.__setitem__(0, value)


def test_open_files_are_budgeted_per_process(hard_nofile, monkeypatch):
    # Only the open files are judged here, not this host's tasks and memory.
    monkeypatch.setattr(builtin, "check_task_budget", lambda *args: None)
    # 600 clients through the pooler fit under 1000 (both ends in one process would not).
    assert 600 * 2 > 1000
    check_config(ConnectionsConfig(clients=(600,), models=("pooled",)))
    # 2000 process-model clients: 500 sockets in each of 4 load clients, 1 per backend.
    check_config(ConnectionsConfig(clients=(2000,), models=("process",)))
    with pytest.raises(LimitExceeded) as refused:
        check_config(ConnectionsConfig(clients=(1200,), models=("pooled",)))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("--clients 1200 (the pooler) needs about ")
    assert "hard limit is 1000 (ulimit -Hn)" in message
    assert message.endswith("raise the limit or lower --clients")
    hard_nofile(500)  # the thread server alone holds 600: refused whatever the other models
    with pytest.raises(LimitExceeded, match=r"--clients 600 \(the thread server\)"):
        check_config(ConnectionsConfig(clients=(10, 600), models=("process", "thread")))


def run(model, clients, procs, threads, pss_idle, pss_loaded):
    idle = ServerState(
        procs - clients if model == "process" else procs, threads, 0, pss_idle, 10, 0
    )
    loaded = ServerState(procs, threads, 0, pss_loaded, 10 + clients, 100)
    after = ServerState(procs, threads, 0, pss_loaded, 10 + clients, 100 + clients * 4)
    load = LoadResult([100.0] * clients, [200.0] * clients * 4, clients * 4, 0.01)
    return RunFigures(model, clients, idle, loaded, after, load)


def test_results_table_and_findings():
    runs = [
        run("process", 10, 11, 11, 10 * 2**20, 20 * 2**20),
        run("thread", 10, 1, 11, 10 * 2**20, 10 * 2**20 + 10 * 2**15),
        run("pooled", 10, 7, 7, 10 * 2**20, 10 * 2**20 + 10 * 1024),
    ]
    results = {r.id: r for r in figures_to_results(runs[0])}
    assert set(results) == {
        f"conn.process.10.{k}"
        for k in ("mem_per_conn", "qps", "p50", "p99", "procs", "threads", "connect")
    }
    assert results["conn.process.10.mem_per_conn"].median == 2**20
    assert results["conn.process.10.qps"].median == pytest.approx(4000)
    assert results["conn.process.10.mem_per_conn"].extra["switches_per_query"] == 1.0
    table = summary_table(runs, 5)
    report = build_report("connections", [], Measurement((), data={"table": table}), {}, "t", 0)
    text = render(report, "table")
    assert "process  10         11              11         1.0 MiB" in text
    assert "pooled: a funnel into 5 server connections" in text
    findings = connection_findings(runs, 5)
    assert findings[0].startswith(
        "at 10 clients a connection costs 1.00 MiB as a process and 32 KiB"
    )
    assert findings[1].startswith("p99 latency at 10 clients: 0 ms pooled vs 0 ms process, 0 ms")
    assert findings[2].startswith("the pooler served 10 clients with 5 backend processes (pool 5")
    assert findings[2].endswith("7 server processes in all, against 11 without it")
    alone = connection_findings(runs[2:], 5)  # the pooled model alone: no "?" to compare with
    assert alone[-1].endswith("7 server processes in all")


def test_thread_finding_points_to_a_server_without_a_gil():
    thread = run("thread", 10, 1, 11, 10 * 2**20, 10 * 2**20 + 10 * 2**15)
    after = dataclasses.replace(thread.after, switches=thread.loaded.switches + 3 * 40)
    [finding] = connection_findings([dataclasses.replace(thread, after=after)], 5)
    assert finding.startswith("the thread server made 3.0 context switches per query")
    assert "global interpreter lock" in finding
    assert "ostoolkit connections --real mariadb" in finding


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--clients", "0"], "--clients"),
        (["--clients", "x"], "--clients"),
        (["--queries", "0"], "--queries"),
        (["--pool-size", "0"], "--pool-size"),
        (["--model", "fiber"], "--model"),
    ],
)
def test_bad_input_exit_2(args, option):
    result = CliRunner().invoke(cli_module.cli, ["connections", *args])
    assert result.exit_code == 2
    assert option in result.output


@pytest.fixture
def interrupt_after_first_close(monkeypatch):
    """os.close that raises KeyboardInterrupt right after its first close, as Ctrl-C could.

    Records every fd it closed, to show that none is closed twice.
    """
    real_close = os.close
    closed = []

    def close(fd):
        real_close(fd)
        closed.append(fd)
        if len(closed) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "close", close)
    return closed


def test_fds_interrupted_close_is_never_repeated(interrupt_after_first_close):
    fds = Fds()
    read_end, write_end = fds.pipe()
    with pytest.raises(KeyboardInterrupt):
        fds.close(write_end)
    reused = os.open(os.devnull, os.O_RDONLY)  # may take write_end's number: must survive
    try:
        fds.close_all()
        assert interrupt_after_first_close == [write_end, read_end]
        os.fstat(reused)
    finally:
        os.close(reused)
    with pytest.raises(KeyError):  # not ours any more: refused, never closed again
        fds.close(write_end)


def test_load_phase_interrupted_then_closed_closes_each_fd_once(interrupt_after_first_close):
    load = LoadRun(1, builtin_client(1, 1))  # no client started: the pipes alone
    pipes = [load.fds.pipe() for _ in LoadRun.PHASES]
    load.phase_w = [write_end for _, write_end in pipes]
    with pytest.raises(KeyboardInterrupt):
        load.connect()  # Ctrl-C right after the connect phase's pipe closed
    load.close()
    closed = interrupt_after_first_close
    assert sorted(closed) == sorted(fd for pipe in pipes for fd in pipe)
    assert len(set(closed)) == len(closed)
