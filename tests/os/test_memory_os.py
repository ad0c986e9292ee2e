"""measure-memory with real workers: accounting identities and nothing left behind."""

import contextlib
import fcntl
import multiprocessing.process
import multiprocessing.util
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest
from harness.leftovers import MARKER_VAR, kill_marked, wait_gone
from harness.signalled import (
    GONE_WITHIN_S,
    MP_WORKER,
    check_interrupted,
    check_killed,
    marked_run,
    signal_name,
    workers_starting,
)

from ostoolkit import children
from ostoolkit.measure import memory
from ostoolkit.measure.cow import measure_cow
from ostoolkit.measure.memory import MemoryConfig, measure_memory
from ostoolkit.mpspawn import SPAWN_LAUNCHER, spawn_launcher_env, spawn_launcher_warning
from ostoolkit.scratch import run_tempdir, sweep_stale_tempdirs


@pytest.mark.parametrize("model", ["process", "thread", "exec_process", "mp_spawn"])
def test_group_identities_and_positive_marginals(model, monkeypatch):
    seen: list[list[psutil.Process]] = []
    real = memory.measure_group

    def checked(leader, workers):
        """While the group stands: USS <= PSS <= RSS for every process in it."""
        top = psutil.Process(leader)
        procs = [top, *top.children(recursive=True)]
        for proc in procs:
            info = proc.memory_full_info()
            assert info.uss <= info.pss <= info.rss
        seen.append(procs)
        group = real(leader, workers)
        expected = 1 + workers if model != "thread" else 1
        assert group.processes == expected
        if model == "thread":
            assert group.threads >= 1 + workers
        return group

    monkeypatch.setattr(memory, "measure_group", checked)
    m = measure_memory(MemoryConfig(workers=(1, 4), models=(model,)))
    by_id = {r.id: r for r in m.results}
    for metric in ("uss", "pss", "rss"):
        result = by_id[f"memory.{model}.{metric}_per_worker"]
        assert result.extra["slope_bytes"] > 0
        assert result.n == 3  # one marginal per group of 4: three groups
        assert len(seen) == 5  # the empty group, 1, 4, and two more groups of 4
    everyone = [p for group in seen for p in group]
    _gone, alive = psutil.wait_procs(everyone, timeout=20)
    assert not alive


def test_cow_unique_memory_grows_with_what_is_written():
    m = measure_cow(size_mb=16, repeat=1)
    uss = {r.id.removeprefix("memory.cow.uss_after_"): r.median for r in m.results[:5]}
    assert uss["fork"] < 16 * 2**20 / 4  # hardly any of the parent's 16 MiB is its own
    assert uss["read"] < uss["fork"] + 16 * 2**20 / 10  # reading copies nothing
    assert uss["fork"] < uss["write10"] < uss["write50"] < uss["write100"]
    assert uss["write100"] - uss["fork"] >= 16 * 2**20 * 0.9
    faults = m.results[5]
    assert faults.id == "memory.cow.minor_faults_write100"
    assert faults.median >= faults.extra["pages"]


# --- Issue 10: killed mid-start, nothing outlives ostoolkit and nothing stays in /dev/shm or
# $TMPDIR. The entry point runs in its own session with a unique marker in its environment,
# which every process it forks or execs inherits: the run's processes are found by reading
# /proc/PID/environ, whoever their parent is now. "Gone" means dead: a zombie's environ reads
# empty, so a zombie never counts as alive here; it holds no memory, only a pid until its
# parent reaps it. A zombie held by a live process of the run would fail the check through
# that live parent; once none of the run is alive, every orphan's parent is PID 1 (or a
# subreaper), and reaping is init's job (the Firecracker VM this was written on reaps only
# every second or two, so waiting for the pids to vanish would test init, not ostoolkit).

MEMORY_ARGS = ["measure-memory", "--model", "mp_spawn", "--workers", "20"]


@pytest.mark.parametrize("workers", [1, 10])
def test_mp_spawn_killed_while_workers_start_leaves_nothing(workers, tmp_path):
    with marked_run(MEMORY_ARGS, tmp_path) as run:
        run.wait_for(workers_starting(workers))
        check_killed(run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=signal_name)
def test_mp_spawn_interrupted_while_workers_start_leaves_nothing(sig, tmp_path):
    with marked_run(MEMORY_ARGS, tmp_path) as run:
        run.wait_for(workers_starting(1))
        check_interrupted(run, sig)


