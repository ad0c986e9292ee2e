"""Built-in servers with real clients on 127.0.0.1: the models' shapes, nothing left behind."""

import contextlib
import functools
import itertools
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import uuid

import psutil
import pytest
from harness.leftovers import MARKER_VAR, marked_processes, wait_gone
from harness.paths import ENTRY
from harness.runs import marked_env, message_lines, run_marked
from harness.waiting import wait_until

from ostoolkit.connections.builtin.measure import (
    MEM_STEPS,
    ConnectionsConfig,
    measure_connections,
    run_model,
)
from ostoolkit.connections.builtin.protocol import GREETING, QUERY, REPLY
from ostoolkit.connections.builtin.servers import (
    LOOPBACK,
    Server,
    serve_pooled,
    serve_process,
    serve_thread,
)
from ostoolkit.connections.clients import WINDOWS
from ostoolkit.errors import OstoolkitError

# 50 connections from 4 client processes; queries enough that no poll can miss the query
# phase, which costs nothing: the signal ends the run.
CLIENTS = 50
SIGNAL_ARGV = ["connections", "--clients", str(CLIENTS), "--queries", "2000", "--pool-size", "5"]
WAIT_S = 30.0


def test_process_per_connection_has_a_backend_per_client():
    fig = run_model("process", 6, 3, pool_size=3)
    assert fig.loaded.processes == 1 + 6
    assert fig.idle.processes == 1
    assert fig.load.queries == 18
    assert len(fig.load.latency_us) == 18
    assert len(fig.load.connect_us) == 6
    assert fig.loaded.pss > fig.idle.pss
    assert fig.after.switches >= fig.loaded.switches + 18  # each query wakes a backend
    # Connected in steps, the server read after each: every step forked backends.
    assert len(fig.steps) == MEM_STEPS
    assert sum(opened for opened, _ in fig.steps) == 6
    assert fig.steps[-1][1] == fig.loaded.pss
    pss = [fig.idle.pss] + [after for _, after in fig.steps]
    assert all(later > earlier for earlier, later in itertools.pairwise(pss)), pss
    # Every query's completion time came back; the steady state ends at one of them (the
    # first connection's last), after its start (the last client's first queries out).
    assert len(fig.load.ends_ns) == 18
    start, stop = fig.load.steady_ns
    assert stop in fig.load.ends_ns
    assert start < max(fig.load.ends_ns)


def test_thread_per_connection_has_a_thread_per_client():
    fig = run_model("thread", 6, 3, pool_size=3)
    assert fig.loaded.processes == 1
    assert fig.loaded.threads >= 1 + 6
    assert fig.after.switches > fig.loaded.switches


def test_pooled_holds_k_backends_for_more_clients():
    fig = run_model("pooled", 12, 3, pool_size=3)
    assert fig.idle.processes == 2 + 3  # pooler, upstream supervisor, K backends
    assert fig.loaded.processes == 2 + 3  # still K backends with 12 clients
    assert len(fig.load.latency_us) == 36


def test_every_result_has_samples_or_is_exact():
    """What compare needs: five samples or more, or a figure fixed by construction."""
    measurement = measure_connections(ConnectionsConfig(clients=(10,), pool_size=3))
    results = {r.id: r for r in measurement.results}
    assert len(results) == 3 * 7
    few = [(r.id, r.n) for r in results.values() if not r.exact and r.n < 5]
    assert not few, few
    for model in ("process", "thread", "pooled"):
        key = f"conn.{model}.10"
        assert results[f"{key}.procs"].exact
        assert results[f"{key}.threads"].exact
        assert results[f"{key}.qps"].n == WINDOWS  # the steady state, cut into windows
        assert results[f"{key}.mem_per_conn"].n == MEM_STEPS
        assert results[f"{key}.mem_per_conn"].resolution == os.sysconf("SC_PAGE_SIZE")
    exact = {rid.rsplit(".", 1)[1] for rid, r in results.items() if r.exact}
    assert exact == {"procs", "threads"}


