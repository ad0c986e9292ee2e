"""Time slices: two identical CPU-bound children pinned to one CPU take turns; their schedstat
counters over equal windows give the average slice and the run-queue wait per slice
(docs/method.md). measure.states starts its children the same way (``fork_announcing``).
"""

from __future__ import annotations

import contextlib
import os
import select
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import psutil

from ostoolkit.children import Children, read_before
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.interference import Meter
from ostoolkit.measure.placement import choose_cpu
from ostoolkit.procfs import (
    NO_SCHEDSTAT,
    NS_PER_MS,
    SchedStat,
    read_schedstat,
    schedstat_available,
    scheduler_facts,
)
from ostoolkit.report import Measurement, Progress, Result, make_result

READY = b"r"  # what a child writes once it is pinned and running its task
START_TIMEOUT_S = 5.0  # bound on the wait for a child to start: generous, a loaded host is slow


# The results: id, label, unit, and the WindowFigures field whose windows (where schedstat
# could say) are the samples.
RESULTS = (
    ("sched.timeslice", "time slice, two CPU-bound tasks on one CPU", "ms", "slice_ms"),
    ("sched.runqueue_wait", "run-queue wait per slice (ready)", "ms", "wait_per_slice_ms"),
    (
        "sched.involuntary_per_s",
        "involuntary switches per second (both tasks)",
        "per_s",
        "involuntary_per_s",
    ),
)


@dataclass(frozen=True)
class TaskSample:
    """One child's counters at one instant: schedstat (None where missing) and psutil's."""

    schedstat: SchedStat | None
    involuntary: int


@dataclass(frozen=True)
class Snapshot:
    """Both children's counters at one instant, with the monotonic time they were read."""

    t_s: float
    tasks: tuple[TaskSample, ...]


@dataclass(frozen=True)
class WindowFigures:
    """What one window between two snapshots shows; None where schedstat cannot say."""

    elapsed_s: float
    slice_ms: float | None
    wait_per_slice_ms: float | None
    involuntary_per_s: float
    busy_share: float | None
    run_shares: tuple[float, ...] | None


def window_figures(before: Snapshot, after: Snapshot) -> WindowFigures:
    """Turn two snapshots of both children into one window's slice, wait and switch rate."""
    elapsed = after.t_s - before.t_s
    involuntary = sum(
        b.involuntary - a.involuntary for a, b in zip(before.tasks, after.tasks, strict=True)
    )
    per_s = involuntary / elapsed if elapsed > 0 else 0.0
    deltas = [
        b.schedstat - a.schedstat
        for a, b in zip(before.tasks, after.tasks, strict=True)
        if a.schedstat is not None and b.schedstat is not None
    ]
    if not deltas or len(deltas) != len(before.tasks):
        return WindowFigures(elapsed, None, None, per_s, None, None)
    total = sum(deltas, SchedStat(0, 0, 0))
    busy = total.run_ns / 1e9 / elapsed if elapsed > 0 else None
    shares = tuple(d.run_ns / total.run_ns for d in deltas) if total.run_ns > 0 else None
    slice_ms = total.run_ns / total.slices / NS_PER_MS if total.slices > 0 else None
    wait_ms = total.wait_ns / total.slices / NS_PER_MS if total.slices > 0 else None
    return WindowFigures(elapsed, slice_ms, wait_ms, per_s, busy, shares)


@contextlib.contextmanager
def parent_off(cpu: int) -> Iterator[list[str]]:
    """Keep the calling thread off ``cpu`` so it does not compete there; restore it after."""
    before = os.sched_getaffinity(0)
    others = before - {cpu}
    warnings: list[str] = []
    if others:
        os.sched_setaffinity(0, others)
    else:
        warnings.append(
            f"only CPU {cpu} is usable: ostoolkit itself runs there too and briefly competes "
            "with the children whenever it reads their counters"
        )
    try:
        yield warnings
    finally:
        os.sched_setaffinity(0, before)


def spin() -> None:
    """Burn CPU forever: the children's CPU-bound work, ended only by SIGKILL."""
    while True:
        pass


def fork_announcing(
    children: Children, stack: contextlib.ExitStack, target: Callable[[], object], cpu: int
) -> tuple[int, int]:
    """Fork a pinned child, wait until it says it runs; return its pid and liveness fd: only the
    child keeps the pipe's write end, so the read end reaches end-of-file when it exits."""
    read_end, write_end = os.pipe()
    stack.callback(os.close, read_end)

    def announced() -> None:
        os.write(write_end, READY)  # pinned and running
        target()

    try:
        pid = children.fork(announced, cpu=cpu)
    finally:
        os.close(write_end)
    if read_before(read_end, time.monotonic() + START_TIMEOUT_S) != READY:
        raise OstoolkitError(f"child {pid} pinned to CPU {cpu} did not start; see stderr")
    return pid, read_end


def _snapshot(procs: Sequence[psutil.Process], schedstat: bool) -> Snapshot:
    """Read both children's counters now."""
    tasks = tuple(
        TaskSample(read_schedstat(p.pid) if schedstat else None, p.num_ctx_switches().involuntary)
        for p in procs
    )
    return Snapshot(time.perf_counter(), tasks)


