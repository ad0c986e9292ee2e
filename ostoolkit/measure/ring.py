"""Rings of N tasks on one CPU, lmbench lat_ctx's method: switch cost as N and footprint grow.

N tasks pinned to one CPU pass a token round a ring of pipes, each touching its working set;
task 0 (ostoolkit's thread) times whole laps: gross = lap / N, net = gross - baseline (one
task's own write+read and touch, no switch). docs/method.md, "Rings, working sets, ...".
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import median

from ostoolkit.budget import (
    BYTES_PER_FORKED_PROCESS,
    check_open_files,
    check_task_budget,
    check_thread_room,
)
from ostoolkit.children import Children, Fds, pin_current, pinned_main
from ostoolkit.errors import InvalidRequest, OstoolkitError
from ostoolkit.measure.blocks import Calibration, Gathered, Timing, take_block
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.netcost import positive_blocks
from ostoolkit.measure.switch import MAX_WORKING_SET_KB, MODELS, answer, make_buffer, ping
from ostoolkit.payloads import Chart
from ostoolkit.procfs import read_status_fields
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.topology import cache_sizes

MAX_TASKS = 2048
# Laps per sample: one sample lasts about 20 ms, within bounds.
CALIBRATION = Calibration(target_s=0.02, probe=5, bounds=(5, 100_000))
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RingConfig:
    """Which ring sizes and working sets, which models, on which CPU, how many samples."""

    tasks: tuple[int, ...] = (2, 8, 32, 128, 512)
    sizes_kb: tuple[int, ...] = (0,)
    models: tuple[str, ...] = MODELS
    cpu: int | None = None
    samples: int = 10

    @classmethod
    def full(cls) -> RingConfig:
        """The careful settings (the defaults): ten samples per ring."""
        return cls()

    @classmethod
    def quick(cls) -> RingConfig:
        """Five samples per ring, for CI logs and the report's quick run."""
        return cls(samples=5)

    def cells(self) -> list[tuple[str, int, int]]:
        """Rings to build: every (model, N) at every size, then the two-task ring at each size
        (the working-set curve) when 2 is not among the ring sizes."""
        rings = [(m, n, kb) for m in self.models for n in self.tasks for kb in self.sizes_kb]
        curve = dict.fromkeys((m, 2, kb) for m in self.models for kb in self.sizes_kb)
        return rings + [cell for cell in curve if cell not in rings]


@dataclass
class RingCell:
    """One model at one ring size and working set, and its samples (µs per lap)."""

    model: str
    tasks: int
    size_kb: int
    cpu: int
    gathered: Gathered

    @property
    def gross_us(self) -> list[float]:
        """Each sample's µs per hop: its lap over the ring's tasks."""
        return [lap / self.tasks for lap in self.gathered.round_us]

    @property
    def net_us(self) -> list[float]:
        """Each sample's gross minus the baseline taken just before it."""
        return [g - b for g, b in zip(self.gross_us, self.gathered.baseline_us, strict=True)]


def check_ring(config: RingConfig) -> None:
    """Refuse, before any fork, ring sizes or working sets the host's limits cannot take."""
    if not config.tasks or min(config.tasks) < 2 or max(config.tasks) > MAX_TASKS:
        raise InvalidRequest(f"--tasks must be within 2..{MAX_TASKS}; got {list(config.tasks)}")
    if min(config.sizes_kb) < 0 or max(config.sizes_kb) > MAX_WORKING_SET_KB:
        got = list(config.sizes_kb)
        raise InvalidRequest(f"--sizes must be within 0..{MAX_WORKING_SET_KB} KB; got {got}")
    top = max(config.tasks)
    if "process" in config.models:
        per_task = BYTES_PER_FORKED_PROCESS + max(config.sizes_kb) * 1024
        check_task_budget(top, per_task, "--tasks")
    if "thread" in config.models:
        check_thread_room(top, f"--tasks {top} (a thread ring)", "--tasks")
    check_open_files(2 * top, f"--tasks {top} (a pipe per task)", "lower --tasks")


def _pass_on(rfd: int, wfd: int, cpu: int, kb: int) -> None:
    """A ring member: pin, take a working set, then pass every token on until end-of-file."""
    pin_current(cpu)
    answer(rfd, wfd, make_buffer(kb))


SWITCH_FIELDS = ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")


def _switches(tids: list[int]) -> tuple[int, int]:
    """Voluntary and involuntary switches of the ring's tasks, by native thread id (proc(5))."""
    counts = [read_status_fields(tid, SWITCH_FIELDS) for tid in tids]
    voluntary, involuntary = (sum(c.get(name, 0) for c in counts) for name in SWITCH_FIELDS)
    return voluntary, involuntary


