"""Real fork, signals and reaping through ostoolkit.children."""

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

from ostoolkit.children import Children, Fds, pinned_main, run_program, signals_held


def test_child_exit_code_is_reaped():
    with Children() as children:
        pid = children.fork(lambda: None)
        assert children.reap(pid) == 0
        assert pid not in children.pids


def test_child_exception_becomes_exit_1():
    def boom():
        raise RuntimeError("boom")

    with Children() as children:
        pid = children.fork(boom)
        assert children.reap(pid) == 1


def test_close_kills_and_reaps_a_blocked_child():
    r, w = os.pipe()
    try:
        with Children() as children:
            pid = children.fork(lambda: os.read(r, 1))
            assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert not psutil.pid_exists(pid) or psutil.Process(pid).ppid() != os.getpid()
    finally:
        os.close(r)
        os.close(w)


def test_child_leads_its_own_process_group_and_is_pinned():
    r, w = os.pipe()
    ready_r, ready_w = os.pipe()
    cpu = min(os.sched_getaffinity(0))

    def target():
        os.write(ready_w, b"r")  # runs only after the child pinned itself
        os.read(r, 1)

    try:
        with Children() as children:
            pid = children.fork(target, cpu=cpu)
            assert os.read(ready_r, 1) == b"r"
            assert os.getpgid(pid) == pid
            assert psutil.Process(pid).cpu_affinity() == [cpu]
            os.write(w, b"x")
            assert children.reap(pid) == 0
    finally:
        for fd in (r, w, ready_r, ready_w):
            os.close(fd)


def test_thread_is_stopped_and_joined_on_close():
    r, w = os.pipe()
    with Children() as children:
        thread = children.start_thread(lambda: os.read(r, 1), lambda: os.write(w, b"q"), "t")
        assert thread.is_alive()
    assert not thread.is_alive()
    os.close(r)
    os.close(w)


def test_pinned_main_restores_affinity():
    before = os.sched_getaffinity(0)
    with pinned_main(min(before)):
        assert os.sched_getaffinity(0) == {min(before)}
    assert os.sched_getaffinity(0) == before


def test_run_program_captures_output():
    done = run_program([sys.executable, "-c", "print('hi')"], timeout=30)
    assert (done.returncode, done.stdout) == (0, "hi\n")


def test_popen_is_supervised_and_end_kills_its_group():
    script = "import os, sys\nif os.fork():\n    print('parent', flush=True)\nsys.stdin.read()"
    with Children() as children:
        proc = children.popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert proc.pid in children.pids
        assert os.getpgid(proc.pid) == proc.pid  # leads its own session and group
        assert proc.stdout.readline() == b"parent\n"
        group = [p for p in psutil.process_iter() if _pgid(p.pid) == proc.pid]
        assert len(group) == 2  # the program and its own child
        children.end(proc.pid)
        assert proc.pid not in children.pids
        children.end(proc.pid)  # a second end is a no-op: never a stranger's pid
        proc.communicate()
        _gone, alive = psutil.wait_procs(group, timeout=10)
        assert not alive


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_fds_release_hands_ends_over_without_closing_them():
    fds = Fds()
    r, w = fds.pipe()
    fds.release(r, w)
    fds.close_all()
    os.write(w, b"x")  # still open: released, not closed
    assert os.read(r, 1) == b"x"
    os.close(r)
    os.close(w)


