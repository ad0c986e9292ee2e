"""Creation through multiprocessing: one worker started and joined with each start method
('fork', 'forkserver', 'spawn'), and what ostoolkit's parent-death launcher adds to 'spawn'.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import ForkProcess, ForkServerProcess, SpawnProcess
from multiprocessing.process import BaseProcess
from typing import Any

from ostoolkit.children import Children
from ostoolkit.errors import OstoolkitError
from ostoolkit.measure.creation import Operation, noop, posix_spawned
from ostoolkit.mpspawn import SPAWN_LAUNCHER, spawn_launcher_env, spawn_launcher_warning

# multiprocessing start method behind each mp_* method, and its Process class (what
# get_context(method).Process gives).
MP_START_METHODS = {"mp_fork": "fork", "mp_forkserver": "forkserver", "mp_spawn": "spawn"}
MP_PROCESS_CLASSES: dict[str, type[BaseProcess]] = {
    "fork": ForkProcess,
    "forkserver": ForkServerProcess,
    "spawn": SpawnProcess,
}
# Modules a forkserver imports once, before it forks workers: the main module and the
# measurement's, which imports this one and the workers' target (and names it in results).
FORKSERVER_PRELOAD = ["__main__", "ostoolkit.measure.spawn"]
MP_JOIN_TIMEOUT_S = 60.0  # a worker that does nothing and has not ended by then is stuck
# Why a 'spawn' or 'forkserver' worker most often fails: it imports the parent's main module.
MAIN_REIMPORT_HINT = (
    " (its worker re-imports the main module, which must guard its own start with "
    "if __name__ == '__main__'; the worker's traceback is on stderr)"
)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Run the block whole, re-sending after it a SIGINT or SIGTERM that came meanwhile: a
    ``Process.start`` cut half-way leaves an unknown worker holding the resource tracker's pipe
    forever. Python's handlers are swapped, not the (inherited) mask."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    try:
        for held in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(held) is not None:  # None: a handler Python cannot put back
                previous[held] = signal.signal(held, lambda signum, _: arrived.append(signum))
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)


def mp_op(start_method: str) -> Operation:
    """Create, start and join a multiprocessing worker that does nothing; never leave it alive."""
    process_class = MP_PROCESS_CLASSES[start_method]
    if start_method == "forkserver":
        # As a careful user would: the server imports the main module and the target's once,
        # so a worker is a fork of the server and skips re-importing them (see
        # multiprocessing.spawn._fixup_main_from_path), as 'spawn' workers cannot.
        multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)

    def op() -> None:
        proc = process_class(target=noop, name="ostoolkit-spawn")
        try:
            with _interrupts_deferred():
                proc.start()
            proc.join(MP_JOIN_TIMEOUT_S)
            if proc.exitcode != 0:
                hint = "" if start_method == "fork" else MAIN_REIMPORT_HINT
                raise OstoolkitError(
                    f"multiprocessing {start_method!r} worker ended with {proc.exitcode}{hint}"
                )
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join()
            proc.close()

    return op


def launcher_extra(children: Children, true: str | None, count: int) -> dict[str, Any]:
    """How the timed 'spawn' workers started, and what the parent-death launcher costs: ``true``
    posix_spawn'ed through it against directly, alternately after a warm-up pair, the difference
    of medians (None, with the reason, if that fails)."""
    if spawn_launcher_warning() is not None:
        return {"launcher": None}
    extra: dict[str, Any] = {"launcher": "ostoolkit spawn-launcher (setpriv --pdeathsig KILL)"}
    if true is None:
        return extra
    launcher = str(SPAWN_LAUNCHER)
    env = {**os.environ, **spawn_launcher_env(true)}
    runs: dict[str, list[float]] = {true: [], launcher: []}
    try:
        for index in range(count + 1):
            for path, environ in ((true, os.environ), (launcher, env)):
                start = time.perf_counter_ns()
                posix_spawned(children, path, environ, "the spawn launcher")
                if index:  # the first pair warms up
                    runs[path].append((time.perf_counter_ns() - start) / 1e3)
    except (OSError, OstoolkitError) as err:
        return {**extra, "launcher_overhead_us": None, "launcher_overhead_error": str(err)}
    extra["launcher_overhead_us"] = round(
        statistics.median(runs[launcher]) - statistics.median(runs[true]), 1
    )
    extra["launcher_overhead_n"] = count
    return extra