def _sample_windows(
    cpu: int, duration_s: float, windows: int, schedstat: bool, progress: Progress | None
) -> tuple[list[WindowFigures], list[str]]:
    """Run two busy children on ``cpu`` and read their counters around each window."""
    with contextlib.ExitStack() as stack:
        warnings = stack.enter_context(parent_off(cpu))
        children = stack.enter_context(Children())
        started = [fork_announcing(children, stack, spin, cpu) for _ in range(2)]
        procs = [psutil.Process(pid) for pid, _ in started]
        live_fds = [fd for _, fd in started]
        snapshots = [_snapshot(procs, schedstat)]
        for _ in range(windows):
            died, _, _ = select.select(live_fds, [], [], duration_s / windows)
            if died:  # a liveness pipe turned readable: its child exited
                raise OstoolkitError("a CPU-bound child exited during the measurement; see stderr")
            snapshots.append(_snapshot(procs, schedstat))
            if progress:
                progress(1)
    return [window_figures(a, b) for a, b in pairwise(snapshots)], warnings


@dataclass(frozen=True)
class TimesliceConfig:
    """How long two busy children share one CPU, in how many windows, and on which CPU; the
    defaults are the quick settings, as ``measure_timeslice``'s own defaults are."""

    duration_s: float = 1.0
    windows: int = 10
    cpu: int | None = None

    @classmethod
    def quick(cls) -> TimesliceConfig:
        """1 s in 10 windows (the defaults), for the states command and the report's quick run."""
        return cls()

    @classmethod
    def full(cls) -> TimesliceConfig:
        """The careful settings: 3 s in 30 windows, for the report's full run."""
        return cls(duration_s=3.0, windows=30)

    def steps(self) -> int:
        """How many progress steps ``measure_timeslice`` reports (one per window)."""
        return self.windows


def measure_timeslice(
    duration_s: float = TimesliceConfig.duration_s,
    windows: int = TimesliceConfig.windows,
    cpu: int | None = None,
    progress: Progress | None = None,
) -> Measurement:
    """Measure the time slices two CPU-bound children get when they share one CPU: one sample
    per window, metered on their CPU (a third task there would change them all)."""
    if duration_s <= 0 or windows < 1:
        raise InvalidRequest(
            f"duration_s must be > 0 and windows >= 1 (got {duration_s} and {windows})"
        )
    cpu = choose_cpu(cpu)  # --cpu's documented default: the last allowed CPU
    schedstat = schedstat_available()
    with Meter({cpu}) as meter:
        figures, warnings = _sample_windows(cpu, duration_s, windows, schedstat, progress)
    context = {"cpu": cpu, "windows": windows}
    window_ms = round(duration_s / windows * 1e3, 3)
    counted = [f for f in figures if f.slice_ms is not None and f.wait_per_slice_ms is not None]
    if not schedstat:
        warnings.append(NO_SCHEDSTAT + "; only involuntary switches (psutil) are reported")
    elif len(counted) < len(figures):
        warnings.append(
            f"{len(figures) - len(counted)} of {len(figures)} windows saw no new slice: a "
            f"slice lasted longer than a {window_ms} ms window"
        )
    if schedstat and not counted:
        warnings.append("no slice was counted: measure longer or with fewer windows")
    slice_extra = {**context, "window_ms": window_ms, **scheduler_facts()}
    busy = [f.busy_share for f in counted if f.busy_share is not None]
    shares = [f.run_shares for f in counted if f.run_shares is not None]
    if busy:
        slice_extra["cpu_busy_share"] = round(statistics.median(busy), 3)
    if shares:
        by_task = zip(*shares, strict=True)
        slice_extra["run_shares"] = [round(sum(task) / len(shares), 3) for task in by_task]
    results = []  # their claim and noise warnings: claims.annotate
    for result_id, label, unit, field in RESULTS:
        samples = [value for f in figures if (value := getattr(f, field)) is not None]
        extra = slice_extra if result_id == "sched.timeslice" else dict(context)
        if samples:
            results.append(
                make_result(result_id, label, unit, samples, interference=meter.result, extra=extra)
            )
    invol = results[-1]
    if invol.median > 0:
        results[-1] = replace(
            invol, extra={**invol.extra, "slice_estimate_ms": round(1e3 / invol.median, 3)}
        )
    findings = _timeslice_findings(results, cpu)
    return Measurement(tuple(results), tuple(findings), tuple(warnings))


def _timeslice_findings(results: Sequence[Result], cpu: int) -> list[str]:
    """Explain in words what the slices and waits show."""
    by_id = {r.id: r for r in results}
    timeslice, wait = by_id.get("sched.timeslice"), by_id.get("sched.runqueue_wait")
    invol = by_id["sched.involuntary_per_s"]
    if timeslice is None or wait is None:
        return [
            f"two CPU-bound tasks on CPU {cpu} were preempted {invol.median:.0f} times a "
            "second between them: they took turns on the CPU"
        ]
    findings = [
        f"two CPU-bound tasks on CPU {cpu} took turns in slices of {timeslice.median:.1f} ms "
        f"on average; per slice each waited {wait.median:.1f} ms on the run queue, ready (in "
        f"the article's words) while the other ran; {invol.median:.0f} involuntary switches "
        "a second"
    ]
    facts = timeslice.extra
    if "tick_ms" in facts:
        findings.append(
            f"the median slice is {timeslice.median / facts['tick_ms']:.1f} scheduler ticks "
            f"(CONFIG_HZ={facts['config_hz']}, a tick every {facts['tick_ms']} ms): the fair "
            f"scheduler ({facts['scheduler']}) checks at each tick whether a slice is used up"
        )
    if "base_slice_ms" in facts:
        findings.append(
            f"the kernel's base slice is {facts['base_slice_ms']} ms ({facts['base_slice_source']})"
        )
    return findings
