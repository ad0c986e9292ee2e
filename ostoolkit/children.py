"""Start, pin and always reap child processes and threads.

Every child ostoolkit forks leads its own process group, gets SIGKILL when ostoolkit dies
(``PR_SET_PDEATHSIG``, see prctl(2)), and is registered so that ``Children.close`` kills its
whole group and reaps it: on normal exit, on exceptions, on Ctrl-C and, inside
``raising_on_sigterm``, on SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import multiprocessing.context
import multiprocessing.forkserver
import multiprocessing.process
import multiprocessing.resource_tracker
import multiprocessing.spawn
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import NoReturn, TypeVar

import psutil

from ostoolkit.errors import LimitExceeded, OstoolkitError, Terminated, describe_os_error

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# File descriptors kept free beyond what a measurement asks for (stdio, pipes, libraries).
FD_MARGIN = 64
# Descriptors any measurement needs (stdio, its pipes, psutil's /proc reads, libraries).
MIN_OPEN_FILES = 32
# How long close() waits for one killed child or stopped thread before giving up on it.
REAP_TIMEOUT_S = 5.0
THREAD_JOIN_TIMEOUT_S = 5.0
# The signals that end a run: held while forking and while cleaning up.
_TEARDOWN_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when the thread that forked it exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def pin_current(cpu: int) -> None:
    """Pin the calling thread (not the whole process) to one CPU; sched_setaffinity(2)."""
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as err:
        raise OstoolkitError(
            f"cannot pin to CPU {cpu}: {err.strerror}; choose CPUs from "
            f"{sorted(os.sched_getaffinity(0))} with --cpus"
        ) from err


def _enter_child(parent_pid: int) -> None:
    """Make a freshly forked child safe: own group, parent-death signal, default signals."""
    os.setpgid(0, 0)
    set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def fork_descendant(target: Callable[[], object]) -> int:
    """Fork from inside a child: the new process dies with its parent (PR_SET_PDEATHSIG).

    For trees of processes: each parent reaps its own children, and killing any process
    (or ostoolkit itself) takes everything below it down in a cascade.
    """
    parent_pid = os.getpid()

    def setup() -> None:
        set_parent_death_signal()
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    with signals_held():
        pid = _fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _run_child(setup, target)
    return pid


def _run_child(setup: Callable[[], None], target: Callable[[], object]) -> NoReturn:
    """In a fresh child: set up, run ``target``, and always ``_exit`` (0, or 1 on an error).

    The child never returns into the caller's stack (click, pytest). A traceback goes to
    stderr, never stdout, and only for a real bug: a child whose parent is gone, whose pipe
    broke or that was interrupted is being torn down and dies silently.
    """
    parent = os.getppid()
    code = 1
    try:
        setup()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TEARDOWN_SIGNALS)  # held by _fork
        target()
        code = 0
    except BaseException as err:
        if not _being_torn_down(err, parent):
            with contextlib.suppress(BaseException):
                traceback.print_exc()
    finally:
        os._exit(code)


def _being_torn_down(err: BaseException, parent: int) -> bool:
    """Whether a child's exception comes from its teardown rather than from a bug."""
    quiet = (BrokenPipeError, ConnectionResetError, KeyboardInterrupt, Terminated, SystemExit)
    return isinstance(err, quiet) or os.getppid() != parent


def _fork() -> int:
    """os.fork, its failure (EAGAIN at a task limit, ENOMEM) in the project's words.

    Call it inside ``signals_held``: a Ctrl-C sent to the process group would otherwise
    reach the new child while Python's own after-fork hooks run, before the child can reset
    its handlers, and print a traceback there; and in the parent it could land between the
    fork and the record of the pid. The child unblocks them in ``_run_child``, once its set-up
    has reset the handlers.
    """
    try:
        return os.fork()
    except OSError as err:
        raise describe_os_error(err, "fork") from err


