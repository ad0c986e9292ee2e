"""Python's own switches beside the OS's: a GIL hand-off and an asyncio task switch.

``measure-switch --layer python`` times them on one CPU as ``measure.switch`` times the OS
switch: ``switch.python.gil`` (two threads, two ``threading.Lock`` objects as binary
semaphores), ``switch.python.asyncio`` (two tasks on one loop, ``asyncio.Future`` objects) and
``switch.thread.same_core`` for context. Why these primitives and baselines: docs/method.md,
"Python's own switches".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace

import psutil

from ostoolkit.children import Children, Fds, pin_current, pinned_main
from ostoolkit.errors import OstoolkitError
from ostoolkit.measure.blocks import Gathered, Sampling, Timing, take_rounds
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.placement import choose_cpu
from ostoolkit.measure.reference import time_rounds
from ostoolkit.measure.switch import (
    SWITCHES_PER_HOP_RANGE,
    SwitchConfig,
    measure_switch,
    own_thread_switches,
    switches_with,
)
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.units import format_us

LAYERS = ("gil", "asyncio")
GIL_ID, ASYNCIO_ID, OS_ID = "switch.python.gil", "switch.python.asyncio", "switch.thread.same_core"
# How long the main thread waits for a fresh partner thread to say it is ready.
READY_TIMEOUT_S = 10.0
# Above this many OS switches per asyncio hop, something other than the loop switched.
ASYNCIO_MAX_SWITCHES_PER_HOP = 0.05


@dataclass(frozen=True)
class PyLayersConfig(Sampling):
    """What ``measure-switch --layer python`` measures and for how long."""

    cpu: int | None = None

    def steps(self) -> int:
        """Progress steps of ``measure_python_layers``: two Python figures and the OS one."""
        return (len(LAYERS) + 1) * (self.repeat + 1)

    def os_switch(self, cpu: int) -> SwitchConfig:
        """The ``measure.switch`` settings for the OS thread switch beside the Python figures."""
        sampling = {f.name: getattr(self, f.name) for f in fields(Sampling)}
        return SwitchConfig(models=("thread",), placements=("same_core",), cpus=(cpu,), **sampling)


def _lock_round_trips(to_partner: threading.Lock, mine: threading.Lock, n: int) -> int:
    """Release the partner's lock and wait on our own, n times; elapsed nanoseconds. Given one
    held lock as both, it is the baseline: the same calls, never a wait."""
    acquire, release = mine.acquire, to_partner.release
    start = time.perf_counter_ns()
    for _ in range(n):
        release()
        acquire()
    return time.perf_counter_ns() - start


@dataclass
class _LockPair:
    """The two locks of a GIL ping-pong (both start held) and the partner's state."""

    to_pong: threading.Lock = field(default_factory=threading.Lock)
    to_ping: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False
    native_id: int | None = None
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        self.to_pong.acquire()
        self.to_ping.acquire()

    def pong(self, cpu: int) -> None:
        """The partner thread: pin, say ready, then answer every token until told to stop."""
        try:
            self.native_id = threading.get_native_id()
            pin_current(cpu)
        except BaseException as err:  # reported by the main thread, which is waiting
            self.failure = err
            self.to_ping.release()
            return
        acquire, release = self.to_pong.acquire, self.to_ping.release
        release()  # ready
        while True:
            acquire()
            if self.stopping:
                return
            release()

    def stop(self) -> None:
        """Make the partner return: flag it, then let it through its lock if it waits there."""
        self.stopping = True
        with contextlib.suppress(RuntimeError):  # already released: it will see the flag
            self.to_pong.release()


