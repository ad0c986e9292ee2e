"""multiprocessing workers held to children.py's guarantees: a 'spawn' worker is exec'd
through SPAWN_LAUNCHER (spawn_context) so that it cannot outlive ostoolkit, and the helpers
multiprocessing starts for a measurement are stopped after it (stopping_mp_helpers).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing.context
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import multiprocessing.spawn
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# The executable multiprocessing runs for a 'spawn' worker (package data; see spawn_context).
SPAWN_LAUNCHER = Path(__file__).with_name("spawn-launcher")
LAUNCHER_PROBE_TIMEOUT_S = 30.0
# Run through the launcher once: prints the parent-death signal it armed (PR_GET_PDEATHSIG = 2).
_LAUNCHER_PROBE = (
    "import ctypes; s = ctypes.c_int(); "
    "ctypes.CDLL(None).prctl(2, ctypes.byref(s), 0, 0, 0); print(s.value)"
)


def spawn_launcher_env(program: str = sys.executable) -> dict[str, str]:
    """The variables SPAWN_LAUNCHER reads: setpriv, the ``program`` it becomes, and this
    process's pid, which it checks its parent against: set them in the one starting workers."""
    return {
        "OSTOOLKIT_SPAWN_SETPRIV": shutil.which("setpriv") or "setpriv",
        "OSTOOLKIT_SPAWN_PYTHON": program,
        "OSTOOLKIT_SPAWN_PARENT": str(os.getpid()),
    }


@functools.cache
def spawn_launcher_warning() -> str | None:
    """Why 'spawn' workers cannot start through SPAWN_LAUNCHER here, as a warning, or None.
    Probed once per process by running the launcher (setpriv 2.33+ has --pdeathsig): call it
    before forking processes that use spawn_context, so that they inherit the answer."""
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
    """multiprocessing's 'spawn' context, whose workers die with the thread that starts them:
    its (process-wide) executable is SPAWN_LAUNCHER within the block, entered in the thread
    that starts the workers and outlives them (docs/guarantees.md)."""
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


def mp_helper_pids() -> tuple[int | None, int | None]:
    """PIDs of multiprocessing's forkserver and resource tracker, if this process runs them."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
    return getattr(server, "_forkserver_pid", None), getattr(tracker, "_pid", None)


def _stop_helper(holder: object, name: str, pid: int, warnings: list[str]) -> None:
    """Stop one multiprocessing helper through its ``_stop`` (closes its "alive" pipe and waits:
    CPython 3.10 to 3.13 have it, its own tests use it); else say it ends with ostoolkit."""
    stop = getattr(holder, "_stop", None)
    if stop is None:
        warnings.append(
            f"multiprocessing's {name} (pid {pid}) runs until ostoolkit exits: no way to stop it"
        )
        return
    with contextlib.suppress(ChildProcessError):
        stop()


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
            _stop_helper(server, "forkserver", server_after, warnings)
        if tracker_after is not None and tracker_after != tracker_before:
            tracker = getattr(multiprocessing.resource_tracker, "_resource_tracker", None)
            _stop_helper(tracker, "resource tracker", tracker_after, warnings)


def main_script() -> str | None:
    """The main script that 'spawn' and forkserver workers re-run, or None (``python -m``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return None if getattr(main, "__spec__", None) is not None else path