class Fds:
    """The pipe ends one process owns; each is closed exactly once, even on Ctrl-C.

    ``close`` forgets an fd and closes it with signals held, so a signal never leaves it
    recorded but closed: closing it again later could close whatever file got its number.
    """

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        """Fork a child that runs ``target`` (pinned to ``cpu`` if given), then ``_exit``s.

        The child never returns into the caller's stack: whatever happens it ends in
        ``os._exit`` (0 on success, 1 on an exception, whose traceback goes to stderr).
        ``bare`` skips the child's set-up (own group, parent-death signal) so that timing a
        fork measures the fork alone; use it only for a target that exits at once.
        """
        parent_pid = os.getpid()

        def setup() -> None:
            if not bare:
                _enter_child(parent_pid)
            if cpu is not None:
                pin_current(cpu)

        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        with signals_held():  # no Ctrl-C between the fork and the record of its pid
            pid = _fork()
            if pid == 0:  # pragma: no cover - runs in the child, reported by its exit code
                _run_child(setup, target)
            self.adopt(pid, own_group=not bare)
        return pid

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
        """Start a daemon thread; ``stop`` must make ``target`` return (e.g. close its pipe)."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append((thread, stop))
        thread.start()
        return thread

    def close(self) -> None:
        """Stop and join every thread, then kill every child's process group and reap it.

        Children are ended newest first (clients before the servers they talk to), and
        SIGINT/SIGTERM are held back meanwhile so that a second Ctrl-C cannot cut the
        cleanup short; a signal that arrived is delivered when it is done.
        """
        with signals_held():
            self._close()

    def _close(self) -> None:
        """The body of ``close``, run with SIGINT and SIGTERM held."""
        for thread, stop in self._threads:
            if thread.ident is None:  # interrupted between registration and start
                continue
            if thread.is_alive():
                with contextlib.suppress(OSError):
                    stop()
            thread.join(THREAD_JOIN_TIMEOUT_S)
            if thread.is_alive():
                self.lost.append(f"thread {thread.name} did not stop")
        self._threads.clear()
        for pid in reversed(list(self._pids)):
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
    """Block SIGINT and SIGTERM in this thread for the block; one that came fires right after.

    Makes a short step whole for Ctrl-C: a fork and the record of its pid, a close and the
    record that the fd is closed, the kill-and-reap of cleanup (pthread_sigmask(3)). Only
    the main thread takes Python's signal handlers, so holding them there is enough.
    """
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _TEARDOWN_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception so ``finally`` blocks and context managers run."""
    raise Terminated(signum)


@contextlib.contextmanager
def raising_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread; restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
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


