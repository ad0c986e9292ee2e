"""Start, pin and always reap child processes and threads: every child leads its own process
group, dies with ostoolkit (PR_SET_PDEATHSIG) and is killed and reaped by ``Children.close`` on
every exit path (docs/guarantees.md, "No process left behind").
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import NoReturn, TypeVar

from ostoolkit.budget import thread_start_failure
from ostoolkit.deathsig import arm_parent_death as arm_parent_death
from ostoolkit.errors import LimitExceeded, OstoolkitError, Terminated, describe_os_error

# How long close() waits for one killed child or stopped thread before giving up on it.
REAP_TIMEOUT_S = 5.0
# The signals that end a run: held while forking and while cleaning up.
_TEARDOWN_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# What ``die_with_us`` has /bin/sh run, once setpriv armed the parent-death signal: the
# program ($2...) starts only if the parent is still the process whose pid is $1.
# ostoolkit/spawn-launcher is the same in shell (tests/os/test_memory_os.py holds them alike).
GUARD = '[ "$PPID" = "$1" ] || exit 1; shift; exec "$@"'


def pin_current(cpu: int) -> None:
    """Pin the calling thread (not the whole process) to one CPU; sched_setaffinity(2)."""
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as err:
        raise OstoolkitError(
            f"cannot pin to CPU {cpu}: {err.strerror}; choose CPUs from "
            f"{sorted(os.sched_getaffinity(0))} with --cpus"
        ) from err


def _die_with_parent(parent_pid: int) -> None:
    """In a fresh child: get SIGKILL when the parent exits, or exit now if it already did."""
    if not arm_parent_death(parent_pid):
        os._exit(1)


def fork_descendant(target: Callable[[], object]) -> int:
    """Fork from inside a child a process that dies with its parent (PR_SET_PDEATHSIG): in a
    tree, each parent reaps its own, and killing any process takes all below it down."""
    parent_pid = os.getpid()
    with signals_held():
        return _fork(lambda: _die_with_parent(parent_pid), target)


def _run_child(setup: Callable[[], None], target: Callable[[], object]) -> NoReturn:
    """In a fresh child: set up, run ``target``, and always ``_exit`` (0, or 1 on an error); a
    traceback only for a real bug, one line for a known condition, nothing when torn down."""
    parent = os.getppid()
    code = 1
    try:
        setup()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TEARDOWN_SIGNALS)  # held by _fork
        target()
        code = 0
    except OstoolkitError as err:  # a known condition (a limit hit mid-run): one line
        with contextlib.suppress(BaseException):
            sys.stderr.write(f"ostoolkit: {err}\n")
            sys.stderr.flush()
    except BaseException as err:  # quiet when it comes from the teardown, not from a bug
        quiet = (BrokenPipeError, ConnectionResetError, KeyboardInterrupt, Terminated, SystemExit)
        if not isinstance(err, quiet) and os.getppid() == parent:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
    finally:
        os._exit(code)


def _fork(setup: Callable[[], None], target: Callable[[], object]) -> int:
    """Fork a child that runs ``_run_child``; a failure (EAGAIN at a task limit, ENOMEM) in the
    project's words. Call it in ``signals_held``: a Ctrl-C then lands neither in a half-made
    child nor before the pid is recorded (``_run_child`` unblocks them)."""
    try:
        pid = os.fork()
    except OSError as err:
        raise describe_os_error(err, "fork") from err
    if pid == 0:  # pragma: no cover - runs in the child, reported by its exit code
        _run_child(setup, target)
    return pid


class Fds:
    """The pipe ends one process owns; each is closed exactly once, even on Ctrl-C (forgotten
    and closed with signals held: closed twice, it could close a file that got its number)."""

    def __init__(self) -> None:
        self._open: set[int] = set()

    def pipe(self) -> tuple[int, int]:
        """A new pipe (read end, write end), recorded as it is made."""
        with signals_held():
            read_end, write_end = os.pipe()
            self._open.update((read_end, write_end))
        return read_end, write_end

    def close(self, fd: int) -> None:
        """Close one owned fd (KeyError if it is not, or no longer, ours)."""
        with signals_held():
            self._open.remove(fd)
            os.close(fd)

    def release(self, *fds: int) -> None:
        """Hand owned fds over to a thread that closes them itself: forget them, open."""
        self._open.difference_update(fds)

    def close_copies(self, keep: set[int]) -> None:
        """In a child forked from the owner: close its copies of every fd but those in ``keep``."""
        for fd in self._open - keep:
            os.close(fd)
        self._open &= keep

    def close_all(self) -> None:
        """Close every fd still owned."""
        with signals_held():
            while self._open:
                os.close(self._open.pop())


def read_before(fd: int, deadline: float) -> bytes | None:
    """One read (up to 64 KiB) of a pipe, waiting at most until ``deadline`` (time.monotonic):
    None if nothing came by then, b"" at end-of-file (every writer closed it or died)."""
    ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
    return os.read(fd, 65536) if ready else None


def wait_exit(pid: int, timeout: float) -> int | None:
    """Reap ``pid``, waiting at most ``timeout`` seconds; return its wait status or None."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        if pidfd is not None:
            ready, _, _ = select.select([pidfd], [], [], timeout)
            if not ready:
                return None
            _, status = os.waitpid(pid, 0)
            return status
        deadline = time.monotonic() + timeout
        while True:  # no pidfd (old kernel): poll under a deadline
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                return status
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)
    except ChildProcessError:
        return 0
    finally:
        if pidfd is not None:
            os.close(pidfd)


_Closable = TypeVar("_Closable", bound="ClosedOnExit")


