"""Pure logic of the connections command: splitting load, percentiles, limits, the table."""

import dataclasses
import os
import resource
import statistics

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit.children import Fds
from ostoolkit.connections.builtin import measure as builtin
from ostoolkit.connections.builtin.measure import (
    MEM_STEPS,
    MIN_RUN_QUERIES,
    ConnectionsConfig,
    RunFigures,
    check_config,
    connection_findings,
    figures_to_results,
    mem_samples,
    open_files_needed,
    open_files_per_process,
    queries_per_connection,
    summary_table,
)
from ostoolkit.connections.clients import (
    MIN_WINDOW_QUERIES,
    WINDOWS,
    LoadResult,
    LoadRun,
    builtin_client,
    plan_connects,
    query_windows,
    split_windows,
)
from ostoolkit.connections.group import ServerState
from ostoolkit.errors import InvalidRequest, LimitExceeded
from ostoolkit.render import render
from ostoolkit.report import Measurement, build_report


def test_plan_spreads_connections_over_processes_and_steps():
    plan = plan_connects(10, 4, 5)
    assert [sum(counts) for counts in plan] == [3, 3, 2, 2]  # each process's share
    assert [sum(step) for step in zip(*plan, strict=True)] == [2, 2, 2, 2, 2]  # each step's
    assert plan_connects(3, 4, 1) == [[1], [1], [1]]  # no process without a connection
    assert [sum(step) for step in zip(*plan_connects(7, 4, 5), strict=True)] == [2, 1, 2, 1, 1]
    big = plan_connects(1000, 4, 5)
    assert sum(map(sum, big)) == 1000
    assert all(sum(step) == 200 for step in zip(*big, strict=True))


def test_load_run_never_has_more_connect_steps_than_connections():
    body = builtin_client(1, 1)
    assert LoadRun(3, body, steps=5).phases == ("connect",) * 3 + ("go", "finish")
    assert LoadRun(100, body).phases == ("connect", "go", "finish")


def test_split_windows_cuts_the_span_into_equal_windows():
    ends = [0, 9, 10, 19, 20, 39, 40, -1, 55]
    values = [float(i) for i in range(len(ends))]
    # 4 windows of 10 from 0 to 40: [0, 10), [10, 20), [20, 30), [30, 40); 40 and -1 are out.
    assert split_windows(ends, values, 0, 40, 4) == [[0.0, 1.0], [2.0, 3.0], [4.0], [5.0]]
    # A span that does not divide evenly: the edges are 0, 3.33.., 6.66.., 10.
    assert split_windows([0, 3, 4, 6, 7, 9], [1.0] * 6, 0, 10, 3) == [[1.0] * 2] * 3
    assert split_windows([5], [1.0], 10, 10, 3) == [[], [], []]  # no span: nothing
    with pytest.raises(ValueError, match="shorter"):  # every value needs its end
        split_windows([1, 2], [1.0], 0, 10, 2)


def steady_load(latency_us, ends_ns, steady_ns, elapsed_s=1.0):
    return LoadResult([], latency_us, len(latency_us), elapsed_s, ends_ns, steady_ns)


def test_windows_count_only_the_steady_state():
    # Steady from 1 ms to 9 ms: 8 windows of 1 ms, 60 queries in each, the 4th one slow.
    ends, latencies = [], []
    for window in range(WINDOWS):
        for i in range(60):
            ends.append(1_000_000 + window * 1_000_000 + i * 10_000)
            latencies.append(5000.0 if window == 3 else 100.0 + i)
    # The ramp before the last client started and the ragged end: not counted.
    ends += [500_000, 9_000_000, 9_500_000]
    latencies += [1e6, 1e6, 1e6]
    windows = query_windows(steady_load(latencies, ends, (1_000_000, 9_000_000)))
    assert windows.rate == [60 / 1e-3] * WINDOWS
    assert len(windows.p50) == len(windows.p99) == WINDOWS
    assert windows.p99[3] == 5000.0  # each window's percentiles are its own queries'
    assert max(windows.p99[:3] + windows.p99[4:]) < 160
    assert statistics.median(windows.p50) == pytest.approx(129.5)
    assert windows.notes == ()
    thin = query_windows(steady_load(latencies[:80], ends[:80], (1_000_000, 9_000_000)))
    assert thin.rate[2:] == [0.0] * (WINDOWS - 2)  # an empty window: no queries per second
    assert len(thin.p50) == 2  # ... and no percentile
    assert thin.notes == ("only 0 queries in a window of the steady state: raise --queries",)


