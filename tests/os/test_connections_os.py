"""Built-in servers with real clients on 127.0.0.1: the models' shapes, nothing left behind."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ostoolkit.connections.builtin import run_model

ENTRY = Path(sys.executable).with_name("ostoolkit")


def test_process_per_connection_has_a_backend_per_client():
    fig = run_model("process", 6, 3, pool_size=3)
    assert fig.loaded.processes == 1 + 6
    assert fig.idle.processes == 1
    assert fig.load.queries == 18
    assert len(fig.load.latency_us) == 18
    assert len(fig.load.connect_us) == 6
    assert fig.loaded.pss > fig.idle.pss
    assert fig.after.switches >= fig.loaded.switches + 18  # each query wakes a backend


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


def test_entry_point_json():
    done = subprocess.run(
        [ENTRY, "connections", "--clients", "4", "--queries", "2", "--pool-size", "2",
         "--json", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    ids = {r["id"] for r in data["results"]}
    for model in ("process", "thread", "pooled"):
        for key in ("mem_per_conn", "qps", "p50", "p99", "procs", "threads"):
            assert f"conn.{model}.4.{key}" in ids
    assert len(data["data"]["table"]["rows"]) == 3
    assert "memory per connection" in done.stderr


def test_sigint_mid_load_leaves_nothing():
    argv = [ENTRY, "connections", "--model", "process", "--clients", "300", "--queries", "1000"]
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc = psutil.Process(popen.pid)
        deadline = time.monotonic() + 60
        while len(proc.children(recursive=True)) < 50:  # server, clients and backends are up
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.01)
        kids = proc.children(recursive=True)
        popen.send_signal(signal.SIGINT)
        popen.communicate(timeout=60)
        assert popen.returncode == 130
        _gone, alive = psutil.wait_procs(kids, timeout=20)
        assert not alive, f"left behind: {alive}"
    finally:
        popen.kill()
        popen.communicate()


@pytest.mark.parametrize("model", ["process", "thread", "pooled"])
def test_no_file_descriptor_leak(model):
    import os

    before = set(os.listdir("/proc/self/fd"))
    run_model(model, 3, 1, pool_size=2)
    assert set(os.listdir("/proc/self/fd")) == before