def test_mp_spawn_workers_use_no_named_semaphore(tmp_path):
    """While they stand, neither the leader nor a worker maps anything from /dev/shm."""
    with marked_run([*MEMORY_ARGS[:-1], "4"], tmp_path) as run:
        interpreter = f"{sys.executable} "  # a worker once the launcher exec'd it
        run.wait_for(
            lambda run: (
                sum(
                    MP_WORKER in p.cmdline and p.cmdline.startswith(interpreter)
                    for p in run.procs()
                )
                >= 4
            )
        )
        for proc in run.alive():
            with contextlib.suppress(OSError):
                assert "/dev/shm/" not in Path(f"/proc/{proc.pid}/maps").read_text()
        assert run.popen.wait(timeout=60) == 0, run.stderr()
        assert list(run.tmpdir.iterdir()) == []


# --- The launcher itself (mpspawn.spawn_context): the parent-death signal is armed before the
# interpreter starts, and a parent that died before that is noticed.

needs_setpriv = pytest.mark.skipif(
    shutil.which("setpriv") is None and not os.environ.get("CI"),
    reason="util-linux's setpriv is not installed",
)
SLEEPER = "import time; time.sleep(30)"
# How long the launcher's parent lives after starting it: from before prctl (the launcher must
# notice the wrong parent) to well after the interpreter is up (the signal must kill it).
PARENT_LIFETIMES_S = ("0", "0.001", "0.003", "0.01", "0.03", "0.3")