def run_command(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run an external command in its own session; kill its whole group if we stop early."""
    proc = subprocess.Popen(
        argv,
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


def task_headroom() -> tuple[int | None, str]:
    """How many more tasks (processes or threads) this user may start, and the binding limit.

    RLIMIT_NPROC counts every task of the real user id (getrlimit(2)); kernel.threads-max and
    kernel.pid_max bound the whole system (proc(5)). None means no limit was found.
    """
    candidates: list[tuple[int, str]] = []
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    uid = os.getuid()
    if soft != resource.RLIM_INFINITY and uid != 0:  # root is exempt (CAP_SYS_RESOURCE)
        mine = 0
        for proc in psutil.process_iter(["uids", "num_threads"]):
            uids, threads = proc.info["uids"], proc.info["num_threads"]
            if uids is not None and uids.real == uid:
                mine += threads or 1
        candidates.append((soft - mine, f"RLIMIT_NPROC={soft} (ulimit -u)"))
    total_tasks = sum((p.info["num_threads"] or 1) for p in psutil.process_iter(["num_threads"]))
    for name in ("threads-max", "pid_max"):
        try:
            limit = int(Path(f"/proc/sys/kernel/{name}").read_text())
        except (OSError, ValueError):
            continue
        candidates.append((limit - total_tasks, f"kernel.{name}={limit}"))
    if not candidates:
        return None, "no limit found"
    return min(candidates)


def check_task_budget(tasks: int, bytes_per_task: int, option: str) -> None:
    """Refuse, before any fork, a request for more tasks or memory than the host can give.

    Leaves half the headroom and half the available memory free: a measurement must never
    be what pushes a host into its limits.
    """
    headroom, limit = task_headroom()
    if headroom is not None and tasks > headroom // 2:
        raise LimitExceeded(
            f"{option} asks for {tasks} tasks but only {max(headroom, 0)} more are allowed "
            f"({limit}); ostoolkit uses at most half of that: lower {option}"
        )
    available = psutil.virtual_memory().available
    needed = tasks * bytes_per_task
    if needed > available // 2:
        raise LimitExceeded(
            f"{option} needs about {needed // 2**20} MiB but only {available // 2**20} MiB are "
            f"available; ostoolkit uses at most half of that: lower {option}"
        )


def mp_helper_pids() -> tuple[int | None, int | None]:
    """PIDs of multiprocessing's forkserver and resource tracker, if this process runs them."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
    return getattr(server, "_forkserver_pid", None), getattr(tracker, "_pid", None)


def _stop_helper(holder: object, name: str, pid: int) -> str | None:
    """Stop one multiprocessing helper process through its ``_stop``; say if that is missing.

    ``_stop`` closes the helper's "alive" pipe, so it exits, and waits for it: CPython's own
    tests use it (3.10 to 3.13 have it). Without it the helper ends when ostoolkit does.
    """
    stop = getattr(holder, "_stop", None)
    if stop is None:
        return f"multiprocessing's {name} (pid {pid}) runs until ostoolkit exits: no way to stop it"
    with contextlib.suppress(ChildProcessError):
        stop()
    return None


@contextlib.contextmanager
def stopping_mp_helpers(warnings: list[str]) -> Iterator[None]:
    """Within the block, multiprocessing may start its helpers; stop those it started, after."""
    server_before, tracker_before = mp_helper_pids()
    try:
        yield
    finally:
        server_after, tracker_after = mp_helper_pids()
        if server_after is not None and server_after != server_before:
            server = getattr(multiprocessing.forkserver, "_forkserver", None)
            note = _stop_helper(server, "forkserver", server_after)
            warnings.extend([note] if note else [])
        if tracker_after is not None and tracker_after != tracker_before:
            tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
            note = _stop_helper(tracker, "resource tracker", tracker_after)
            warnings.extend([note] if note else [])


def _open_files_needed(descriptors: int) -> int:
    """Descriptors open now, plus ``descriptors`` more, plus a margin for libraries."""
    return descriptors + len(os.listdir("/proc/self/fd")) + FD_MARGIN


def check_open_files(descriptors: int, what: str, lower: str = "") -> None:
    """Refuse, before anything starts, a need for more open files than RLIMIT_NOFILE allows.

    Only the hard limit (``ulimit -Hn``) is binding: the soft one is raised when needed.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = _open_files_needed(descriptors)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise LimitExceeded(
            f"{what} needs about {needed} open files but RLIMIT_NOFILE's hard limit is {hard} "
            f"(ulimit -Hn): raise the limit{' or ' + lower if lower else ''}"
        )


@contextlib.contextmanager
def enough_open_files(descriptors: int) -> Iterator[None]:
    """Raise RLIMIT_NOFILE's soft limit for the block if ``descriptors`` more fds need it.

    Counted on top of those open now and a margin; the hard limit (``ulimit -Hn``) cannot
    be passed without privileges, so a count above it is refused before anything starts.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = _open_files_needed(descriptors)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        yield
        return
    check_open_files(descriptors, f"{descriptors} connections", "lower the client count")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---------------------------------------------------------------------------------------------
# Issue 10: multiprocessing 'spawn' workers that cannot outlive their parent, and one home for
# a run's scratch space. spawn_context, spawn_launcher_warning, spawn_launcher_env,
# run_tempdir, sweep_stale_tempdirs.

# The executable multiprocessing runs for a 'spawn' worker (package data; see spawn_context).
SPAWN_LAUNCHER = Path(__file__).with_name("spawn-launcher")
# The variables the launcher reads: setpriv's path, the program it becomes, the parent's pid.
SPAWN_SETPRIV_VAR = "OSTOOLKIT_SPAWN_SETPRIV"
SPAWN_PROGRAM_VAR = "OSTOOLKIT_SPAWN_PYTHON"
SPAWN_PARENT_VAR = "OSTOOLKIT_SPAWN_PARENT"
LAUNCHER_PROBE_TIMEOUT_S = 30.0
# Run through the launcher once: prints the parent-death signal it armed (PR_GET_PDEATHSIG = 2).
_LAUNCHER_PROBE = (
    "import ctypes; s = ctypes.c_int(); "
    "ctypes.CDLL(None).prctl(2, ctypes.byref(s), 0, 0, 0); print(s.value)"
)
# $TMPDIR/ostoolkit-<pid>-<random>: one run's scratch directory (run_tempdir).
RUN_DIR_PREFIX = "ostoolkit-"
_RUN_DIR_NAME = re.compile(r"ostoolkit-([0-9]+)-[A-Za-z0-9_]+")
# psutil's start times come from whole-second boot times: compare them with this much slack.
START_TIME_SLACK_S = 1.0
# A unix socket path holds at most 107 bytes (unix(7)); multiprocessing names its listening
# sockets "listener-XXXXXXXX" inside its temp dir (connection.arbitrary_address).
UNIX_PATH_MAX = 107
MP_LISTENER_NAME = len("/listener-XXXXXXXX")
# Where multiprocessing's sockets go when $TMPDIR is too deep for them (tempfile's own
# fallbacks; CPython 3.13's multiprocessing does the same): these are swept too.
SHORT_TEMP_BASES = ("/tmp", "/var/tmp", "/usr/tmp")
# The active run directory of this process (or of the parent it was forked from).
_RUN_DIR: dict[str, Path] = {}
_ABSENT = object()


def spawn_launcher_env(program: str = sys.executable) -> dict[str, str]:
    """The variables SPAWN_LAUNCHER reads: setpriv, the ``program`` it becomes, this process.

    The launcher checks its parent against this process's pid, so they must be set by (and
    in) the process that starts the workers.
    """
    return {
        SPAWN_SETPRIV_VAR: shutil.which("setpriv") or "setpriv",
        SPAWN_PROGRAM_VAR: program,
        SPAWN_PARENT_VAR: str(os.getpid()),
    }


@functools.cache
def spawn_launcher_warning() -> str | None:
    """Why 'spawn' workers cannot start through SPAWN_LAUNCHER here, as a warning; None if they can.

    Checked once per process by running the launcher for real: it must arm SIGKILL as the
    parent-death signal before the interpreter starts (util-linux setpriv 2.33+ has
    --pdeathsig). Call it before forking processes that use spawn_context, so that they
    inherit the answer instead of probing again, and to report the warning.
    """
    reason = _launcher_problem()
    if reason is None:
        return None
    return (
        f"multiprocessing 'spawn' workers start without ostoolkit's parent-death launcher "
        f"({reason}); until a worker's interpreter is up, a killed ostoolkit can leave it "
        "running for seconds"
    )


def _launcher_problem() -> str | None:
    """What stops SPAWN_LAUNCHER from arming the parent-death signal here, or None."""
    if shutil.which("setpriv") is None:
        return "setpriv is not installed: it comes with util-linux"
    if not os.access(SPAWN_LAUNCHER, os.X_OK):
        return f"{SPAWN_LAUNCHER} is missing or not executable: reinstall ostoolkit"
    try:
        done = subprocess.run(
            [str(SPAWN_LAUNCHER), "-I", "-S", "-c", _LAUNCHER_PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, **spawn_launcher_env()},
            timeout=LAUNCHER_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"the launcher did not run: {err}"
    if done.returncode != 0 or done.stdout.strip() != str(int(signal.SIGKILL)):
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"setpriv --pdeathsig did not arm the parent-death signal: {last}"
    return None


@contextlib.contextmanager
def spawn_context(warnings: list[str]) -> Iterator[multiprocessing.context.SpawnContext]:
    """multiprocessing's 'spawn' context, whose workers die with the thread that starts them.

    A 'spawn' worker is fork+exec of a fresh interpreter that imports the parent's main script
    (heavy) before it runs any of our code, so a PR_SET_PDEATHSIG set by the worker itself
    comes too late: a parent killed meanwhile leaves it running for seconds. Within the block
    multiprocessing's executable is SPAWN_LAUNCHER, which arms the signal (prctl(2), through
    setpriv) before exec of the interpreter, and exits if its parent already died. The
    executable is process-wide (multiprocessing.spawn.set_executable), so the resource tracker
    and forkserver started in the block get it too; it and the launcher's variables are
    restored after. Enter it in the process, and the thread, that starts the workers and
    outlives them (the signal fires when that thread exits). Without a working setpriv:
    plain 'spawn', and a warning in ``warnings`` says what was skipped and why.
    """
    context = multiprocessing.get_context("spawn")
    note = spawn_launcher_warning()
    if note is not None:
        if note not in warnings:
            warnings.append(note)
        yield context
        return
    previous_executable = multiprocessing.spawn.get_executable()
    variables = spawn_launcher_env()
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    context.set_executable(str(SPAWN_LAUNCHER))
    try:
        yield context
    finally:
        multiprocessing.spawn.set_executable(previous_executable)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _mp_config() -> dict[str, object] | None:
    """multiprocessing's per-process settings, where util.get_temp_dir keeps its 'tempdir'."""
    config = getattr(multiprocessing.process.current_process(), "_config", None)
    return config if isinstance(config, dict) else None


def _new_run_dir(base: str | None = None) -> tuple[Path, int]:
    """Make ``<base>/ostoolkit-<pid>-<random>`` (0700, mkdtemp) and flock it; its path and lock."""
    path = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-", dir=base))
    lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # no flock here (some network file systems): pid only
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return path, lock


def _fits_sockets(path: Path) -> bool:
    """Whether multiprocessing's listening sockets fit in a unix socket path inside ``path``."""
    return len(os.fsencode(path)) + MP_LISTENER_NAME <= UNIX_PATH_MAX


def _short_base() -> str | None:
    """The first of SHORT_TEMP_BASES that is a writable directory, or None."""
    for base in SHORT_TEMP_BASES:
        if os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            return base
    return None


@contextlib.contextmanager
def run_tempdir() -> Iterator[Path]:
    """This run's scratch directory, ``$TMPDIR/ostoolkit-<pid>-<random>/`` (0700), removed after.

    The one home for a run's temporary files (pass it as ``dir=``), so that what a SIGKILL
    leaves behind is one directory that sweep_stale_tempdirs finds. multiprocessing's
    per-process temp dir (util.get_temp_dir: the forkserver's socket lives there) is pinned
    to it for the block, so that it makes no ``pymp-*`` directory of its own; if a socket
    path in it would be too long (unix(7): 107 bytes), to a second run directory in /tmp
    instead, as CPython 3.13 falls back for its sockets. A directory is flock(2)ed while in
    use, which is how a sweep tells it from a stale one. Re-entrant: a nested block (or one
    in a child forked inside) gets the same directory, and only the outermost block of the
    process that made it removes it.
    """
    active = _RUN_DIR.get("path")
    if active is not None and active.is_dir():
        yield active
        return
    made = [_new_run_dir()]
    path = made[0][0]
    try:
        base = None if _fits_sockets(path) else _short_base()
        if base is not None and _fits_sockets(Path(base, path.name)):
            with contextlib.suppress(OSError):  # then multiprocessing is left as it is
                made.append(_new_run_dir(base))
        mp_dir = made[-1][0] if _fits_sockets(made[-1][0]) else None
        pinned = _mp_config() if mp_dir is not None else None
        saved_mp = pinned.get("tempdir", _ABSENT) if pinned is not None else _ABSENT
        if pinned is not None:
            pinned["tempdir"] = str(mp_dir)
        _RUN_DIR["path"] = path
        try:
            yield path
        finally:
            _RUN_DIR.pop("path", None)
            if pinned is not None and pinned.get("tempdir") == str(mp_dir):
                if saved_mp is _ABSENT:
                    pinned.pop("tempdir", None)
                else:
                    pinned["tempdir"] = saved_mp
    finally:
        for folder, lock in made:
            shutil.rmtree(folder, ignore_errors=True)
            os.close(lock)


def _owner_may_run(pid: int, changed: float) -> bool:
    """Whether ``pid`` may still be the process that made a run directory last changed then.

    A pid that is gone, a zombie, or a process started after the directory last changed (the
    pid was reused) is not its owner. When in doubt (no permission), it may be.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.create_time() <= changed + START_TIME_SLACK_S
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):
        return True


def _stale_run_dir(path: Path, pid: int) -> bool:
    """Whether a run directory is ours to remove: our uid's real directory, no owner left.

    Opened without following symlinks, and checked on the open descriptor. Stale only if
    nobody holds its flock (the owner, and children forked from it, hold it until they
    die, even by SIGKILL) and its pid no longer runs the process that made it.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        if _owner_may_run(pid, info.st_mtime):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a process that inherited the lock still runs
        except OSError:
            pass  # no flock on this file system: the pid alone decides
        return True
    finally:
        os.close(fd)


def sweep_stale_tempdirs() -> list[Path]:
    """Remove the run directories (run_tempdir) that killed ostoolkit processes left behind.

    SIGKILL runs no cleanup, so a killed run's ``$TMPDIR/ostoolkit-<pid>-*`` stays (and its
    multiprocessing directory in /tmp, if $TMPDIR was too deep); the next command removes
    them. Only real directories (never symlinks) of this uid whose owner is gone are
    touched; see _stale_run_dir. Never raises: a sweep must not stop a command. Returns what
    it removed.
    """
    removed: list[Path] = []
    entries: list[os.DirEntry[str]] = []
    for base in dict.fromkeys([tempfile.gettempdir(), *SHORT_TEMP_BASES]):
        with contextlib.suppress(OSError):
            entries.extend(os.scandir(base))
    for entry in entries:
        match = _RUN_DIR_NAME.fullmatch(entry.name)
        if match is None:
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False) and _stale_run_dir(path, int(match[1])):
                shutil.rmtree(path)
                removed.append(path)
        except OSError:
            continue
    return removed
