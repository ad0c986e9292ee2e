"""Interference, measured: the CPU time other tasks took from a measurement's CPUs meanwhile.

A ``Meter`` wraps a window and reads, at both ends, the measured CPUs' busy and stolen time
and its own tasks' CPU time; it also times the host's speed reference around the window and
reads a CPU quota's counters. The derivation, margins and numbers: docs/method.md,
"Interference, measured".
"""

from __future__ import annotations

import functools
import math
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ostoolkit.cgroup import (
    Throttling,
    cpu_limits,
    read_throttling,
    throttled_between,
    tightest_limit,
)
from ostoolkit.errors import ProcUnreadable
from ostoolkit.measure.reference import reference_us
from ostoolkit.procfs import (
    USER_HZ_S,
    CpuTimes,
    read_config_hz,
    read_cpu_times,
    read_pid_times,
    read_task_run_ns,
    read_tree_times,
)

# Units of figures that other tasks' CPU time cannot change (memory, counts, yes/no): their
# results carry the shares as context, but their status does not depend on them.
UNAFFECTED_UNITS = ("bytes", "count", "bool")
# A window's error allowance, in USER_HZ units: of each CPU's busy time, of each descendant
# timed in ticks, of each CPU's steal; and the standard deviations of tick sampling allowed.
BUSY_ROUNDING_UNITS = 2
TASK_ROUNDING_UNITS = 1
STEAL_ROUNDING_UNITS = 1
SAMPLING_SIGMAS = 3.0
# The longest scheduler tick in common use (CONFIG_HZ=100), assumed when CONFIG_HZ is unknown.
FALLBACK_TICK_S = 0.01
# Decimals kept of each share, and of the speed reference's µs, in a result's extra.
SHARE_DECIMALS = 4
REFERENCE_DECIMALS = 4


@dataclass(frozen=True)
class Interference:
    """What other tasks and the hypervisor took from a measurement's CPUs during its window.
    Shares: 0..1 of wall time × CPUs, None when unmeasured (``note`` says why); margins: what the
    window cannot resolve; ``judged`` False: context only (our work ran where it cannot count)."""

    other_cpu_share: float | None
    steal_share: float | None
    cpus: tuple[int, ...]
    window_s: float
    other_margin: float = 0.0
    steal_margin: float = 0.0
    note: str | None = None
    judged: bool = True
    reference_samples: tuple[float, ...] = ()
    throttled: Throttling | None = None
    cpu_limit: float | None = None

    @property
    def reference_us(self) -> float | None:
        """The median of the host's speed reference samples (measure.reference), or None."""
        return statistics.median(self.reference_samples) if self.reference_samples else None

    def extra(self) -> dict[str, Any]:
        """The result extras: the two shares (or null), the speed reference's median and its
        samples (so compare can tell how far the host moved), a CPU quota's periods."""
        extra: dict[str, Any] = {
            "other_cpu_share": _rounded(self.other_cpu_share),
            "steal_share": _rounded(self.steal_share),
        }
        if self.reference_us is not None:
            extra["reference_us"] = round(self.reference_us, REFERENCE_DECIMALS)
            extra["reference_samples_us"] = [
                round(sample, REFERENCE_DECIMALS) for sample in self.reference_samples
            ]
        if self.throttled is not None:
            extra["throttled_periods"] = self.throttled.throttled
            extra["quota_periods"] = self.throttled.periods
        return extra

    def judging(self, unit: str) -> dict[str, Any]:
        """``stats.judge_noise``'s arguments for a figure in ``unit`` (none for a unit other tasks
        cannot disturb): the shares and margins unless context only, and why a CPU quota makes it
        untrustworthy (it stopped the tasks: a sample that straddled a stop counts the wait)."""
        if unit in UNAFFECTED_UNITS:
            return {}
        shares = ("other_cpu_share", "steal_share", "other_margin", "steal_margin")
        found = {name: getattr(self, name) for name in shares} if self.judged else {}
        stopped = self.throttled
        if stopped is not None and stopped.throttled > 0 and self.cpu_limit is not None:
            found["throttled"] = (
                f"the cgroup's CPU quota ({self.cpu_limit:.2f} CPUs) stopped the measured tasks in "
                f"{stopped.throttled} of {stopped.periods} periods "
                f"({stopped.throttled_us / 1000:.0f} ms in all)"
            )
        return found


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, SHARE_DECIMALS)


