"""Memory per process versus per thread, counted as experts count it: USS and PSS, not RSS.

For each model a fresh leader starts N idle workers (measure.workergroup); one worker's cost
is the group's growth over N, so the leader and shared pages cancel out (the interference is
context only: it cannot change a byte). The method: docs/method.md, "measure-memory".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from ostoolkit.budget import (
    BYTES_PER_FORKED_PROCESS,
    check_open_files,
    check_task_budget,
    check_thread_room,
    nproc_note,
)
from ostoolkit.children import Children, Fds
from ostoolkit.errors import InvalidRequest
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.limits import LEAST_COUNT, farthest_outside
from ostoolkit.measure.workergroup import FDS_PER_MP_WORKER, await_ready, lead_group
from ostoolkit.mpspawn import main_script, spawn_launcher_warning
from ostoolkit.procfs import read_status_fields
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.scratch import run_tempdir
from ostoolkit.stats import slope
from ostoolkit.units import format_size

# Each model's label, and its budget per worker for the limit check before starting (bytes,
# generous for a fresh interpreter).
WORKER_MODELS = {
    "process":      ("forked process",                 BYTES_PER_FORKED_PROCESS),
    "thread":       ("thread",                         256 * 2**10),
    "exec_process": ("fork+execve'd interpreter",      16 * 2**20),
    "mp_spawn":     ("multiprocessing 'spawn' worker", 48 * 2**20),
}  # fmt: skip
MODELS = tuple(WORKER_MODELS)
METRICS = ("uss", "pss", "rss")
MAX_PROCESSES = 1000
MAX_THREADS = 10000
STATE_KB = 64  # the private state each worker writes before it blocks, in every model
READY_TIMEOUT_PER_WORKER_S = 2.0
READY_TIMEOUT_MIN_S = 30.0
# From /proc/PID/status, which psutil does not read: page tables and stack (KiB), threads.
STATUS_FIELDS = ("VmPTE", "VmStk", "Threads")
KERNEL = ("processes", "threads", "vmpte_kb", "vmstk_kb")  # GroupTotal's, in extra.kernel


@dataclass(frozen=True)
class MemoryConfig:
    """Which models to start, how many workers in each group, and how many groups of the most:
    a figure's samples are the marginals per worker at the largest count, one per group."""

    workers: tuple[int, ...] = (1, 10, 100)
    models: tuple[str, ...] = MODELS
    state_kb: int = STATE_KB
    groups: int = 3

    @classmethod
    def full(cls) -> MemoryConfig:
        """The careful settings (the defaults): 1, 10 and 100 workers, three groups of 100."""
        return cls()

    @classmethod
    def quick(cls) -> MemoryConfig:
        """1 and 10 workers, two groups of 10, for CI logs and the report's runs."""
        return cls(workers=(1, 10), groups=2)

    def steps(self) -> int:
        """Progress steps of ``measure_memory``: each group, the empty one included."""
        return len(self.models) * (len(self.workers) + self.groups)


@dataclass(frozen=True)
class GroupTotal:
    """A whole group's memory at one moment, in bytes, plus the kernel's own figures."""

    workers: int
    uss: int
    pss: int
    rss: int
    processes: int
    threads: int
    vmpte_kb: int
    vmstk_kb: int


