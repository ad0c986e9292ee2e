"""One creation done directly (fork, fork+execve, posix_spawn, subprocess.run, a thread), how
operations are timed (clock and getrusage(2) minor faults), and what the parent looks like to
fork, which copies it. measure/spawn.py runs these; measure/mpstart.py adds multiprocessing.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

from ostoolkit.children import Children
from ostoolkit.errors import OstoolkitError
from ostoolkit.procfs import parse_kb_fields
from ostoolkit.report import Progress

WARMUP = 2  # operations run first, not timed: first-use costs are not creation costs
# The parent's memory as result extras, from /proc/self/status and smaps_rollup (proc(5)).
MEMORY_EXTRAS = {
    "VmPTE": "parent_vmpte_kb",
    "VmRSS": "parent_vmrss_kb",
    "AnonHugePages": "parent_anon_huge_kb",
}

Operation = Callable[[], None]


def noop() -> None:
    """Do nothing: the target whose start and end is what gets measured."""


def memory_extra() -> dict[str, int]:
    """This process's page tables, resident memory, transparent huge pages (KiB) and memory
    mappings (VMAs), all of which fork copies, as result extras, e.g. ``parent_vmpte_kb``."""
    text = Path("/proc/self/status").read_text()
    with suppress(OSError):  # smaps_rollup exists since Linux 4.14
        text += Path("/proc/self/smaps_rollup").read_text()
    fields = parse_kb_fields(text, tuple(MEMORY_EXTRAS))
    extra = {MEMORY_EXTRAS[name]: kb for name, kb in fields.items()}
    with open("/proc/self/maps", "rb") as maps:
        extra["parent_mappings"] = sum(1 for _ in maps)
    return extra


def touched_buffer(mb: int) -> bytearray:
    """Allocate ``mb`` MiB and write one byte per page, so every page is really mapped."""
    buf = bytearray(mb * 2**20)
    page = os.sysconf("SC_PAGESIZE")
    buf[::page] = b"\x01" * len(range(0, len(buf), page))
    return buf


def reaped(children: Children, pid: int, what: str) -> None:
    """Reap one child and insist it exited cleanly."""
    code = children.reap(pid)
    if code is None:
        raise OstoolkitError(f"{what}: child {pid} did not exit; it will be killed")
    if code != 0:
        raise OstoolkitError(f"{what}: child {pid} exited with {code}")


def posix_spawned(children: Children, path: str, env: Mapping[str, str], what: str) -> None:
    """posix_spawn(3) ``path`` (glibc uses clone(CLONE_VM|CLONE_VFORK)), then waitpid."""
    pid = os.posix_spawn(path, [path], env)
    children.adopt(pid, own_group=False)
    reaped(children, pid, what)


def forked(children: Children, target: Callable[[], object], what: str) -> None:
    """A bare fork whose child runs ``target`` (which ends it at once), then waitpid."""
    reaped(children, children.fork(target, bare=True), what)


def subprocess_run(true: str) -> None:
    """subprocess.run of ``true``: what most Python code does to start a program."""
    code = subprocess.run([true], check=False).returncode
    if code != 0:
        raise OstoolkitError(f"subprocess.run([{true!r}]) exited with {code}")


def thread_start_join() -> None:
    """The thread operation: create, start and join a thread that does nothing."""
    thread = threading.Thread(target=noop, name="ostoolkit-spawn")
    thread.start()
    thread.join()


def _minflt(who: int) -> int:
    """Minor page faults so far, getrusage(2): RUSAGE_SELF or RUSAGE_CHILDREN (reaped ones)."""
    return resource.getrusage(who).ru_minflt


def time_operations(
    op: Operation, count: int, progress: Progress | None, own_child: bool
) -> tuple[list[float], dict[str, float]]:
    """Time ``count`` operations one by one: the samples (µs), and the minor faults per
    operation as result extras (the children's only when they are ours)."""
    samples: list[float] = []
    parent = child = 0
    for _ in range(count):
        self_before = _minflt(resource.RUSAGE_SELF)
        children_before = _minflt(resource.RUSAGE_CHILDREN)
        start = time.perf_counter_ns()
        op()
        elapsed = time.perf_counter_ns() - start
        parent += _minflt(resource.RUSAGE_SELF) - self_before
        child += _minflt(resource.RUSAGE_CHILDREN) - children_before
        samples.append(elapsed / 1e3)
        if progress:
            progress(1)
    faults = {"parent_minflt_per_op": round(parent / count, 2)}
    if own_child:
        faults["child_minflt_per_op"] = round(child / count, 2)
    return samples, faults


def warm_up(op: Operation) -> str | None:
    """Run the warm-up operations; return why the method failed, or None when it works."""
    try:
        for _ in range(WARMUP):
            op()
    except (OSError, OstoolkitError) as err:
        return str(err)
    return None