def test_children_die_when_ostoolkit_is_sigkilled():
    """PR_SET_PDEATHSIG: a SIGKILLed parent takes its blocked child with it."""
    script = textwrap.dedent(
        """
        import os, sys
        from ostoolkit.children import Children
        r, w = os.pipe()
        children = Children()
        pid = children.fork(lambda: os.read(r, 1))
        print(pid, flush=True)
        os.read(r, 1)  # block until killed
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the parent did not report its child"
        child = psutil.Process(int(proc.stdout.readline()))
        proc.kill()
        proc.wait(timeout=30)
        _gone, alive = psutil.wait_procs([child], timeout=10)
        assert not alive, "the child outlived its SIGKILLed parent"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("process", "partner process failed before it was ready$"),
        ("thread", "partner thread failed before it was ready: refused"),
    ],
)
def test_failing_partner_is_reported_not_hung_nor_leaking(model, message, monkeypatch):
    from ostoolkit.errors import OstoolkitError
    from ostoolkit.measure import switch

    def broken_serve(rfd, wfd, kb, cpu):
        raise OSError("refused")

    monkeypatch.setattr(switch, "_serve", broken_serve)
    config = switch.SwitchConfig(
        models=(model,), placements=("same_core",), repeat=1, iterations=10
    )
    fds_before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(OstoolkitError, match=message):
        switch.measure_switch(config)
    assert set(os.listdir("/proc/self/fd")) == fds_before


def test_signals_held_holds_sigint_until_the_block_ends():
    # Sent to this thread: a process-directed signal may go to any thread that does not block
    # it (numpy's OpenBLAS threads, once another test imported numpy), and the mask is per thread.
    steps = []
    try:
        with signals_held():
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            steps.append("signalled")
    except KeyboardInterrupt:
        steps.append("interrupted")
    assert steps == ["signalled", "interrupted"]


def test_a_program_run_by_a_killed_ostoolkit_dies_with_it(tmp_path):
    """run_program's program gets SIGKILL when the process that ran it is SIGKILLed."""
    if not shutil.which("setpriv"):
        pytest.skip("util-linux setpriv is not installed: programs cannot die with ostoolkit")
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    argv = [*SLEEPER, str(fifo)]
    script = f"from ostoolkit.children import run_program\nrun_program({argv!r}, 60)"
    runner = subprocess.Popen([sys.executable, "-c", script])
    program = 0
    try:
        with open(fifo) as reader:  # blocks until the program has started and opened it
            program = int(reader.readline())
        assert psutil.Process(program).ppid() == runner.pid
        runner.kill()
        runner.wait()
        pidfd = os.pidfd_open(program)
        try:
            assert select.select([pidfd], [], [], 5.0)[0], "the program outlived ostoolkit"
        finally:
            os.close(pidfd)
    finally:
        runner.kill()
        runner.wait()
        with contextlib.suppress(ProcessLookupError):
            if program:  # only if the test failed: no leftover either way
                os.kill(program, signal.SIGKILL)


def test_a_program_run_as_another_user_still_dies_with_ostoolkit():
    """setpriv switches the user before it arms the parent-death signal: a change of uid
    clears the signal (prctl(2)), so switching after it would leave the program unguarded."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to switch users) and util-linux setpriv")
    nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]
    done = run_program(["setpriv", "--dump"], timeout=30, as_user=nobody)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "uid: 65534" in lines
    assert "Parent death signal: KILL" in lines


# Says its pid on the FIFO (its last argument), then waits far longer than the test.
SLEEPER = ["/bin/sh", "-c", 'echo $$ > "$0"; exec sleep 60']


def test_a_child_that_meets_a_known_condition_says_it_in_one_line():
    """A limit hit mid-run in a child (a thread server that cannot start a thread) is an
    OstoolkitError: one line on stderr and exit 1, never a traceback; a bug keeps its own."""
    script = (
        "from ostoolkit.children import Children\n"
        "from ostoolkit.errors import LimitExceeded\n"
        "def known():\n    raise LimitExceeded('the thread server could not start: ulimit -v')\n"
        "def bug():\n    raise ValueError('a bug')\n"
        "children = Children()\n"
        "print(children.reap(children.fork(known)), children.reap(children.fork(bug)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["1", "1"]
    lines = done.stderr.splitlines()
    assert "ostoolkit: the thread server could not start: ulimit -v" in lines
    assert done.stderr.count("Traceback") == 1  # the bug's, not the limit's
    assert "ValueError: a bug" in done.stderr