def check_config(config: MemoryConfig) -> None:
    """Refuse, before starting anything, counts over the limits or over the host's headroom:
    tasks and memory, open files for 'spawn' workers, and the address space (ulimit -v, -d)
    that the thread model's default-sized stacks reserve in its one leader process."""
    if config.groups < 1:
        raise InvalidRequest(f"groups must be at least 1, not {config.groups}")
    top = max(config.workers, default=0)
    for model in config.models:
        if model not in MODELS:
            raise InvalidRequest(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        limit = MAX_THREADS if model == "thread" else MAX_PROCESSES
        outside = farthest_outside(config.workers, LEAST_COUNT, limit)
        if outside is not None:
            kind = "threads" if model == "thread" else "processes"
            where = f"over {limit}" if outside > limit else f"outside {LEAST_COUNT}..{limit}"
            raise InvalidRequest(f"--workers {outside} is {where} {kind} (the accepted range)")
        check_task_budget(top + 1, WORKER_MODELS[model][1] + config.state_kb * 1024, "--workers")
        if model == "thread":
            check_thread_room(top, f"--workers {top} (the thread model)", "--workers")
        if model == "mp_spawn":
            check_open_files(top * FDS_PER_MP_WORKER, f"--workers {top}", "lower --workers")


def _is_helper(proc: psutil.Process) -> bool:
    """multiprocessing's resource tracker is shared plumbing, not a worker: left out."""
    try:
        return any("resource_tracker" in part for part in proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return True


def measure_group(leader: int, workers: int) -> GroupTotal:
    """Sum USS, PSS and RSS (and page tables, stacks, threads) over a leader and its workers."""
    top = psutil.Process(leader)
    procs = [top, *(p for p in top.children(recursive=True) if not _is_helper(p))]
    uss = pss = rss = threads = pte = stk = 0
    for proc in procs:
        info = proc.memory_full_info()
        uss, pss, rss = uss + info.uss, pss + info.pss, rss + info.rss
        fields = read_status_fields(proc.pid, STATUS_FIELDS)
        threads += fields.get("Threads", 1)
        pte += fields.get("VmPTE", 0)
        stk += fields.get("VmStk", 0)
    return GroupTotal(workers, uss, pss, rss, len(procs), threads, pte, stk)


def run_group(model: str, count: int, kb: int) -> GroupTotal:
    """Start a leader with ``count`` idle workers, measure the group, then release it to end on
    its own; interrupted or failed, Children.close kills the leader's whole group at once."""
    fds = Fds()
    release_r, release_w = fds.pipe()
    ready_r, ready_w = fds.pipe()
    with Children() as children:
        try:

            def lead() -> None:
                fds.close_copies({release_r, ready_w})
                lead_group(model, count, kb, release_r, ready_w)

            leader = children.fork(lead)
            fds.close(ready_w)
            timeout = max(READY_TIMEOUT_MIN_S, count * READY_TIMEOUT_PER_WORKER_S)
            await_ready(ready_r, count + 1, timeout)
            total = measure_group(leader, count)
            fds.close(release_w)  # leader and workers read end-of-file and finish
            children.reap(leader)
            return total
        finally:
            fds.close_all()


def per_worker_results(
    model: str,
    totals: list[GroupTotal],
    largest: list[GroupTotal],
    interference: Interference | None = None,
) -> list[Result]:
    """Per-worker USS, PSS and RSS for one model: samples are the marginals at the largest
    count, one per group of that many (``largest``); ``totals`` is every count once, from 0."""
    base = totals[0]
    results = []
    for metric in METRICS:
        marginals = [(getattr(t, metric) - getattr(base, metric)) / t.workers for t in largest]
        points = [(t.workers, float(getattr(t, metric))) for t in totals]
        extra: dict[str, Any] = {
            "slope_bytes": round(slope(points)),
            "by_workers": {str(t.workers): getattr(t, metric) for t in totals},
        }
        if metric == "uss":
            extra["kernel"] = {str(t.workers): {k: getattr(t, k) for k in KERNEL} for t in totals}
            pte_kb = slope([(t.workers, t.vmpte_kb) for t in totals])
            extra["vmpte_per_worker_bytes"] = round(pte_kb * 1024)
        results.append(
            make_result(
                f"memory.{model}.{metric}_per_worker",
                f"{WORKER_MODELS[model][0]}: {metric.upper()} per worker",
                "bytes",
                marginals,
                extra=extra,
                interference=interference,
            )
        )
    return results


def measure_memory(config: MemoryConfig, progress: Progress | None = None) -> Measurement:
    """Measure each model's memory per worker at each count, against the same group at 0."""
    check_config(config)
    top = max(config.workers)
    notes = [nproc_note(top + 1, "tasks")]
    if "mp_spawn" in config.models:
        notes.append(spawn_launcher_warning())  # probed here once; the forked leaders inherit it
    warnings = [note for note in notes if note]
    results: list[Result] = []
    with run_tempdir():
        for model in config.models:
            groups = []  # every count once, from 0, then more groups of the largest
            with Meter() as meter:
                for count in (0, *config.workers, *[top] * (config.groups - 1)):
                    groups.append(run_group(model, count, config.state_kb))
                    if progress:
                        progress(1)
            totals = groups[: len(config.workers) + 1]
            largest = [next(t for t in totals if t.workers == top), *groups[len(totals) :]]
            results.extend(per_worker_results(model, totals, largest, meter.result))
    return Measurement(tuple(results), tuple(memory_findings(results)), tuple(warnings))


def memory_findings(results: Sequence[Result]) -> list[str]:
    """Say how much sharing saves and how far summed RSS overstates a process's cost."""
    by_id = {r.id: r for r in results}
    findings = []
    process = by_id.get("memory.process.uss_per_worker")
    if process and process.median > 0:
        rss = by_id.get("memory.process.rss_per_worker")
        pss = by_id.get("memory.process.pss_per_worker")
        if rss:
            pss_text = format_size(pss.median) if pss else "?"
            findings.append(
                f"summed RSS says a forked process costs {format_size(rss.median)}, "
                f"{rss.median / process.median:.0f}× its real unique cost "
                f"({format_size(process.median)} USS, {pss_text} PSS): RSS counts every shared "
                "page once per process"
            )
        script = main_script()
        for model in ("exec_process", "mp_spawn"):
            other = by_id.get(f"memory.{model}.uss_per_worker")
            if other is None:
                continue
            rerun = (
                f", and re-runs its main script {script}" if script and model == "mp_spawn" else ""
            )
            findings.append(
                f"a {WORKER_MODELS[model][0]} costs {format_size(other.median)} unique, "
                f"{other.median / process.median:.1f}× a forked process: a fresh interpreter "
                f"shares nothing copy-on-write with its parent{rerun}"
            )
    thread = by_id.get("memory.thread.uss_per_worker")
    if thread:
        findings.append(
            f"a thread costs {format_size(thread.median)}: the stack pages it touched, its state "
            "and interpreter bookkeeping; the kernel adds a kernel stack per task (16 KiB on "
            "x86-64) that no user-space figure shows"
        )
    return findings
