"""fork-tree with real processes: the tree stands while read, then nothing is left behind."""

import os
import re
import select
import signal
import subprocess
import sys
import time

import psutil
import pytest
from harness.paths import ENTRY

from ostoolkit.errors import InvalidRequest
from ostoolkit.measure import forktree
from ostoolkit.measure.forktree import TreeConfig, build_tree, flatten, read_subtree


def test_build_tree_with_exec_is_real_and_fully_reaped():
    seen = {}

    def look(measurement):
        """While the tree stands: every pid is alive and blocked."""
        for n in flatten(measurement.data["tree"])[1:]:
            proc = psutil.Process(n["pid"])
            seen[n["pid"]] = proc
            assert proc.status() == psutil.STATUS_SLEEPING

    m = build_tree(TreeConfig(depth=2, breadth=2, exec_leaves=True), on_ready=look)
    nodes = flatten(m.data["tree"])
    # the root: a lean interpreter this process started (treenode), named for the tree
    assert nodes[0]["ppid"] == os.getpid()
    assert {n["name"] for n in nodes if n["exec_us"] is None} == {"ostoolkit-tree"}
    assert len(nodes) == 1 + 2 + 4 + 4
    assert len(seen) == 10
    names = {n["name"] for n in nodes[1:] if n["exec_us"] is not None}
    assert names == {"cat"}
    for n in nodes[1:]:
        assert n["fork_us"] > 0
        assert n["ppid"] in {p["pid"] for p in nodes}
    by_id = {r.id: r for r in m.results}
    assert by_id["forktree.processes"].median == 10
    assert by_id["forktree.fork"].n == 10
    assert by_id["forktree.fork_exec"].n == 4
    assert by_id["forktree.uss_per_process"].median <= by_id["forktree.rss_per_process"].median
    assert [a["pid"] for a in m.data["ancestry"][-2:]] == [os.getpid(), nodes[0]["pid"]]
    assert m.data["ancestry"][0]["pid"] == min(p["pid"] for p in m.data["ancestry"])
    _gone, alive = psutil.wait_procs([*seen.values()], timeout=10)
    assert not alive
    assert (
        not psutil.pid_exists(nodes[0]["pid"])
        or psutil.Process(nodes[0]["pid"]).ppid() != os.getpid()
    )


# Forks one child, says both pids, and both wait for stdin to close; the parent reaps its child.
PARENT_AND_CHILD = (
    "import os, sys\n"
    "kid = os.fork()\n"
    "if kid:\n    print(os.getpid(), kid, flush=True)\n"
    "sys.stdin.read()\n"
    "if kid:\n    os.waitpid(kid, 0)\n"
)


def test_read_subtree_counts_the_processes_that_vanished(monkeypatch):
    r, w = os.pipe()
    top = subprocess.Popen(
        [sys.executable, "-c", PARENT_AND_CHILD], stdin=r, stdout=subprocess.PIPE, text=True
    )
    os.close(r)
    try:
        _, kid = map(int, top.stdout.readline().split())
        m = read_subtree(top.pid)
        assert [n["pid"] for n in flatten(m.data["tree"])] == [top.pid, kid]
        assert m.data["skipped"] == 0
        assert not [w for w in m.warnings if "skipped" in w]
        real = forktree._snapshot  # the child vanishes between the listing and its snapshot
        monkeypatch.setattr(forktree, "_snapshot", lambda pid: None if pid == kid else real(pid))
        m = read_subtree(top.pid)
        assert [n["pid"] for n in flatten(m.data["tree"])] == [top.pid]
        assert m.data["skipped"] == 1
        assert "skipped 1 processes that vanished or could not be read" in m.warnings
    finally:
        os.close(w)
        top.wait(timeout=30)
        top.stdout.close()


def test_read_subtree_of_no_process_is_refused():
    with pytest.raises(InvalidRequest, match="no process"):
        read_subtree(2**22 + 1)