def test_entry_point_json():
    done = subprocess.run(
        [
            ENTRY,
            "connections",
            "--clients",
            "4",
            "--queries",
            "2",
            "--pool-size",
            "2",
            "--json",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    ids = {r["id"] for r in data["results"]}
    for model in ("process", "thread", "pooled"):
        for key in ("mem_per_conn", "qps", "p50", "p99", "procs", "threads"):
            assert f"conn.{model}.4.{key}" in ids
    assert len(data["data"]["table"]["rows"]) == 3
    assert "memory per connection" in done.stderr


# A hard RLIMIT_NOFILE that the pooler's 600 clients fit under when each process counts its
# own sockets (about 600 + 64 in the pooler), but not both ends of each in one (1200 + 64);
# the soft limit starts far below, so ostoolkit must raise it before forking.
NOFILE = (256, 1000)


def _lower_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, NOFILE)


def _pooled(clients):
    """The entry point running the pooled model at ``clients`` under NOFILE; its Run."""
    marker, env = marked_env()
    argv = [
        ENTRY,
        "connections",
        "--model",
        "pooled",
        "--clients",
        str(clients),
        "--queries",
        "1",
        "--pool-size",
        "5",
    ]
    return run_marked(argv, env=env, marker=marker, timeout=60, preexec_fn=_lower_nofile)


def test_pooled_clients_past_half_the_hard_limit_run():
    run = _pooled(600)
    assert run.returncode == 0, run.describe()
    assert "pooled   600" in run.stdout, run.describe()
    assert not run.leftovers, run.describe()


def test_pooled_clients_past_the_hard_limit_are_refused_in_one_line():
    run = _pooled(1200)  # the pooler alone would hold 1200 sockets
    assert run.returncode == 2, run.describe()
    [line] = message_lines(run.stderr)
    assert "--clients 1200 (the pooler)" in line, run.describe()
    assert "hard limit is 1000" in line, run.describe()
    assert line.endswith("lower --clients"), run.describe()
    assert not run.children, run.describe()  # refused before any fork


def _client_connections(main_pid, pids):
    """TCP connections held by ostoolkit's client processes (its children that do not listen)."""
    total = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.ppid() != main_pid:
                continue
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if not any(c.status == psutil.CONN_LISTEN for c in conns):
            total += len(conns)
    return total


MOMENTS = {
    # A server was just forked (a pooled run's upstream, say), nothing else yet.
    "start-up": lambda main, pids: len(pids) >= 2,
    # The clients opened their first connections.
    "connecting": lambda main, pids: _client_connections(main, pids) >= 1,
    # Every connection is open: the query phase is next or under way.
    "querying": lambda main, pids: _client_connections(main, pids) >= CLIENTS,
}


@pytest.mark.parametrize(
    ("model", "signame", "moment"),
    [
        ("pooled", "SIGINT", "start-up"),
        ("pooled", "SIGINT", "querying"),
        ("pooled", "SIGTERM", "connecting"),
        ("process", "SIGINT", "connecting"),
        ("process", "SIGTERM", "querying"),
        ("thread", "SIGINT", "querying"),
        ("thread", "SIGTERM", "start-up"),
    ],
)
def test_signal_ends_the_run_silently(model, signame, moment):
    """Ctrl-C (SIGINT to the group) or SIGTERM: 130/143, one line, no traceback, none left."""
    signum = getattr(signal, signame)
    marker = str(uuid.uuid4())
    popen = subprocess.Popen(
        [ENTRY, *SIGNAL_ARGV, "--model", model],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, MARKER_VAR: marker},
        start_new_session=True,
    )
    try:

        def came() -> bool:
            if MOMENTS[moment](popen.pid, list(marked_processes(marker))):
                return True
            assert popen.poll() is None, f"ended before {moment}: {popen.communicate()}"
            return False

        wait_until(came, WAIT_S, f"{moment} never came", poll_s=0)  # a moment can be short
        if signum == signal.SIGINT:
            os.killpg(popen.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            popen.send_signal(signal.SIGTERM)
        _, err = popen.communicate(timeout=WAIT_S)
        stderr = err.decode(errors="replace")
        assert popen.returncode == 128 + signum, stderr
        assert "Traceback" not in stderr, stderr
        assert len(stderr.splitlines()) <= 1, stderr
        left = wait_gone(marker, 1)
        assert not left, f"left alive: {left}"
    finally:
        for pid in list(marked_processes(marker)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        popen.kill()
        popen.communicate()


@pytest.mark.parametrize("model", ["process", "thread", "pooled"])
def test_no_file_descriptor_leak(model):
    before = set(os.listdir("/proc/self/fd"))
    run_model(model, 3, 1, pool_size=2)
    assert set(os.listdir("/proc/self/fd")) == before


def _connect(port):
    """A client connection that the server has greeted."""
    sock = socket.create_connection((LOOPBACK, port))
    assert sock.recv(len(GREETING)) == GREETING
    return sock


def _reset(sock):
    """Close a connection with a reset (SO_LINGER 0), as a killed client's kernel may."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("serve", [serve_process, serve_thread], ids=["process", "thread"])
def test_server_stays_silent_when_clients_vanish(serve, capfd):
    with Server(serve) as server:
        server.start()
        socks = [_connect(server.port) for _ in range(3)]
        for sock in socks:
            sock.sendall(QUERY * 50)  # replies pile up unread: the server writes into a reset
        for sock in socks:
            _reset(sock)
        with _connect(server.port) as sock:  # still serving
            sock.sendall(QUERY)
            assert sock.recv(len(REPLY)) == REPLY
    assert capfd.readouterr().err == ""


def _closed_by_peer(sock):
    """True if the other end closed ``sock`` (end-of-file, or a reset for unread data)."""
    try:
        return sock.recv(len(REPLY)) == b""
    except ConnectionResetError:
        return True


def test_pooler_exits_silently_when_its_upstream_vanishes(capfd):
    with Server(serve_process) as upstream:
        upstream.start()
        serve = functools.partial(serve_pooled, upstream_port=upstream.port, pool_size=2)
        with Server(serve) as pooler:
            pooler.start()
            with _connect(pooler.port) as client:
                upstream.close()  # killed: the pooler's backend connections close under it
                client.sendall(QUERY)
                assert _closed_by_peer(client)
            assert pooler.children.reap(pooler.pid) == 1
    assert capfd.readouterr().err == ""


def test_server_that_fails_to_start_says_why_without_a_traceback(capfd):
    def refuse(listener, control_r, ready):
        raise OSError(98, "Address already in use")

    match = "failed to start: .*Address already in use"
    with pytest.raises(OstoolkitError, match=match), Server(refuse) as server:
        server.start()
    assert capfd.readouterr().err == ""
