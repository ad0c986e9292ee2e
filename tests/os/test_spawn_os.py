"""Real creation measurements with tiny counts: invariants and kernel counters, never timings."""

import multiprocessing.forkserver
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from harness.signalled import (
    MarkedRun,
    check_interrupted,
    check_killed,
    marked_run,
    signal_name,
    workers_starting,
)

from ostoolkit.errors import LimitExceeded
from ostoolkit.measure import mpstart, spawn
from ostoolkit.measure.spawn import MAX_PARENT_RSS_MB, SpawnConfig, measure_spawn
from ostoolkit.mpspawn import mp_helper_pids, spawn_launcher_warning

CONFIG = SpawnConfig(repeat=3, mp_repeat=1, parent_rss_mb=(16,))


@pytest.fixture(scope="module")
def run():
    """One measurement for the module, with what it left behind (the autouse fixture runs later)."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    threads, fds = threading.active_count(), set(os.listdir("/proc/self/fd"))
    helpers = mp_helper_pids()
    steps: list[int] = []
    measurement = measure_spawn(CONFIG, steps.append)
    return SimpleNamespace(
        m=measurement,
        steps=steps,
        left=[p for p in me.children(recursive=True) if p.pid not in before],
        threads=threading.active_count() - threads,
        new_fds=set(os.listdir("/proc/self/fd")) - fds,
        helpers_before=helpers,
        helpers_after=mp_helper_pids(),
    )


def test_every_configured_id_is_reported(run):
    methods = [f"spawn.{m}" for m in CONFIG.methods]
    assert [r.id for r in run.m.results] == [*methods, "spawn.fork_rss_16mb"]
    assert len(methods) == 8
    assert not [w for w in run.m.warnings if "skipped" in w]


def test_figures_are_consistent(run):
    for result in run.m.results:
        expected = 1 if result.id.startswith("spawn.mp_") else 3
        assert result.n == len(result.samples) == expected
        assert result.unit == "us"
        assert all(s > 0 for s in result.samples)
        assert result.p10 <= result.median <= result.p90
        assert result.extra["ratio_to_thread"] > 0
    thread = next(r for r in run.m.results if r.id == "spawn.thread")
    assert thread.extra["ratio_to_thread"] == 1.0


def test_kernel_counters_are_recorded(run):
    by_id = {r.id: r for r in run.m.results}
    fork, big = by_id["spawn.fork"], by_id["spawn.fork_rss_16mb"]
    for result in (fork, big):
        assert result.extra["parent_vmpte_kb"] > 0
        # fork write-protects the parent's private pages too (copy-on-write): its next writes
        # to its stack and heap fault, on every fork.
        assert result.extra["parent_minflt_per_op"] > 0
        assert result.extra["child_minflt_per_op"] > 0  # a forked child writes its stack: COW
    assert big.extra["parent_rss_mb"] == 16
    assert big.extra["parent_vmrss_kb"] >= 16 * 1024  # every page of the buffer was written


def test_findings_speak_of_threads_and_memory(run):
    assert any("a thread start here" in f for f in run.m.findings)
    assert any("the parent's memory" in f for f in run.m.findings)


def test_progress_steps(run):
    assert sum(run.steps) == CONFIG.steps()


def test_nothing_left_behind(run):
    assert run.left == []
    assert run.threads <= 0
    assert run.new_fds == set()
    assert run.helpers_after == run.helpers_before


def test_multiprocessing_helpers_are_stopped():
    """The forkserver and resource tracker it started are gone: checked by the autouse fixture."""
    before = mp_helper_pids()
    m = measure_spawn(SpawnConfig(repeat=1, mp_repeat=1, methods=("mp_forkserver", "mp_spawn")))
    assert [r.id for r in m.results] == ["spawn.mp_forkserver", "spawn.mp_spawn"]
    assert mp_helper_pids() == before


def test_a_forkserver_started_before_is_left_running():
    server = multiprocessing.forkserver._forkserver
    server.ensure_running()
    try:
        pid = server._forkserver_pid
        measure_spawn(SpawnConfig(mp_repeat=1, methods=("mp_forkserver",)))
        assert server._forkserver_pid == pid
        assert psutil.pid_exists(pid)
    finally:
        server._stop()
        multiprocessing.resource_tracker._resource_tracker._stop()


def test_missing_true_skips_with_warnings(monkeypatch):
    monkeypatch.setattr(spawn.shutil, "which", lambda name: None)
    config = SpawnConfig(repeat=2, methods=("fork_exec", "posix_spawn", "subprocess", "thread"))
    steps: list[int] = []
    m = measure_spawn(config, steps.append)
    assert [r.id for r in m.results] == ["spawn.thread"]
    skipped = [w for w in m.warnings if "skipped" in w]
    assert len(skipped) == 3
    assert all("no 'true' executable" in w for w in skipped)
    assert sum(steps) == config.steps()


@pytest.fixture
def no_allocation(monkeypatch):
    def refuse(mb):
        raise AssertionError(f"allocated {mb} MiB")

    monkeypatch.setattr(spawn, "touched_buffer", refuse)


@pytest.mark.usefixtures("no_allocation")
def test_absurd_parent_rss_is_refused_before_allocating():
    with pytest.raises(LimitExceeded, match="--parent-rss"):
        measure_spawn(SpawnConfig(methods=(), parent_rss_mb=(MAX_PARENT_RSS_MB * 1000,)))


@pytest.mark.usefixtures("no_allocation")
def test_parent_rss_beyond_available_memory_is_refused(monkeypatch):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=64 * 2**20))
    with pytest.raises(LimitExceeded, match="--parent-rss"):
        measure_spawn(SpawnConfig(methods=("thread",), parent_rss_mb=(64,)))


# --- Issue 10: the timed 'spawn' worker starts through the parent-death launcher, which the
# figure says, with the launcher's own cost beside it; signalled mid-run, nothing is left.


def test_mp_spawn_is_timed_through_the_launcher(run):
    spawn_result = next(r for r in run.m.results if r.id == "spawn.mp_spawn")
    if spawn_launcher_warning() is not None:
        assert spawn_result.extra["launcher"] is None
        assert spawn_launcher_warning() in run.m.warnings
        return
    assert "setpriv --pdeathsig KILL" in spawn_result.extra["launcher"]
    assert isinstance(spawn_result.extra["launcher_overhead_us"], float)
    assert spawn_result.extra["launcher_overhead_n"] == CONFIG.mp_repeat
    assert any(
        "parent-death launcher" in f and "timed in the same run" in f for f in run.m.findings
    )


SPAWN_ARGS = ["measure-spawn", "--method", "mp_spawn", "--mp-repeat", "5"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=signal_name)
def test_signalled_while_a_spawn_worker_starts_leaves_nothing(sig, tmp_path):
    with marked_run(SPAWN_ARGS, tmp_path) as run:
        run.wait_for(workers_starting(1))
        if sig == signal.SIGKILL:
            check_killed(run)
        else:
            check_interrupted(run, sig)


@pytest.mark.parametrize("depth", ["short", "deep"])
def test_killed_with_a_forkserver_running_leaves_no_pymp_dir(depth, tmp_path):
    """The forkserver's socket lives in a run directory, which the next run sweeps: the run's
    own, or a second one in /tmp when $TMPDIR is too deep for a socket path (unix(7))."""
    args = ["measure-spawn", "--method", "mp_forkserver", "--mp-repeat", "100"]
    base = Path(tempfile.mkdtemp(dir="/tmp")) if depth == "short" else tmp_path / ("deep" * 20)
    base.mkdir(exist_ok=True)
    try:
        with marked_run(args, base) as run:
            sockets = run.tmpdir if depth == "short" else Path("/tmp")

            def listening(run: MarkedRun) -> bool:
                server = any("multiprocessing.forkserver" in p.cmdline for p in run.procs())
                return server and any(sockets.glob(f"ostoolkit-{run.popen.pid}-*/listener-*"))

            run.wait_for(listening)
            check_killed(run)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_signal_while_a_worker_starts_is_deferred_until_it_started():
    """Process.start runs whole (else a half-started worker would hang the tracker's stop)."""
    reached = []

    def start() -> None:
        with mpstart._interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
            reached.append("after the signal")

    with pytest.raises(KeyboardInterrupt):
        start()
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
