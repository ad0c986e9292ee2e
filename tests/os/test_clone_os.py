"""clone: the kernel facts that hold on every Linux, shown by the experiments."""

import os
import shutil
import signal
from collections.abc import Callable

import pytest
from harness.signalled import MarkedRun, check_interrupted, check_killed, marked_run, signal_name

from ostoolkit.measure.clone import measure_clone, parse_strace


@pytest.fixture(scope="module")
def clone():
    cwd = os.getcwd()
    measurement = measure_clone()
    assert os.getcwd() == cwd  # the thread's chdir was undone
    return measurement


def shares(measurement, kind, aspect):
    result = next(r for r in measurement.results if r.id == f"clone.{kind}.shares.{aspect}")
    assert result.unit == "bool"
    return result.median


def test_a_thread_shares_everything(clone):
    for aspect in ("vm", "files", "fs", "sighand", "thread"):
        assert shares(clone, "thread", aspect) == 1.0, aspect


def test_a_forked_child_shares_nothing(clone):
    for aspect in ("vm", "files", "fs", "sighand", "thread"):
        assert shares(clone, "fork", aspect) == 0.0, aspect


def test_identity_from_proc(clone):
    thread = next(r for r in clone.results if r.id == "clone.thread.shares.thread")
    fork = next(r for r in clone.results if r.id == "clone.fork.shares.thread")
    assert thread.extra["tgid"] == os.getpid() != thread.extra["tid"]
    assert fork.extra["tgid"] == fork.extra["tid"]
    assert fork.extra["ppid"] == os.getpid()


def test_probe_fd_and_signal_left_as_they_were(clone):
    import signal

    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(901)
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


def test_strace_flags_match_the_experiments(clone):
    if shutil.which("strace") is None:
        if os.environ.get("CI"):
            pytest.fail("strace is missing: make test installs it")
        pytest.skip("strace is not installed")
    flags = clone.data["flags"]
    assert "CLONE_VM" in flags["thread"]
    assert "CLONE_THREAD" in flags["thread"]
    assert "CLONE_VM" not in flags["fork"]
    assert "CLONE_VFORK" in flags["vfork"]


def test_parse_strace():
    text = (
        '10 write(2, "@fork\\n", 6) = 6\n'
        "10 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 11\n"
        '10 write(2, "@thread\\n", 8) = 8\n'
        "10 clone3({flags=CLONE_VM|CLONE_FS|CLONE_THREAD, child_tid=0x2}, 88) = 12\n"
        '10 write(2, "@vfork\\n", 7) = 7\n'
        "10 vfork() = 13\n"
    )
    assert parse_strace(text) == {
        "fork": "CLONE_CHILD_SETTID|SIGCHLD",
        "thread": "CLONE_VM|CLONE_FS|CLONE_THREAD",
        "vfork": "vfork() (CLONE_VM|CLONE_VFORK)",
    }


# --- Issue 10: signalled while its tasks run (a forked child, the spawned program, strace),
# nothing is left: no process 1 s after SIGKILL, no file in TMPDIR once the next run swept.

STRACE = shutil.which("strace")
MOMENTS: dict[str, Callable[[MarkedRun], bool]] = {
    # a task of the run besides ostoolkit: the forked child, the spawned program, strace
    "child": lambda run: any(p.pid != run.popen.pid for p in run.procs()),
    # strace is writing its trace: a file test, quicker than reading every /proc/PID/environ,
    # as strace lives only a tenth of a second
    "strace": lambda run: any(run.tmpdir.glob("ostoolkit-*/*/trace")),
}


@pytest.mark.parametrize(
    ("sig", "moment"),
    [
        (signal.SIGKILL, "child"),
        (signal.SIGKILL, "strace"),
        (signal.SIGINT, "child"),
        (signal.SIGTERM, "strace"),
    ],
    ids=signal_name,
)
def test_clone_signalled_mid_run_leaves_nothing(sig, moment, tmp_path):
    if moment == "strace" and STRACE is None:
        pytest.skip("strace is not installed")
    with marked_run(["clone"], tmp_path) as run:
        run.wait_for(MOMENTS[moment])
        if sig == signal.SIGKILL:
            check_killed(run)
        else:
            check_interrupted(run, sig)