def test_without_a_steady_state_the_whole_phase_is_one_value():
    # The first connection finished before the last client process started.
    load = steady_load([100.0, 300.0], [10, 20], (30, 20), elapsed_s=0.5)
    windows = query_windows(load)
    assert windows.rate == [4.0]
    assert windows.p50 == [200.0]
    assert windows.notes[0].startswith("no steady state")


def test_quick_settings_give_every_window_enough_queries():
    quick = ConnectionsConfig.quick()
    for clients in quick.clients:
        total = clients * queries_per_connection(quick.queries, clients)
        # Even when the steady state is a quarter of the query phase.
        assert total / 4 / WINDOWS >= MIN_WINDOW_QUERIES, clients
    assert queries_per_connection(20, 10) == MIN_RUN_QUERIES // 10
    assert queries_per_connection(20, 1000) == 20  # many clients: as many as asked
    assert queries_per_connection(500, 10) == 500


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
    """A run whose PSS grows evenly over the connect steps, with 4 queries per connection
    completing evenly over a steady state of 8 ms."""
    idle = ServerState(
        procs - clients if model == "process" else procs, threads, pss=pss_idle, fds=10
    )
    loaded = ServerState(procs, threads, pss=pss_loaded, fds=10 + clients, switches=100)
    after = ServerState(procs, threads, fds=10 + clients, switches=100 + clients * 4)
    queries = clients * 4
    ends = [1_000_000 + i * 8_000_000 // queries for i in range(queries)]
    load = LoadResult(
        [100.0] * clients, [200.0] * queries, queries, 0.01, ends, (1_000_000, 9_000_000)
    )
    sizes = [sum(step) for step in zip(*plan_connects(clients, 4, MEM_STEPS), strict=True)]
    steps, pss = [], pss_idle
    for opened in sizes:
        pss += opened * (pss_loaded - pss_idle) // clients
        steps.append((opened, pss))
    return RunFigures(model, clients, idle, loaded, after, load, steps=tuple(steps))


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
    assert results["conn.process.10.qps"].median == pytest.approx(5000)  # 5 per 1 ms window
    assert results["conn.process.10.qps"].n == WINDOWS
    assert results["conn.process.10.mem_per_conn"].extra["switches_per_query"] == 1.0
    assert results["conn.process.10.p50"].extra["queries"] == 4
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


def test_server_processes_and_threads_are_exact():
    results = {r.id: r for r in figures_to_results(run("thread", 10, 1, 11, 0, 10 * 2**15))}
    exact = {rid for rid, r in results.items() if r.exact}
    assert exact == {"conn.thread.10.procs", "conn.thread.10.threads"}
    assert results["conn.thread.10.threads"].samples == (11,)


def test_memory_per_connection_is_a_sample_per_connect_step_to_a_page():
    one = run("process", 10, 11, 11, 10 * 2**20, 20 * 2**20)
    # Two connections a step; the first step's cost more (2, 1, 1, 1, 1 MiB each).
    pss = [10 * 2**20 + mib * 2**20 for mib in (4, 6, 8, 10, 12)]
    one = dataclasses.replace(one, steps=tuple((2, p) for p in pss))
    samples = mem_samples(one)
    assert samples == [2 * 2**20, 2**20, 2**20, 2**20, 2**20]
    mem = {r.id: r for r in figures_to_results(one)}["conn.process.10.mem_per_conn"]
    assert mem.n == MEM_STEPS >= 5
    assert mem.median == 2**20
    assert mem.resolution == os.sysconf("SC_PAGE_SIZE")  # below a page: noise
    assert not mem.exact


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
    pipes = [load.fds.pipe() for _ in load.phases]
    load.phase_w = [write_end for _, write_end in pipes]
    with pytest.raises(KeyboardInterrupt):
        load.phase()  # Ctrl-C right after the connect phase's pipe closed
    load.close()
    closed = interrupt_after_first_close
    assert sorted(closed) == sorted(fd for pipe in pipes for fd in pipe)
    assert len(set(closed)) == len(closed)