def wait_for_line(stream, text, timeout):
    """Read stderr lines under a deadline until one contains ``text``."""
    buffer = ""
    while text not in buffer:
        ready, _, _ = select.select([stream], [], [], timeout)
        assert ready, f"never saw {text!r}; got {buffer!r}"
        chunk = os.read(stream.fileno(), 4096).decode()
        assert chunk, f"stream closed before {text!r}; got {buffer!r}"
        buffer += chunk
    return buffer


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)],
)
def test_signal_while_tree_stands_leaves_nothing(sig, code):
    popen = subprocess.Popen(
        [ENTRY, "fork-tree", "--hold", "--exec"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_line(popen.stderr, "holding the tree", timeout=60)
        tree = psutil.Process(popen.pid).children(recursive=True)
        assert len(tree) == 23  # the lean root, 14 forked below it, 8 exec'd leaves
        popen.send_signal(sig)
        popen.wait(timeout=30)
        assert popen.returncode == code
        _gone, alive = psutil.wait_procs(tree, timeout=20)
        assert not alive, f"left behind: {alive}"
    finally:
        popen.kill()
        popen.communicate()


def test_hold_released_by_enter_prints_the_report():
    done = subprocess.run(
        [ENTRY, "fork-tree", "--depth", "2", "--hold", "--format", "json"],
        input=b"\n",
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert b"holding the tree" in done.stderr
    assert b'"forktree.fork"' in done.stdout


def test_threads_of_a_live_process_are_drawn_with_their_tid():
    """A thread started here shows under this process, in the JSON and the drawing."""
    import json
    import threading

    from click.testing import CliRunner

    from ostoolkit import cli as cli_module

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="ostoolkit-test-waiter")
    thread.start()
    try:
        done = CliRunner().invoke(
            cli_module.cli, ["fork-tree", "--pid", str(os.getpid()), "--threads", "--json", "-"]
        )
        drawn = CliRunner().invoke(
            cli_module.cli, ["fork-tree", "--pid", str(os.getpid()), "--threads"]
        )
    finally:
        stop.set()
        thread.join()
    assert done.exit_code == 0, done.output
    tids = [t["tid"] for t in json.loads(done.stdout)["data"]["tree"]["threads"]]
    assert thread.native_id in tids
    assert f"({thread.native_id}) " in drawn.stdout


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
UNREAD_USS = re.compile(
    r"^warning: USS of (\d+) of (\d+) processes could not be read: "
    r"they belong to other users; run as root to see them$",
    re.MULTILINE,
)
TABLE_RULE = re.compile(r"-+(  -+)*")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run ostoolkit as the user nobody")
def test_pid_1_as_an_unprivileged_user_says_what_it_could_not_read():
    """Root's processes are drawn "uss ?", counted in one warning; no table without rows."""
    env = {**os.environ, "TMPDIR": "/tmp"}
    probe = subprocess.run(
        [*AS_NOBODY, ENTRY, "--version"], capture_output=True, cwd="/", env=env, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip(f"the user nobody cannot run {ENTRY}: {probe.stderr.decode()[-200:]}")
    argv = [*AS_NOBODY, ENTRY, "fork-tree", "--pid", "1", "--threads"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd="/", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    said = UNREAD_USS.findall(done.stdout)
    assert len(said) == 1, done.stdout
    unread, total = map(int, said[0])
    lines = done.stdout.splitlines()
    drawn = [line for line in lines if " rss " in line]  # one per process; threads have none
    assert "uss ?" in drawn[0], drawn[0]  # PID 1 is root's
    assert unread == sum("uss ?" in line for line in drawn)
    assert total == len(drawn)
    assert 1 <= unread < total  # ostoolkit itself runs as nobody: its USS is read
    for index, line in enumerate(lines):  # every table's rule has a row below it
        if TABLE_RULE.fullmatch(line):
            assert [*lines, ""][index + 1].strip(), done.stdout


def test_phase_times_are_in_the_json_and_add_up_within_the_run(tmp_path):
    """Each phase's wall time is there, non-negative, and together within the command's own
    duration; the floor's parts multiply out (numbers only: this is a shared VM)."""
    import json

    out = tmp_path / "tree.json"
    done = subprocess.run(
        [ENTRY, "fork-tree", "--depth", "3", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    phases = report["data"]["phases_s"]
    assert list(phases) == ["calibrate", "fork", "snapshot", "teardown"]
    assert all(seconds >= 0 for seconds in phases.values())
    assert sum(phases.values()) <= report["duration_s"] + 0.001  # both rounded to the ms
    floor = report["data"]["floor"]
    assert floor["processes"] == 14
    assert floor["forks"] == forktree.FLOOR_FORKS
    assert floor["cpus"] == len(os.sched_getaffinity(0))
    assert floor["fork_us"] > 0
    expected = floor["fork_us"] * 14 / floor["cpus"] / 1e6
    assert abs(floor["floor_s"] - expected) < 1e-5
    assert re.search(r"^phases: calibrate .* = .* s$", done.stdout, re.MULTILINE)
    assert re.search(r"^floor: fork cost .* × 14 processes / \d+ CPUs = ", done.stdout, re.M)


def test_the_snapshot_reads_what_psutil_reads_of_a_sleeping_process():
    """procfs.read_process (the tree's snapshot) against psutil on a child that holds still."""
    r, w = os.pipe()
    code = "import sys; print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=r, stdout=subprocess.PIPE)
    os.close(r)
    try:
        assert child.stdout.readline() == b"ready\n"
        proc = psutil.Process(child.pid)
        deadline = time.monotonic() + 10
        while proc.status() != psutil.STATUS_SLEEPING:  # in its read: its memory holds still
            assert time.monotonic() < deadline, "the child never blocked in its read"
        node = forktree._snapshot(child.pid)
        full = proc.memory_full_info()
        assert node == {
            "pid": child.pid,
            "ppid": os.getpid(),
            "name": proc.name(),
            "status": proc.status(),
            "rss": full.rss,
            "uss": full.uss,
        }
    finally:
        os.close(w)
        child.wait(timeout=30)
        child.stdout.close()


def test_the_threaded_snapshot_keeps_the_order_and_drops_the_vanished(monkeypatch):
    monkeypatch.setattr(forktree.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(
        forktree, "_snapshot", lambda pid: None if pid % 3 == 0 else {"pid": pid, "ppid": 1}
    )
    nodes = forktree._snapshot_all(list(range(1, 50)))
    assert list(nodes) == [pid for pid in range(1, 50) if pid % 3]
    assert all(node["pid"] == pid for pid, node in nodes.items())