@contextlib.contextmanager
def _gil_timing(cpu: int, reference: Callable[[int], int]) -> Iterator[Timing]:
    """One block's GIL hand-offs with a fresh partner thread, both pinned to ``cpu``."""
    pair = _LockPair()
    with Children() as children, pinned_main(cpu):
        children.start_thread(lambda: pair.pong(cpu), pair.stop, name="ostoolkit-gil-pong")
        if not pair.to_ping.acquire(timeout=READY_TIMEOUT_S) or pair.native_id is None:
            raise OstoolkitError("the partner thread of the GIL hand-off never became ready")
        if pair.failure is not None:
            raise OstoolkitError(f"the partner thread of the GIL hand-off failed: {pair.failure}")
        partner = psutil.Process(pair.native_id)
        own = threading.Lock()
        own.acquire()
        yield Timing(
            lambda n: _lock_round_trips(pair.to_pong, pair.to_ping, n),
            lambda n: _lock_round_trips(own, own, n),
            lambda: switches_with(partner),
            reference=reference,
        )


@dataclass
class _Court:
    """The futures the two tasks wait on; a token False tells the partner task to return."""

    to_pong: asyncio.Future[bool]
    to_ping: asyncio.Future[bool]


async def _future_round_trips(court: _Court, n: int) -> int:
    """Set the partner's future and await a fresh one of our own, n times; elapsed ns."""
    create = asyncio.get_running_loop().create_future
    start = time.perf_counter_ns()
    for _ in range(n):
        mine = create()
        court.to_ping = mine
        court.to_pong.set_result(True)
        await mine
    return time.perf_counter_ns() - start


async def _future_baseline(n: int) -> int:
    """One task creates a future, sets it and awaits it (done: no trip to the loop); ns."""
    create = asyncio.get_running_loop().create_future
    start = time.perf_counter_ns()
    for _ in range(n):
        mine = create()
        mine.set_result(True)
        await mine
    return time.perf_counter_ns() - start


async def _future_pong(court: _Court) -> None:
    """The partner task: await a fresh future, answer by setting the ping's, until False."""
    create = asyncio.get_running_loop().create_future
    while True:
        mine = create()
        court.to_pong = mine
        if not await mine:
            return
        court.to_ping.set_result(True)


@contextlib.contextmanager
def _asyncio_timing(cpu: int, reference: Callable[[int], int]) -> Iterator[Timing]:
    """One block's asyncio task switches on a fresh event loop, its thread pinned to ``cpu``; the
    partner stays on the loop between the timed loops, each timed inside a task of its own."""
    loop = asyncio.new_event_loop()
    try:
        with pinned_main(cpu):
            court = _Court(loop.create_future(), loop.create_future())
            partner = loop.create_task(_future_pong(court))
            loop.run_until_complete(asyncio.sleep(0))  # the partner waits on its first future
            yield Timing(
                lambda n: loop.run_until_complete(_future_round_trips(court, n)),
                lambda n: loop.run_until_complete(_future_baseline(n)),
                own_thread_switches,
                reference=reference,
            )
            court.to_pong.set_result(False)
            loop.run_until_complete(partner)
    finally:
        try:
            pending = asyncio.all_tasks(loop)  # the partner, after an error
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()


FIGURES = {  # each layer's result id and label
    "gil": (GIL_ID, "GIL hand-off between two Python threads, one CPU (net)"),
    "asyncio": (ASYNCIO_ID, "asyncio task switch, one event loop (net)"),
}


def switch_notes(layer: str, per_hop: float, involuntary: float) -> list[str]:
    """What the kernel's switch counts say about a figure, when they are not as expected."""
    low, high = SWITCHES_PER_HOP_RANGE
    if layer == "asyncio":
        if per_hop <= ASYNCIO_MAX_SWITCHES_PER_HOP:
            return []
        return [
            f"the kernel switched this thread {per_hop:.2f} times per hop: other tasks took the "
            "CPU meanwhile (asyncio itself makes no OS switch)"
        ]
    if per_hop > high:
        return [
            f"the kernel counted {per_hop:.2f} OS switches per hand-off, not about 1 "
            f"({involuntary:.2f} involuntary): the woken thread preempts the one that woke it "
            "while that one still holds the GIL, and waits again; the figure includes them all"
        ]
    if per_hop < low:
        return [
            f"the kernel counted only {per_hop:.2f} OS switches per hand-off, so this is not "
            "the cost of a hand-off through a switch"
        ]
    return []