@dataclass(frozen=True)
class Reading:
    """The counters at one end of a window; ``cpu_times`` None when /proc/stat could not be read
    (``error`` says why); ``tree``: each live descendant's own plus reaped time."""

    t_s: float
    cpu_times: dict[int, CpuTimes] | None
    own_s: float
    tree: dict[tuple[int, int], float]
    error: str | None = None
    rounded: frozenset[tuple[int, int]] | None = None  # tasks timed in whole ticks; None: all
    throttling: tuple[Throttling, ...] = ()  # each CPU quota's counters (cgroup)


def own_cpu_s() -> float:
    """This process's CPU time (all threads) plus that of its reaped children, getrusage(2)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + reaped.ru_utime + reaped.ru_stime


Tree = tuple[dict[tuple[int, int], float], frozenset[tuple[int, int]]]


def tree_cpu_s(also: Sequence[int] = ()) -> Tree:
    """Live descendants of this process (and ``also`` with theirs): own + reaped children's time,
    exact (schedstat) where the kernel has it, and which are timed in whole ticks. An unlistable
    /proc gives an empty tree: their time then shows as other tasks'."""
    found: dict[tuple[int, int], float] = {}
    rounded: set[tuple[int, int]] = set()
    try:
        tasks = [t for root in also if root != os.getpid() if (t := read_pid_times(root))]
        for root in (os.getpid(), *also):
            tasks.extend(read_tree_times(root).values())
        for task in tasks:
            key = (task.pid, task.start_ticks)
            run_ns = read_task_run_ns(task.pid)
            found[key] = task.children_s + (task.cpu_s if run_ns is None else run_ns / 1e9)
            if run_ns is None or task.children_s > 0:
                rounded.add(key)
    except OSError:
        return {}, frozenset()
    return found, frozenset(rounded)


@functools.cache
def scheduler_tick_s() -> float:
    """The kernel's tick, 1 / CONFIG_HZ, or the longest usual one when the config is unreadable."""
    hz = read_config_hz()
    return 1.0 / hz if hz else FALLBACK_TICK_S


@dataclass(frozen=True)
class Sources:
    """Where a Meter reads: the clock and the counters (tests give fakes)."""

    clock: Callable[[], float] = time.monotonic
    cpu_times: Callable[[], dict[int, CpuTimes]] = read_cpu_times
    own_s: Callable[[], float] = own_cpu_s
    tree: Callable[[Sequence[int]], Tree] = tree_cpu_s
    tick_s: Callable[[], float] = scheduler_tick_s
    reference: Callable[[], float | None] = reference_us
    throttling: Callable[[], tuple[Throttling, ...]] = read_throttling


def take_reading(sources: Sources, also: Sequence[int] = ()) -> Reading:
    """Read every counter now: the CPU quotas', the tree, own time, /proc/stat, the clock; in
    the same order at both ends, so the time between the reads shifts both ends alike."""
    throttling = sources.throttling()
    tree, rounded = sources.tree(also)
    own = sources.own_s()
    try:
        cpu_times: dict[int, CpuTimes] | None = sources.cpu_times()
        error = None
    except ProcUnreadable as err:
        cpu_times, error = None, str(err)
    return Reading(sources.clock(), cpu_times, own, tree, error, rounded, throttling)


def _tick_timed(reading: Reading) -> set[tuple[int, int]]:
    """The reading's tasks whose time is in whole ticks."""
    keys = set(reading.tree)
    return keys if reading.rounded is None else keys & reading.rounded


