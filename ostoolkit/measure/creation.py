"""One creation done directly (fork, fork+execve, posix_spawn, subprocess.run, a thread), and
how operations are timed: per-operation clock and getrusage(2) minor-fault counts.

Also what the parent looks like to fork: its page tables, resident memory, huge pages and
memory mappings, which fork copies. measure/spawn.py runs these; measure/mpstart.py adds the
multiprocessing start methods on the same primitives.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from ostoolkit.children import Children
from ostoolkit.errors import OstoolkitError
from ostoolkit.procfs import parse_kb_fields
from ostoolkit.report import Progress

# Operations run before timing and not counted: first-use costs are not creation costs.
WARMUP = 2
# /proc/self/status fields kept for --parent-rss (proc(5)): page tables and resident memory.
STATUS_FIELDS = ("VmPTE", "VmRSS")

Operation = Callable[[], None]


@dataclass(frozen=True)
class Timing:
    """Per-operation times of one method, with the kernel's fault counts over the same ops."""

    samples_us: list[float]
    parent_minflt: int
    child_minflt: int


def noop() -> None:
    """Do nothing: the target whose start and end is what gets measured."""


def _memory_kb() -> dict[str, int]:
    """This process's page-table size, resident memory and transparent huge pages, in KiB."""
    fields = parse_kb_fields(Path("/proc/self/status").read_text(), STATUS_FIELDS)
    with suppress(OSError):  # smaps_rollup exists since Linux 4.14
        rollup = Path("/proc/self/smaps_rollup").read_text()
        fields.update(parse_kb_fields(rollup, ("AnonHugePages",)))
    return fields


def _mappings() -> int:
    """How many memory mappings (VMAs) this process has: fork copies each one (proc(5) maps)."""
    with open("/proc/self/maps", "rb") as maps:
        return sum(1 for _ in maps)


def memory_extra(prefix: str) -> dict[str, int]:
    """The parent's memory figures as result extras, e.g. ``parent_vmpte_kb``."""
    names = {"VmPTE": "vmpte_kb", "VmRSS": "vmrss_kb", "AnonHugePages": "anon_huge_kb"}
    extra = {f"{prefix}_{names[k]}": v for k, v in _memory_kb().items()}
    extra[f"{prefix}_mappings"] = _mappings()
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


def fork_op(children: Children) -> Operation:
    """A bare fork whose child ``_exit``s at once, then waitpid."""

    def op() -> None:
        reaped(children, children.fork(noop, bare=True), "fork")

    return op


def fork_exec_op(children: Children, true: str) -> Operation:
    """Fork, execve ``true`` in the child, then waitpid."""

    def op() -> None:
        reaped(children, children.fork(lambda: os.execv(true, [true]), bare=True), "fork+execve")

    return op


def posix_spawn_op(children: Children, true: str) -> Operation:
    """posix_spawn(3) ``true`` (glibc uses clone(CLONE_VM|CLONE_VFORK)), then waitpid."""

    def op() -> None:
        pid = os.posix_spawn(true, [true], os.environ)
        children.adopt(pid, own_group=False)
        reaped(children, pid, "posix_spawn")

    return op


def subprocess_op(true: str) -> Operation:
    """subprocess.run of ``true``: what most Python code does to start a program."""

    def op() -> None:
        code = subprocess.run([true], check=False).returncode
        if code != 0:
            raise OstoolkitError(f"subprocess.run([{true!r}]) exited with {code}")

    return op


def thread_op() -> Operation:
    """Create, start and join a thread that does nothing."""

    def op() -> None:
        thread = threading.Thread(target=noop, name="ostoolkit-spawn")
        thread.start()
        thread.join()

    return op


def _minflt(who: int) -> int:
    """Minor page faults so far, getrusage(2): RUSAGE_SELF or RUSAGE_CHILDREN (reaped ones)."""
    return resource.getrusage(who).ru_minflt


def time_operations(op: Operation, count: int, progress: Progress | None) -> Timing:
    """Time ``count`` operations one by one, with the faults taken during each."""
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
    return Timing(samples, parent, child)


def warm_up(op: Operation) -> str | None:
    """Run the warm-up operations; return why the method failed, or None when it works."""
    try:
        for _ in range(WARMUP):
            op()
    except (OSError, OstoolkitError) as err:
        return str(err)
    return None


def fault_extra(timing: Timing, own_child: bool) -> dict[str, float]:
    """Minor faults per operation as result extras (children's only when they are ours)."""
    n = len(timing.samples_us)
    extra = {"parent_minflt_per_op": round(timing.parent_minflt / n, 2)}
    if own_child:
        extra["child_minflt_per_op"] = round(timing.child_minflt / n, 2)
    return extra