def _start_members(
    model: str, pipes: list[tuple[int, int]], cpu: int, kb: int, children: Children, fds: Fds
) -> list[int]:
    """Start ring members 1..N-1 (forked children or threads); their native ids."""
    tasks, natives = len(pipes), []
    for i in range(1, tasks):
        rfd, wfd = pipes[i][0], pipes[(i + 1) % tasks][1]
        if model == "process":

            def member(r: int = rfd, w: int = wfd) -> None:
                fds.close_copies({r, w})
                _pass_on(r, w, cpu, kb)

            natives.append(children.fork(member))
            continue
        started = threading.Event()

        def member_thread(r: int = rfd, w: int = wfd, started: threading.Event = started) -> None:
            natives.append(threading.get_native_id())
            started.set()
            _pass_on(r, w, cpu, kb)

        children.start_thread(member_thread, lambda: None, name=f"ostoolkit-ring-{i}")
        if not started.wait(START_TIMEOUT_S):
            raise OstoolkitError(f"ring thread {i} did not start")
    return natives


@contextlib.contextmanager
def _ring(model: str, tasks: int, kb: int, cpu: int) -> Iterator[Timing]:
    """Build one ring and yield its laps to time (ours: task 0); tear it down after, write ends
    first: every member reads end-of-file and returns (a thread blocked in read(2) would not
    notice its read end closing), then the threads are joined and the processes reaped."""
    children, fds = Children(), Fds()
    pipes: list[tuple[int, int]] = []
    try:
        with pinned_main(cpu):
            pipes.extend(fds.pipe() for _ in range(tasks))
            base_r, base_w = fds.pipe()
            natives = _start_members(model, pipes, cpu, kb, children, fds)
            members = [*natives, threading.get_native_id()]
            first_w, last_r, buf = pipes[1][1], pipes[0][0], make_buffer(kb)
            yield Timing(
                rounds=lambda n: ping(first_w, last_r, n, buf),
                baseline=lambda n: ping(base_w, base_r, n * tasks, buf) // tasks,
                switches=lambda: _switches(members),
                hops_per_round=tasks,
            )
    finally:
        for _, write_end in pipes:
            with contextlib.suppress(KeyError):
                fds.close(write_end)
        try:
            children.close()
        finally:
            fds.close_all()


def run_cell(model: str, tasks: int, kb: int, cpu: int, samples: int) -> RingCell:
    """Build one ring, calibrate, take the samples in one block, tear it down (always)."""
    gathered = Gathered()
    with _ring(model, tasks, kb, cpu) as timing:
        take_block(timing, CALIBRATION, samples, gathered)
    return RingCell(model, tasks, kb, cpu, gathered)


def ring_steps(config: RingConfig) -> int:
    """Progress steps of ``measure_rings``: one per ring built."""
    return len(config.cells())


def _ids(cell: RingCell, config: RingConfig) -> list[tuple[str, str]]:
    """The ids a cell's net figure is reported under, with their labels."""
    ids = []
    curve = cell.tasks == 2 and len(config.sizes_kb) > 1
    # One id per figure: a curve's point is not also a ring, unless rings are compared at 0 KB.
    if cell.tasks in config.tasks and not (curve and (cell.size_kb or len(config.tasks) == 1)):
        suffix = "" if cell.size_kb == 0 else f".ws.{cell.size_kb}"
        size = "" if cell.size_kb == 0 else f", {cell.size_kb} KB each"
        label = f"{cell.model} ring of {cell.tasks}{size}: net per switch"
        ids.append((f"ring.{cell.model}.{cell.tasks}{suffix}", label))
    if curve:
        label = f"{cell.model} switch, {cell.size_kb} KB working set: net"
        ids.append((f"switch.{cell.model}.ws.{cell.size_kb}", label))
    return ids


def cell_results(
    cell: RingCell, config: RingConfig, meter: Interference | None
) -> tuple[list[Result], list[str]]:
    """One ring's figures, net µs per switch with gross, baseline and counters in extra; or,
    when a sample's net cost went negative (``netcost``), the warnings why there are none."""
    net = positive_blocks(cell.net_us, None)  # one block: a negative sample condemns it
    if not net.samples:
        return [], [net.dropped(label) for _, label in _ids(cell, config)]
    per_hop = median(cell.gathered.switches_per_hop)
    extra = {
        "model": cell.model,
        "tasks": cell.tasks,
        "size_kb": cell.size_kb,
        "cpu": cell.cpu,
        "laps": cell.gathered.rounds or 0,
        "gross_us": round(median(cell.gross_us), 3),
        "baseline_us": round(median(cell.gathered.baseline_us), 3),
        "switches_per_hop": round(per_hop, 3),
    }
    notes = []
    if not 0.8 <= per_hop <= 1.5:
        notes.append(f"the kernel counted {per_hop:.2f} switches per hop, not about one")
    return [
        make_result(id_, label, "us", net.samples, interference=meter, notes=notes, extra=extra)
        for id_, label in _ids(cell, config)
    ], []


