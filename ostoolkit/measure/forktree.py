"""Build a real process tree with fork() (and execve()), timing every fork, or read any live
process's subtree (``read_subtree``). The method: docs/method.md, "fork-tree".
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ostoolkit.budget import check_task_budget, nproc_note
from ostoolkit.children import REAP_TIMEOUT_S, Children, Fds, die_with_us, read_before
from ostoolkit.errors import NoSuchPid, OstoolkitError, TreeTooLarge
from ostoolkit.measure import treenode
from ostoolkit.procfs import read_process, read_threads
from ostoolkit.report import Measurement, Result, make_result

DEFAULT_MAX_PROCS = 512
# What one tree process costs the host: the pages it writes after fork, its page tables, its
# kernel task. Measured 0.87 MiB a process (MemAvailable's drop while a 1,022-process tree
# stood; mean USS 0.82 MiB, VmPTE 108 KiB; 2026-12-06), budgeted at about twice that. The
# budget's BYTES_PER_FORKED_PROCESS (4 MiB) is for children that work: with it a 4,094-process
# tree "needed" 16 GiB and was refused on a 24 GiB host.
BYTES_PER_TREE_PROCESS = 2 * 2**20
# What a leaf execs with --exec: a small program that blocks reading the release pipe on its
# stdin until end-of-file, so it holds still like the forked nodes and exits with them.
EXEC_PROGRAM = "cat"
# How long the tree may take to report in, per process, before ostoolkit gives up on it.
REPORT_TIMEOUT_PER_PROC_S = 0.5
REPORT_TIMEOUT_MIN_S = 15.0
EXEC_SETTLE_S = 5.0  # how long an exec'd program may take to reach its blocking read
# How long the released tree may take to exit and be reaped, per process, before its groups
# are killed instead: 4,094 processes took 3.5-4 s here (2 CPUs), near children's 5 s default.
TEARDOWN_TIMEOUT_PER_PROC_S = 0.01
# Bare forks of the tree's root timed one at a time before the tree, for the floor (fork cost
# × processes / CPUs): a few, as each costs a fork, an exit and a reap.
FLOOR_FORKS = 5
# What the lean root runs (tree_root_argv): its argv[1] is the folder holding ostoolkit.
LAUNCH = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from ostoolkit.measure.treenode import main; main(sys.argv[2:])"
)
# psutil's status words for the state letters of /proc/PID/stat (psutil._pslinux's
# PROC_STATUSES; a unit test holds them alike), so data.tree says what it said under psutil.
STATUS_WORDS = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": "zombie",
    "X": "dead",
    "x": "dead",
    "K": "wake-kill",
    "W": "waking",
    "I": "idle",
    "P": "parked",
}

CONCURRENT_NOTE = (
    "the tree's processes fork concurrently, so these times include their contention for "
    "CPUs; ostoolkit measure-spawn times one creation at a time"
)


@dataclass(frozen=True)
class TreeConfig:
    """The shape of the tree to build."""

    depth: int = 3
    breadth: int = 2
    exec_leaves: bool = False
    max_procs: int = DEFAULT_MAX_PROCS


def tree_size(depth: int, breadth: int, exec_leaves: bool = False) -> int:
    """Processes a tree will start below its root: breadth + breadth² + ... (+ leaves' execs)."""
    forked = sum(int(breadth**level) for level in range(1, depth + 1))  # int: typeshed says Any
    return forked + (int(breadth**depth) if exec_leaves and depth > 0 else 0)


def check_tree(config: TreeConfig) -> int:
    """Refuse, before any fork, a tree over --max-procs or over what the host allows."""
    total = tree_size(config.depth, config.breadth, config.exec_leaves)
    if total > config.max_procs:
        raise TreeTooLarge(
            f"a tree of depth {config.depth} and breadth {config.breadth}"
            f"{' with --exec' if config.exec_leaves else ''} starts {total} processes, over "
            f"--max-procs {config.max_procs}; lower --depth/--breadth or raise --max-procs"
        )
    check_task_budget(total, BYTES_PER_TREE_PROCESS, "--depth/--breadth")
    return total


def report_lines(config: TreeConfig) -> int:
    """Report lines the tree sends (``treenode``): one per bare fork timed, one per process
    that forks or execs (ready, the root's too), one per fork and one per exec."""
    forked = tree_size(config.depth, config.breadth)
    execs = tree_size(config.depth, config.breadth, config.exec_leaves) - forked
    return FLOOR_FORKS + (forked + 1) + forked + execs


def tree_root_argv(config: TreeConfig) -> list[str]:
    """The lean interpreter that becomes the tree's root (``treenode.main``): isolated (-I),
    without site (-S), importing ostoolkit's treenode from this installation only."""
    package_root = str(Path(treenode.__file__).resolve().parents[2])
    program = EXEC_PROGRAM if config.exec_leaves else "-"
    args = [str(config.depth), str(config.breadth), program, str(FLOOR_FORKS)]
    return [sys.executable, "-I", "-S", "-c", LAUNCH, package_root, *args]


class Reports:
    """The tree's report lines (``treenode``), read in order until a deadline; OstoolkitError
    on a failure line ("X pid reason"), at end-of-file (the tree died) or at the deadline."""

    def __init__(self, fd: int, timeout: float) -> None:
        self.fd = fd
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.buffer = b""
        self.lines: list[list[str]] = []

    def take(self, count: int) -> list[list[str]]:
        """The next ``count`` lines, split into words."""
        while len(self.lines) < count:
            chunk = read_before(self.fd, self.deadline)
            if chunk is None:
                raise OstoolkitError(f"the tree did not report in within {self.timeout:.0f} s")
            if not chunk:
                raise OstoolkitError("a process of the tree died before it reported")
            self.buffer += chunk
            *complete, self.buffer = self.buffer.split(b"\n")
            for line in complete:
                words = line.decode().split()
                if words[0] == "X":
                    raise OstoolkitError(f"tree process {words[1]} failed: {' '.join(words[2:])}")
                self.lines.append(words)
        taken, self.lines = self.lines[:count], self.lines[count:]
        return taken


def _snapshot(pid: int) -> dict[str, Any] | None:
    """What the kernel says of one process now (``procfs.read_process``: the fields psutil
    gave, read directly); None when it vanished or cannot be read."""
    seen = read_process(pid)
    if seen is None:
        return None
    return {
        "pid": pid,
        "ppid": seen.ppid,
        "name": seen.name,
        "status": STATUS_WORDS.get(seen.state, "?"),
        "rss": seen.rss,
        "uss": seen.uss,
    }


def unread_uss_warnings(tree: dict[str, Any]) -> list[str]:
    """One warning counting the processes whose USS the kernel refused (``uss`` None), or none:
    smaps_rollup needs ptrace read access, refused for another user's process (to root, for one
    with capabilities it lacks or in another user namespace)."""
    nodes = flatten(tree)
    unread = sum(1 for node in nodes if "uss" in node and node["uss"] is None)
    if not unread:
        return []
    why = (
        "they belong to other users; run as root to see them"
        if os.geteuid() != 0
        else "even root may not read them here (the kernel's ptrace access check)"
    )
    return [f"USS of {unread} of {len(nodes)} processes could not be read: {why}"]


def nest(nodes: dict[int, dict[str, Any]], root: int) -> dict[str, Any]:
    """Nest flat nodes (each with a "ppid") under ``root``, children ordered by pid."""
    children: dict[int, list[int]] = {}
    for pid, node in nodes.items():
        if pid != root:
            children.setdefault(node["ppid"], []).append(pid)

    def build(pid: int) -> dict[str, Any]:
        return {**nodes[pid], "children": [build(kid) for kid in sorted(children.get(pid, []))]}

    return build(root)


def flatten(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Nodes of a nested tree in depth-first order, root first."""
    return [tree, *(node for kid in tree["children"] for node in flatten(kid))]


def ancestry(pid: int) -> list[dict[str, Any]]:
    """The chain of processes from PID 1 (or the namespace's first) down to ``pid``."""
    proc = psutil.Process(pid)
    chain = [*reversed(proc.parents()), proc]
    return [{"pid": p.pid, "name": _name(p)} for p in chain]


def _name(proc: psutil.Process) -> str:
    """A process's name, or "?" when it vanished meanwhile."""
    try:
        return proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"


def _sleeping_or_gone(pid: int) -> bool:
    """Whether an exec'd program has reached its blocking read (or ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_SLEEPING
    except psutil.NoSuchProcess:
        return True


class Phases:
    """Wall time of each phase of a run, in seconds, in the order they ran (data.phases_s)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (added to it if it ran before)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed, 6)


def floor(fork_samples: list[float], processes: int) -> dict[str, float | int]:
    """The floor of a tree of ``processes``: fork cost × processes / CPUs this process may use,
    in seconds, and its parts (data.floor): no tree, however built, ends sooner on these CPUs."""
    cost = statistics.median(fork_samples)
    cpus = len(os.sched_getaffinity(0))
    return {
        "fork_us": round(cost, 3),
        "forks": len(fork_samples),
        "processes": processes,
        "cpus": cpus,
        "floor_s": round(cost * processes / cpus / 1e6, 6),
    }


def build_tree(
    config: TreeConfig, on_ready: Callable[[Measurement], None] | None = None
) -> Measurement:
    """Fork the tree below this process, read it while it holds still, then end it; ``on_ready``
    gets the measurement while the tree still stands (to look at it with ps). Each phase's wall
    time is in data.phases_s (calibrate, fork, snapshot, teardown: docs/method.md), the floor in
    data.floor."""
    total = check_tree(config)
    unbound = nproc_note(total, "processes")
    phases = Phases()
    fds = Fds()
    release_r, release_w = fds.pipe()
    report_r, report_w = fds.pipe()
    root: int | None = None
    with Children() as children:
        try:
            with phases.timing("calibrate"):
                argv = die_with_us(tree_root_argv(config))
                root = children.popen(argv, stdin=release_r, stdout=report_w).pid
                fds.close(release_r)
                fds.close(report_w)  # only the tree writes now: end-of-file means it died
                timeout = max(REPORT_TIMEOUT_MIN_S, total * REPORT_TIMEOUT_PER_PROC_S)
                reader = Reports(report_r, timeout)
                fork_samples = [float(w[1]) for w in reader.take(FLOOR_FORKS)]
            with phases.timing("fork"):
                lines = reader.take(report_lines(config) - FLOOR_FORKS)
                # "F pid parent fork_us" and "E pid parent fork_us exec_us"; "R pid": ready.
                forks = {int(w[1]): float(w[3]) for w in lines if w[0] in ("F", "E")}
                execs = {int(w[1]): float(w[4]) for w in lines if w[0] == "E"}
                settle = time.monotonic() + EXEC_SETTLE_S
                while not all(map(_sleeping_or_gone, execs)) and time.monotonic() < settle:
                    time.sleep(0.005)
            with phases.timing("snapshot"):
                nodes = _snapshot_all([root, *forks])
                for pid, node in nodes.items():
                    node["fork_us"] = forks.get(pid)
                    node["exec_us"] = execs.get(pid)
                measurement = _tree_measurement(
                    nest(nodes, root), ancestry(root), forks, execs, skipped=total + 1 - len(nodes)
                )
            if unbound:
                measurement += Measurement((), warnings=(unbound,))
            if on_ready:
                on_ready(measurement)
        finally:
            with phases.timing("teardown"):
                fds.close(release_w)  # every node reads end-of-file, reaps its children, exits
                if root is not None:
                    children.reap(root, max(REAP_TIMEOUT_S, total * TEARDOWN_TIMEOUT_PER_PROC_S))
                fds.close_all()
    data = {"phases_s": phases.seconds, "floor": floor(fork_samples, total)}
    return measurement + Measurement((), data=data)


def _snapshot_all(pids: list[int]) -> dict[int, dict[str, Any]]:
    """Snapshot each pid, dropping those that vanished: on one thread per CPU, as the kernel's
    walk of each process's page tables for smaps_rollup is most of the time and read(2)
    releases the GIL; the threads are joined (pending reads cancelled) before it returns."""
    workers = min(len(os.sched_getaffinity(0)), len(pids))
    if workers <= 1:
        seen = list(map(_snapshot, pids))
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="ostoolkit-snapshot")
        try:
            seen = list(pool.map(_snapshot, pids, chunksize=1))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return {pid: node for pid, node in zip(pids, seen, strict=True) if node is not None}


def _processes(tree: dict[str, Any], label: str) -> Result:
    """How many processes the tree holds below its root: an exact count."""
    return make_result("forktree.processes", label, "count", [len(flatten(tree)) - 1], exact=True)


def _chain(lineage: list[dict[str, Any]]) -> str:
    """The ancestry in words: ``init(1) → bash(77) → ...``."""
    return "ancestry: " + " → ".join(f"{n['name']}({n['pid']})" for n in lineage)


def _tree_measurement(
    tree: dict[str, Any],
    lineage: list[dict[str, Any]],
    forks: dict[int, float],
    execs: dict[int, float],
    skipped: int,
) -> Measurement:
    """Results (fork and exec times, memory per process) and the tree as data."""
    below = [n for n in flatten(tree)[1:] if n.get("exec_us") is None]  # forked Python only
    rss = [n["rss"] for n in below]
    uss = [n["uss"] for n in below if n.get("uss") is not None]
    figures = (
        ("fork", "fork() as the parent sees it", "us", list(forks.values())),
        ("fork_exec", "fork() + execve() until the program is loaded", "us", list(execs.values())),
        ("rss_per_process", "RSS per tree process", "bytes", rss),
        ("uss_per_process", "USS per tree process", "bytes", uss),
    )
    results = [_processes(tree, "processes in the tree")]
    for name, label, unit, values in figures:
        notes = (CONCURRENT_NOTE,) if unit == "us" else ()
        if values:
            results.append(make_result(f"forktree.{name}", label, unit, values, notes=notes))
    findings = [f"{_chain(lineage)}: every process descends from PID {lineage[0]['pid']}"]
    if uss:
        findings.append(
            f"the {len(uss)} forked tree processes sum to {sum(rss) / 2**20:.1f} MiB of RSS but "
            f"only {sum(uss) / 2**20:.1f} MiB unique (USS): a forked child shares its "
            "parent's pages copy-on-write until one of them writes"
        )
    warnings = [f"{skipped} tree processes vanished before they could be read"] if skipped else []
    warnings += unread_uss_warnings(tree)
    return Measurement(
        tuple(results), tuple(findings), tuple(warnings), {"tree": tree, "ancestry": lineage}
    )


def read_subtree(pid: int, threads: bool = False) -> Measurement:
    """Read an existing process's subtree; count what vanished or was unreadable. ``threads``:
    each process also lists its other threads (tid, name, state), as pstree draws them."""
    try:
        top = psutil.Process(pid)
        below = top.children(recursive=True)
    except psutil.NoSuchProcess:
        raise NoSuchPid(f"no process with pid {pid}") from None
    phases = Phases()
    with phases.timing("snapshot"):
        nodes = _snapshot_all([pid, *(p.pid for p in below)])
    if pid not in nodes:
        raise NoSuchPid(f"process {pid} vanished or cannot be read")
    if threads:
        for node_pid, node in nodes.items():
            node["threads"] = read_threads(node_pid)
    tree = nest(nodes, pid)  # one whose parent vanished meanwhile is left out: skipped
    skipped = len(below) + 1 - len(flatten(tree))
    lineage = ancestry(pid)
    warnings = (
        [f"skipped {skipped} processes that vanished or could not be read"] if skipped else []
    )
    return Measurement(
        (_processes(tree, "processes below it"),),
        (_chain(lineage),),
        tuple(warnings + unread_uss_warnings(tree)),
        {"tree": tree, "ancestry": lineage, "skipped": skipped, "phases_s": phases.seconds},
    )