def interference_between(
    before: Reading, after: Reading, cpus: Sequence[int], tick_s: float
) -> Interference:
    """The shares other tasks and the hypervisor took of ``cpus`` between two readings."""
    window = after.t_s - before.t_s
    chosen = tuple(sorted(set(cpus)))

    def unmeasured(why: str) -> Interference:
        note = f"CPU interference not measured: {why}"
        return Interference(None, None, chosen, max(window, 0.0), note=note)

    if before.cpu_times is None or after.cpu_times is None:
        return unmeasured(before.error or after.error or "/proc/stat unreadable")
    missing = [c for c in chosen if c not in before.cpu_times or c not in after.cpu_times]
    if not chosen or missing:
        return unmeasured(
            f"CPU {missing[0]} has no line in /proc/stat" if missing else "no CPU to meter"
        )
    if window <= 0:
        return unmeasured("an empty window")
    capacity = window * len(chosen)
    busy = {c: after.cpu_times[c].busy - before.cpu_times[c].busy for c in chosen}
    steal = sum(after.cpu_times[c].steal - before.cpu_times[c].steal for c in chosen)
    own = after.own_s - before.own_s
    own += sum(t - before.tree.get(key, 0.0) for key, t in after.tree.items())
    own -= sum(t for key, t in before.tree.items() if key not in after.tree)
    other = sum(busy.values()) - own
    tasks = len(_tick_timed(before) | _tick_timed(after))  # exact times need no allowance
    rounding = (BUSY_ROUNDING_UNITS * len(chosen) + TASK_ROUNDING_UNITS * tasks) * USER_HZ_S
    shares = [min(max(used / window, 0.0), 1.0) for used in busy.values()]
    sampling = SAMPLING_SIGMAS * math.sqrt(sum(tick_s * window * p * (1 - p) for p in shares))
    return Interference(
        other_cpu_share=min(max(other / capacity, 0.0), 1.0),
        steal_share=min(max(steal / capacity, 0.0), 1.0),
        cpus=chosen,
        window_s=window,
        other_margin=(rounding + sampling) / capacity,
        steal_margin=STEAL_ROUNDING_UNITS * len(chosen) * USER_HZ_S / capacity,
    )


@dataclass
class Meter:
    """Meter one window: ``with Meter(cpus) as meter: ...`` then ``meter.result``. ``cpus``: the
    measured CPUs (None: this process's affinity set); ``also``: processes outside this process's
    tree whose work is the measurement's own (a database server it loads)."""

    cpus: Iterable[int] | None = None
    also: Sequence[int] = ()
    sources: Sources = field(default_factory=Sources)
    _before: Reading | None = field(default=None, init=False, repr=False)
    _reference: float | None = field(default=None, init=False, repr=False)
    _result: Interference | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> Meter:
        """Take a speed reference, then open the window: fix the CPUs and read every counter."""
        self.cpus = tuple(sorted(os.sched_getaffinity(0) if self.cpus is None else self.cpus))
        self._reference = self.sources.reference()
        self._before = take_reading(self.sources, self.also)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Unless the window raised: close it, take a speed reference (outside the window: its CPU
        time is nobody's; a measurement that times one beside every sample replaces them), and
        work out the shares."""
        if kind is not None or self._before is None or self.cpus is None:
            return
        after = take_reading(self.sources, self.also)
        references = (self._reference, self.sources.reference())
        found = interference_between(self._before, after, tuple(self.cpus), self.sources.tick_s())
        limit = tightest_limit(cpu_limits())
        self._result = replace(
            found,
            reference_samples=tuple(r for r in references if r is not None),
            throttled=throttled_between(self._before.throttling, after.throttling),
            cpu_limit=None if limit is None else limit.cpus,
        )

    @property
    def result(self) -> Interference:
        """The window's interference (once it is closed)."""
        if self._result is None:
            raise RuntimeError("the meter's window is still open")
        return self._result