def ring_findings(cells: list[RingCell], cache_kb: dict[str, int]) -> list[str]:
    """How the cost per switch grows with the ring and the working set, and why."""
    out = []
    for model in dict.fromkeys(c.model for c in cells):
        rings, curve = _series(cells, model)
        if len(rings) > 1 and median(rings[0].net_us) > 0:
            first, last = rings[0], rings[-1]
            growth = median(last.net_us) / median(first.net_us)
            out.append(
                f"{model} switches cost {median(first.net_us):.2f} µs in a ring of "
                f"{first.tasks} and {median(last.net_us):.2f} µs in a ring of {last.tasks} "
                f"({growth:.1f}×): each switch brings in a task whose "
                + ("stack, pages and address space (TLB)" if model == "process" else "stack")
                + " the CPU's caches must find again"
            )
        if len(curve) > 1:
            points = ", ".join(f"{c.size_kb} KB {median(c.net_us):.2f} µs" for c in curve)
            caches = ", ".join(f"{name} {kb} KB" for name, kb in cache_kb.items())
            where = f" (caches here: {caches})" if caches else ""
            out.append(f"{model} switch by working set: {points}{where}")
    return out


def _series(cells: list[RingCell], model: str) -> tuple[list[RingCell], list[RingCell]]:
    """A model's rings without a working set, by task count, and its two-task curve by size."""
    mine = [c for c in cells if c.model == model]
    rings = sorted((c for c in mine if c.size_kb == 0), key=lambda c: c.tasks)
    curve = sorted((c for c in mine if c.tasks == 2), key=lambda c: c.size_kb)
    return rings, curve


def measure_rings(
    config: RingConfig, cache_kb: dict[str, int] | None = None, progress: Progress | None = None
) -> Measurement:
    """Build every ring of the config on one CPU; net µs per switch, findings on the growth.
    ``cache_kb`` (the data caches' sizes, for the findings) is read from /sys when not given."""
    check_ring(config)
    cpu = config.cpu if config.cpu is not None else max(os.sched_getaffinity(0))
    if cache_kb is None:
        cache_kb = {name: size // 1024 for name, size in cache_sizes(cpu=cpu).items()}
    reported, results, warnings = [], [], []  # reported: no negative cost drawn
    for model, tasks, kb in config.cells():
        with Meter((cpu,)) as meter:
            cell = run_cell(model, tasks, kb, cpu, config.samples)
        figures, dropped = cell_results(cell, config, meter.result)
        results += figures
        warnings += dropped
        if not dropped:
            reported.append(cell)
        if progress:
            progress(1)
    data = {"charts": ring_charts(reported, cache_kb), "caches_kb": cache_kb}
    findings = ring_findings(reported, cache_kb)
    return Measurement(tuple(results), tuple(findings), tuple(warnings), data)


def holding_cache(kb: int, cache_kb: dict[str, int]) -> str:
    """The smallest data cache that holds both tasks' working sets of ``kb`` each, or memory."""
    return next((name for name, size in cache_kb.items() if 2 * kb <= size), "memory")


def ring_charts(cells: list[RingCell], cache_kb: dict[str, int]) -> list[Chart]:
    """Per model: µs per switch over the ring size, and over the working set (each point
    marked with the cache that holds the two tasks' sets), where there are two points."""
    charts: list[Chart] = []
    for model in dict.fromkeys(c.model for c in cells):
        rings, curve = _series(cells, model)
        if len(rings) > 1:
            x = [str(c.tasks) for c in rings]
            charts.append(_line(f"{model} switch in a ring of N tasks", "tasks", x, rings))
        if len(curve) > 1:
            x = [
                f"{c.size_kb} KB" + (f" ({holding_cache(c.size_kb, cache_kb)})" if cache_kb else "")
                for c in curve
            ]
            title, x_label = f"{model} switch by working set", "KB per task (cache holding both)"
            charts.append(_line(title, x_label, x, curve))
    return charts


def _line(title: str, x_label: str, x: list[str], cells: list[RingCell]) -> Chart:
    """A line chart of each cell's median net µs per switch over ``x``."""
    values = [round(median(c.net_us), 3) for c in cells]
    return {
        "title": title,
        "x_label": x_label,
        "y_label": "µs per switch",
        "x": x,
        "values": values,
        "kind": "line",
    }