def layer_result(
    layer: str, cpu: int, gathered: Gathered, interference: Interference
) -> Result | str:
    """One Python figure: net per hop, with its gross, baseline and kernel counts in extra;
    or, when no block's net cost is positive (``netcost``), why there is none."""
    net = gathered.net()
    if not net.samples:
        return net.dropped(FIGURES[layer][1])
    voluntary, involuntary = gathered.per_hop()
    extra = {
        "cpus": [cpu, cpu],
        "iterations": gathered.rounds or 0,
        **gathered.hop_extra(),
        "round_trip_us": round(statistics.median(gathered.round_us), 4),
        **gathered.counts_extra(),
    }
    return make_result(
        *FIGURES[layer],
        "us",
        net.samples,
        interference=replace(interference, reference_samples=tuple(gathered.reference_us)),
        notes=[*switch_notes(layer, voluntary + involuntary, involuntary), *net.notes],
        extra=extra,
        runs=net.runs,
    )


def _times(ratio: float) -> str:
    """A ratio for a sentence: '3.1×', or 'about the same as' within 10 %."""
    return "about the same as" if 0.9 <= ratio <= 1.1 else f"{ratio:.1f}×"


def layer_findings(by_id: dict[str, Result]) -> list[str]:
    """Tell a Python programmer, in plain words, what each switch costs here."""
    gil, task, os_switch = by_id.get(GIL_ID), by_id.get(ASYNCIO_ID), by_id.get(OS_ID)
    if gil is None or task is None:
        return []
    costs = [
        f"an asyncio task switch costs {format_us(task.median)}",
        f"a GIL hand-off between two threads {format_us(gil.median)}",
    ]
    if os_switch is not None:
        costs.append(f"an OS thread switch {format_us(os_switch.median)}")
    findings = [f"here {', '.join(costs)} (net medians, everything on one CPU)"]
    per_hop = gil.extra["switches_per_hop"]
    if os_switch is not None and os_switch.median > 0 and gil.median > 0:
        findings.append(
            "making one Python thread wait for another costs "
            f"{_times(gil.median / os_switch.median)} a bare OS thread switch: the kernel "
            f"counted {per_hop:.1f} OS switches per hand-off, and the lock and the GIL add theirs"
        )
    if gil.median > 0 and task.median > 0:
        findings.append(
            f"an asyncio task switch is no OS switch at all ({task.extra['switches_per_hop']:.2f} "
            "per hop counted) but one trip through the event loop (an epoll_wait that does not "
            f"block, and the loop's own Python bookkeeping): {_times(task.median / gil.median)} "
            "a GIL hand-off here"
        )
    return findings


def measure_python_layers(config: PyLayersConfig, progress: Progress | None = None) -> Measurement:
    """Measure a GIL hand-off and an asyncio task switch, and the OS thread switch beside them."""
    allowed = sorted(os.sched_getaffinity(0))
    cpu = choose_cpu(config.cpu, allowed, default=allowed[0])  # --cpus's documented default
    fds = Fds()
    try:
        base_r, base_w = fds.pipe()  # the host's speed reference: a private pipe's write+read
        reference = functools.partial(time_rounds, base_w, base_r)
        figures = {
            "gil": functools.partial(_gil_timing, cpu, reference),
            "asyncio": functools.partial(_asyncio_timing, cpu, reference),
        }
        with Meter((cpu,)) as meter:  # both figures in rounds of blocks
            gathered = take_rounds(figures, config, progress)
    finally:
        fds.close_all()
    layers = [layer_result(layer, cpu, gathered[layer], meter.result) for layer in LAYERS]
    results = [r for r in layers if isinstance(r, Result)]
    os_measurement = measure_switch(config.os_switch(cpu), progress)
    results.extend(r for r in os_measurement.results if r.id == OS_ID)
    findings = layer_findings({r.id: r for r in results})
    warnings = [w for w in layers if isinstance(w, str)] + list(os_measurement.warnings)
    return Measurement(tuple(results), tuple(findings), tuple(warnings))