class ClosedOnExit:
    """A context manager whose exit, however it comes, is ``close()``."""

    def __enter__(self: _Closable) -> _Closable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End whatever the object holds; subclasses say what."""
        raise NotImplementedError


class Children(ClosedOnExit):
    """The processes and threads one measurement started; ``close`` ends and reaps them all."""

    def __init__(self) -> None:
        self._pids: dict[int, None] = {}  # insertion-ordered: close() ends the newest first
        self._threads: list[tuple[threading.Thread, Callable[[], None]]] = []
        self.lost: list[str] = []

    @property
    def pids(self) -> frozenset[int]:
        """The children forked and not yet reaped."""
        return frozenset(self._pids)

    def fork(self, target: Callable[[], object], cpu: int | None = None, bare: bool = False) -> int:
        """Fork a child that runs ``target`` (pinned to ``cpu`` if given), then ``_exit``s. ``bare``
        skips its set-up (own group, parent-death signal) so that a timed fork is the fork alone:
        only for a target that exits at once."""
        parent_pid = os.getpid()

        def setup() -> None:
            if not bare:  # own group, parent-death signal, default signals
                os.setpgid(0, 0)
                _die_with_parent(parent_pid)
                for sig in _TEARDOWN_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
            if cpu is not None:
                pin_current(cpu)

        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        with signals_held():  # no Ctrl-C between the fork and the record of its pid
            pid = _fork(setup, target)
            self.adopt(pid, own_group=not bare)
        return pid

    def popen(
        self,
        argv: list[str],
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a program (vfork+execve) leading its own session; ``close`` or ``end`` kills
        its group and reaps it. Pass ``die_with_us(argv)`` to have it die with ostoolkit too."""
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True
        )
        self.adopt(proc.pid, own_group=False)  # it leads its own session and group already
        return proc

    def adopt(self, pid: int, own_group: bool = True) -> None:
        """Register a child started otherwise (posix_spawn, ...) so that close() reaps it."""
        self._pids[pid] = None
        if own_group:
            with contextlib.suppress(OSError):  # the child may have done it, or exited, first
                os.setpgid(pid, pid)

    def reap(self, pid: int, timeout: float = REAP_TIMEOUT_S) -> int | None:
        """Wait for one child to exit on its own and reap it; return its exit code."""
        status = wait_exit(pid, timeout)
        if status is None:
            return None
        self._pids.pop(pid, None)
        return os.waitstatus_to_exitcode(status)

    def start_thread(
        self, target: Callable[[], object], stop: Callable[[], None], name: str
    ) -> threading.Thread:
        """Start a daemon thread; ``stop`` must make ``target`` return (e.g. close its pipe). One
        that cannot start (a task or memory limit) is a ``LimitExceeded`` naming it."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append((thread, stop))
        try:
            thread.start()
        except RuntimeError as err:  # pthread_create failed: "can't start new thread"
            self._threads.pop()
            raise LimitExceeded(thread_start_failure(f"thread {name}", "lower the counts")) from err
        return thread

    def close(self) -> None:
        """Stop and join every thread, then kill every child's process group and reap it, newest
        first (clients before their servers), with SIGINT/SIGTERM held: a second Ctrl-C cannot
        cut the cleanup short."""
        with signals_held():
            for thread, stop in self._threads:
                if thread.ident is None:  # interrupted between registration and start
                    continue
                if thread.is_alive():
                    with contextlib.suppress(OSError):
                        stop()
                thread.join(REAP_TIMEOUT_S)
                if thread.is_alive():
                    self.lost.append(f"thread {thread.name} did not stop")
            self._threads.clear()
            for pid in reversed(list(self._pids)):
                self.end(pid)

    def end(self, pid: int) -> None:
        """SIGKILL one child now (its process group if it leads one), reap it and forget it."""
        if pid not in self._pids:  # reaped already: its number may be another process's now
            return
        with signals_held():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:  # only a group the child leads, never ours
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if wait_exit(pid, REAP_TIMEOUT_S) is None:
                self.lost.append(f"child {pid} was not reaped")
            self._pids.pop(pid, None)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the block (one that came fires right after),
    making a short step whole for Ctrl-C; only the main thread takes Python's handlers."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _TEARDOWN_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM's handler (``raising_on_sigterm``, ``ostoolkit.entry``): an exception, so that
    ``finally`` blocks and context managers run first."""
    raise Terminated(signum)


@contextlib.contextmanager
def raising_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread; restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def pinned_main(cpu: int) -> Iterator[None]:
    """Pin the calling thread to ``cpu`` for the block, then restore its former CPU set."""
    before = os.sched_getaffinity(0)
    pin_current(cpu)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def die_with_us(argv: list[str], as_user: Sequence[str] = ()) -> list[str]:
    """``argv`` under util-linux setpriv's parent-death SIGKILL, run only if we still live.
    ``as_user`` (setpriv's ``--reuid`` ...) switches the user first, as that clears the signal;
    without setpriv and no user to switch, ``argv`` runs as is."""
    if not as_user and shutil.which("setpriv") is None:
        return argv
    guard = ["/bin/sh", "-c", GUARD, "ostoolkit", str(os.getpid())]
    return ["setpriv", *as_user, "--pdeathsig", "KILL", "--", *guard, *argv]


def run_program(
    argv: list[str], timeout: float, as_user: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run a program in its own session, dying with ostoolkit; kill its group if we stop early.
    ``as_user``: setpriv's options to run it as another user (``die_with_us``)."""
    proc = subprocess.Popen(
        die_with_us(argv, as_user),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