@needs_setpriv
def test_the_launcher_arms_sigkill_before_the_interpreter():
    assert spawn_launcher_warning() is None
    probe = (  # PR_GET_PDEATHSIG (2), from the interpreter's first line
        "import ctypes; s = ctypes.c_int(); "
        "ctypes.CDLL(None).prctl(2, ctypes.byref(s), 0, 0, 0); print(s.value)"
    )
    env = {**os.environ, **spawn_launcher_env(sys.executable)}
    done = subprocess.run(
        [SPAWN_LAUNCHER, "-c", probe], env=env, capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{int(signal.SIGKILL)}\n", "")


@needs_setpriv
def test_the_launcher_refuses_a_parent_it_was_not_started_by():
    env = {**os.environ, **spawn_launcher_env(sys.executable), "OSTOOLKIT_SPAWN_PARENT": "1"}
    done = subprocess.run([SPAWN_LAUNCHER, "-c", SLEEPER], env=env, timeout=10)
    assert done.returncode == 1


def test_the_launcher_runs_what_die_with_us_would(tmp_path, monkeypatch):
    """One die-with-parent mechanism: the launcher execs setpriv with children.die_with_us's
    argv, guard included, taking from the environment what die_with_us takes as arguments."""
    setpriv = tmp_path / "setpriv"  # prints the arguments it was given, a NUL after each
    setpriv.write_text('#!/bin/sh\nprintf "%s\\0" "$@"\n')
    setpriv.chmod(0o755)
    env = {**os.environ, **spawn_launcher_env("/bin/true"), "OSTOOLKIT_SPAWN_SETPRIV": str(setpriv)}
    done = subprocess.run(
        [SPAWN_LAUNCHER, "-I", "-c", "pass"], env=env, capture_output=True, timeout=30, check=True
    )
    monkeypatch.setattr(children.shutil, "which", lambda name: str(setpriv))
    expected = children.die_with_us(["/bin/true", "-I", "-c", "pass"])
    assert ["setpriv", *done.stdout.decode().split("\0")[:-1]] == expected


@needs_setpriv
@pytest.mark.parametrize("lifetime", PARENT_LIFETIMES_S)
def test_a_launched_worker_never_outlives_its_parent(lifetime):
    """The parent (a shell) exits before or after the launcher armed the signal: within 1 s,
    the would-be worker (a 30 s sleep) is gone either way."""
    marker = str(uuid.uuid4())
    env = {**os.environ, **spawn_launcher_env(sys.executable), MARKER_VAR: marker}
    script = f'OSTOOLKIT_SPAWN_PARENT=$$ "$0" -c "{SLEEPER}" & sleep {lifetime}; exit 0'
    try:
        for _ in range(3):
            subprocess.run(
                ["/bin/sh", "-c", script, SPAWN_LAUNCHER], env=env, timeout=10, check=True
            )
            left = wait_gone(marker, GONE_WITHIN_S)
            assert not left, f"outlived its parent: {left}"
    finally:
        kill_marked(marker)


def test_without_the_launcher_a_worker_outlives_its_parent():
    """The control: the same interpreter started plainly by the same short-lived shell lives
    on (it would set its own PR_SET_PDEATHSIG only once its main script is imported)."""
    marker = str(uuid.uuid4())
    env = {**os.environ, MARKER_VAR: marker}
    script = f'"$0" -c "{SLEEPER}" & sleep 0.01; exit 0'
    try:
        subprocess.run(["/bin/sh", "-c", script, sys.executable], env=env, timeout=10, check=True)
        assert wait_gone(marker, GONE_WITHIN_S), "the control died: the test proves nothing"
    finally:
        kill_marked(marker)


# --- The run's scratch directory (scratch.run_tempdir) and the sweep of killed runs' ones.


@pytest.fixture
def temp_base(monkeypatch):
    """tempfile's directory, for run_tempdir and sweep_stale_tempdirs, is a private one.

    Short (under /tmp, not pytest's deep tmp_path), as a $TMPDIR usually is: multiprocessing's
    socket paths in the run directory must fit in 107 bytes (unix(7)).
    """
    base = Path(tempfile.mkdtemp(prefix="ostk-test-", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_run_tempdir_is_private_shared_within_the_run_and_removed(temp_base):
    config = multiprocessing.process.current_process()._config
    before = config.get("tempdir")
    with run_tempdir() as scratch:
        assert scratch.parent == temp_base
        assert re.fullmatch(rf"ostoolkit-{os.getpid()}-\w+", scratch.name)
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
        assert multiprocessing.util.get_temp_dir() == str(scratch)  # no pymp-* of its own
        with run_tempdir() as nested:
            assert nested == scratch
        assert scratch.is_dir()
        assert scratch not in sweep_stale_tempdirs()  # its own live run directory is not stale
        (scratch / "left").write_text("x")
    assert not scratch.exists()
    assert config.get("tempdir") == before
    assert list(temp_base.iterdir()) == []


def test_run_tempdir_too_deep_for_a_socket_puts_multiprocessing_in_tmp(tmp_path, monkeypatch):
    """As CPython 3.13 does for its sockets: a second run directory, in /tmp, swept alike."""
    base = tmp_path / ("deep" * 20)
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    config = multiprocessing.process.current_process()._config
    before = config.get("tempdir")
    with run_tempdir() as scratch:
        assert scratch.parent == base
        mp_dir = Path(multiprocessing.util.get_temp_dir())
        assert mp_dir.parent == Path("/tmp")
        assert re.fullmatch(rf"ostoolkit-{os.getpid()}-\w+", mp_dir.name)
        assert stat.S_IMODE(mp_dir.stat().st_mode) == 0o700
        assert mp_dir not in sweep_stale_tempdirs()
    assert not mp_dir.exists()
    assert list(base.iterdir()) == []
    assert config.get("tempdir") == before


def dead_pid() -> int:
    """A pid that no process has now (one just reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    return proc.pid


def test_sweep_removes_only_stale_run_dirs(temp_base, tmp_path):
    dead = dead_pid()
    stale = temp_base / f"ostoolkit-{dead}-stale001"
    reused = temp_base / f"ostoolkit-{os.getpid()}-reused01"  # our pid, but made before we ran
    locked = temp_base / f"ostoolkit-{dead}-locked01"
    for folder in (stale, reused, locked):
        folder.mkdir(mode=0o700)
        (folder / "pymp-x").mkdir()
    long_ago = psutil.Process().create_time() - 3600
    os.utime(reused, (long_ago, long_ago))
    target = tmp_path / "target"
    target.mkdir()
    (temp_base / f"ostoolkit-{dead}-symlink1").symlink_to(target, target_is_directory=True)
    (temp_base / f"ostoolkit-{dead}-afile001").write_text("x")
    (temp_base / "ostoolkit-notapid-x").mkdir()
    kept = [
        locked.name,
        f"ostoolkit-{dead}-symlink1",
        f"ostoolkit-{dead}-afile001",
        "ostoolkit-notapid-x",
    ]
    if os.getuid() == 0:  # another user's directory (root can make one)
        others = temp_base / f"ostoolkit-{dead}-others01"
        others.mkdir()
        os.chown(others, 65534, 65534)
        kept.append(others.name)
    holder = os.open(locked, os.O_RDONLY | os.O_DIRECTORY)  # as a child that inherited it
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with run_tempdir() as live:
            removed = [p for p in sweep_stale_tempdirs() if p.parent == temp_base]
            assert live.is_dir()
    finally:
        os.close(holder)
    assert sorted(removed) == sorted([stale, reused])
    assert sorted(p.name for p in temp_base.iterdir()) == sorted(kept)
    assert target.is_dir()
    assert locked in sweep_stale_tempdirs()  # its last holder is gone now
    assert not locked.exists()
