"""Context switches per second on this host, idle and under a ping-pong; a switch in cycles.

The rate is /proc/stat's ``ctxt`` (per CPU from /proc/schedstat where it counts) over equal
windows; cycles per switch are the net time per hop times the CPU's clock, or counted by the
PMU where there is one (``measure.pmu``). Method: docs/method.md, "switch-rate".
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ostoolkit.errors import OstoolkitError
from ostoolkit.measure import pmu as hardware
from ostoolkit.measure.blocks import Calibration
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.netcost import positive_blocks
from ostoolkit.measure.placement import Pair, choose_cpu
from ostoolkit.measure.switch import MODELS, SWITCHES_PER_HOP_RANGE, ping, ping_pong
from ostoolkit.payloads import SummaryTable
from ostoolkit.procfs import read_cpu_mhz, read_cpu_schedstat, read_ctxt
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.topology import format_cpu_list

# The baseline window runs this fraction of the ping-pong's round trips: per trip is enough.
BASELINE_SHARE, MIN_BASELINE_TRIPS = 4, 100
BILLION = 1e9  # the article: a CPU runs "billions of instructions per second"
DECADES = (
    (1e6, "millions"),
    (1e5, "hundreds of thousands"),
    (1e4, "tens of thousands"),
    (1e3, "thousands"),
    (1e2, "hundreds"),
    (1e1, "tens"),
)
# A window's edge: monotonic seconds, /proc/stat ctxt, per CPU /proc/schedstat's
# (schedule() calls, idle picks, timeslices).
Edge = tuple[float, int, dict[int, tuple[int, int, int]]]
# Where the per-CPU figure came from: each allowed CPU's own count, or the host's shared out.
OWN_COUNTS, SHARED_COUNT = "/proc/schedstat", "/proc/stat ctxt / online CPUs"


@dataclass(frozen=True)
class RateConfig:
    """How long to watch the host, idle and under the ping-pong, and where the ping-pong runs."""

    duration_s: float = 2.0  # each phase: idle, then ping-pong
    windows: int = 10  # samples per phase; the ping-pong's half processes, half threads
    cpu: int | None = None
    perf_loops: int = 5_000

    @classmethod
    def full(cls) -> RateConfig:
        """The default: 10 windows of 0.2 s per phase, under 5 s in all."""
        return cls()

    @classmethod
    def quick(cls) -> RateConfig:
        """Half as long, for CI logs and the report's quick run."""
        return cls(duration_s=1.0)

    @property
    def window_s(self) -> float:
        """One window's length."""
        return self.duration_s / self.windows

    def steps(self) -> int:
        """How many progress steps ``measure_switch_rate`` reports: one per window."""
        return 2 * self.windows


@dataclass(frozen=True)
class Window:
    """What one window saw: its length, the host's switches, each CPU's timeslices and, where
    schedstats counts, each CPU's switches."""

    elapsed_s: float
    switches: int
    slices: dict[int, int]
    cpu_switches: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Context switches per second, all CPUs."""
        return self.switches / self.elapsed_s if self.elapsed_s > 0 else 0.0


def take_edge() -> Edge:
    """Read the counters at a window's edge: when, ``ctxt``, each CPU's schedstat counts."""
    ctxt = read_ctxt()
    if ctxt is None:
        raise OstoolkitError("/proc/stat has no ctxt line: cannot count context switches here")
    return time.monotonic(), ctxt, read_cpu_schedstat()


def window_between(start: Edge, end: Edge) -> Window:
    """The window between two edges, per CPU for the CPUs both edges could read. A CPU's switches
    are its timeslices plus its idle picks, but only if some CPU's schedule() calls moved: with
    kernel.sched_schedstats off those two fields stand still."""
    (t0, ctxt0, cpus0), (t1, ctxt1, cpus1) = start, end
    both = [c for c in cpus1 if c in cpus0]
    counting = any(cpus1[c][0] > cpus0[c][0] for c in both)
    slices = {c: cpus1[c][2] - cpus0[c][2] for c in both}
    switches = {c: slices[c] + cpus1[c][1] - cpus0[c][1] for c in both} if counting else {}
    return Window(t1 - t0, ctxt1 - ctxt0, slices, switches)


def per_cpu_rate(windows: list[Window], allowed: list[int], online: int) -> tuple[float, str]:
    """Switches a second per CPU and where from: the allowed CPUs' own counts where every
    window has them (their mean), else the host's count over its ``online`` CPUs."""
    if windows and all(c in w.cpu_switches for w in windows for c in allowed):
        own = [statistics.fmean(w.cpu_switches[c] for c in allowed) / w.elapsed_s for w in windows]
        return _median(own), OWN_COUNTS
    return _median([w.rate / online for w in windows]), SHARED_COUNT


@dataclass
class ModelRun:
    """One ping-pong model's windows and, per window, its net figures per hop."""

    windows: list[Window] = field(default_factory=list)
    net_us: list[float] = field(default_factory=list)
    switches_per_hop: list[float] = field(default_factory=list)
    counted: dict[str, list[float]] = field(default_factory=dict)  # net events per hop
    instructions_per_s: list[float] = field(default_factory=list)
    iterations: int = 0


def _idle(config: RateConfig, progress: Progress | None) -> tuple[list[Window], Interference]:
    """Watch the host while ostoolkit only waits on a timer, window by window."""
    windows = []
    with Meter() as meter:
        for _ in range(config.windows):
            start = take_edge()
            time.sleep(config.window_s)  # the timed window itself, not a synchronisation
            windows.append(window_between(start, take_edge()))
            if progress:
                progress(1)
    return windows, meter.result


def _delta(after: dict[str, float], before: dict[str, float], trips: int) -> dict[str, float]:
    """Counted events per round trip between two readings."""
    return {name: (after[name] - before[name]) / trips for name in after}


def _pingpong(
    model: str, cpu: int, config: RateConfig, count: int, counting: bool, progress: Progress | None
) -> ModelRun:
    """One model's ping-pong on ``cpu``: its counters opened first (the partner inherits them),
    calibrated, then per window a baseline sample and a ping-pong window between edges."""
    run = ModelRun()
    opened = hardware.open_counters() if counting else None
    counters = opened if isinstance(opened, hardware.Counters) else None
    read: Callable[[], dict[str, float]] = counters.read if counters else dict
    try:
        with ping_pong(model, Pair("same_core", cpu, cpu), 0) as (_, (wfd, rfd, base_w, base_r)):
            trips = Calibration(config.window_s).rounds_of(lambda n: ping(wfd, rfd, n, None))
            base_trips = max(MIN_BASELINE_TRIPS, trips // BASELINE_SHARE)
            ping(base_w, base_r, base_trips, None)
            run.iterations = trips
            for _ in range(count):
                before = read()
                base_ns = ping(base_w, base_r, base_trips, None)
                base = _delta(read(), before, base_trips)
                start, before = take_edge(), read()
                trip_ns = ping(wfd, rfd, trips, None)
                trip = _delta(read(), before, trips)
                window = window_between(start, take_edge())
                run.windows.append(window)
                run.net_us.append((trip_ns / trips - 2 * base_ns / base_trips) / 2 / 1e3)
                run.switches_per_hop.append(window.switches / (2 * trips))
                for name in trip:
                    run.counted.setdefault(name, []).append((trip[name] - 2 * base[name]) / 2)
                if "instructions" in trip:
                    run.instructions_per_s.append(trip["instructions"] * trips / (trip_ns / 1e9))
                if progress:
                    progress(1)
    finally:
        if counters is not None:
            counters.close()
    return run


def decade(value: float) -> str:
    """A rate as a sentence says its size: "hundreds of times" from 100 to 999."""
    word = next((word for low, word in DECADES if value >= low), None)
    return f"{word} of times" if word else "fewer than ten times"


def per_cpu_words(extra: dict[str, Any]) -> str:
    """The idle rate per CPU in words, saying how it was counted (``measure_switch_rate``)."""
    online, per_cpu, allowed = extra["online_cpus"], extra["per_cpu"], extra["cpus"]
    host = f"on its {online} online CPU{'s' * (online != 1)}"
    if extra["per_cpu_from"] != OWN_COUNTS:
        return f"{host}, {per_cpu:,.0f} per CPU: the host's count over them, no per-CPU counts here"
    one = len(allowed) == 1
    each, whose = ("", "its own count") if one else ("per CPU ", "their own counts")
    cpus = f"CPU{'' if one else 's'} {format_cpu_list(allowed)}"
    return f"{host}; {per_cpu:,.0f} {each}on {cpus}, by {whose} in {OWN_COUNTS}"


def judge_rate(idle_result: Result, loaded_result: Result) -> str:
    """The article's "hundreds of times per second" against the idle and the ping-pong rate."""
    idle, loaded, cpu = idle_result.median, loaded_result.median, loaded_result.extra["cpu"]
    verdict = "as the article says" if decade(idle) == "hundreds of times" else "not hundreds"
    return (
        f"the idle host switched {decade(idle)} a second ({idle:,.0f} "
        f"{per_cpu_words(idle_result.extra)}): {verdict}; with two tasks handing a token back "
        f"and forth on CPU {cpu}, {decade(loaded)} ({loaded:,.0f}): the article's \"hundreds of "
        'times per second" is what a quiet host does, not what one CPU can do'
    )


def judge_instruction_rate(per_s: float, user_only: bool) -> str:
    """The article's "billions of instructions per second" against the counted rate."""
    scope = " in user space alone" if user_only else ""
    verdict = "as the article says" if per_s >= BILLION else "fewer than the article's billions"
    said = f"{per_s / BILLION:.2f} billion instructions a second{scope}"
    return f"while switching, the ping-pong's CPU ran {said}: {verdict}"


def _median(values: list[float]) -> float:
    """The median, or 0 for no values (a CPU or model that saw no window)."""
    return statistics.median(values) if values else 0.0


def per_cpu_table(idle: list[Window], loaded: list[Window]) -> SummaryTable:
    """Each CPU's timeslices per second (schedstat), idle and under the ping-pong."""

    def rate(windows: list[Window], cpu: int) -> float:
        return _median([w.slices[cpu] / w.elapsed_s for w in windows if cpu in w.slices])

    cpus = sorted({cpu for w in idle + loaded for cpu in w.slices})
    rows = [{"cpu": c, "idle": rate(idle, c), "ping-pong": rate(loaded, c)} for c in cpus]
    columns = [["cpu", "count"], ["idle", "per_s"], ["ping-pong", "per_s"]]
    note = "timeslices per second on each CPU (/proc/schedstat field 9: switches to a task)"
    return {"columns": columns, "rows": rows, "note": note, "title": "per CPU"}


def cycle_results(
    model: str, run: ModelRun, cpu: int, mhz: tuple[float, str], loaded: Interference
) -> tuple[list[Result], list[str]]:
    """A model's cycles per switch (counted, else net time x clock) and counted instructions;
    and why the cycles are not reported when the net time went negative (``netcost``)."""
    counted = run.counted.get("cycles")
    net = positive_blocks(run.net_us, None)  # one block: a negative sample condemns the run
    how = "counted (PERF_COUNT_HW_CPU_CYCLES)" if counted else f"net time x {mhz[0]:,.0f} MHz"
    extra = {
        "cpus": [cpu, cpu],
        "iterations": run.iterations,
        "net_us": round(_median(net.samples), 4),
        "mhz": mhz[0],
        "mhz_source": mhz[1],
        "cycles_from": how,
        "switches_per_hop": round(_median(run.switches_per_hop), 3),
    }
    figures = {"instructions": run.counted.get("instructions")}
    timed = [us * mhz[0] for us in net.samples] if mhz[0] > 0 and net.samples else None
    figures["cycles"] = counted or timed
    warnings = []
    if not counted and mhz[0] > 0 and not net.samples:
        warnings.append(f"{model} switch, same core: cycles not reported; {net.notes[0]}")
    results = []
    for what, samples in figures.items():
        if not samples:
            continue
        id_ = f"switch.{model}.{what}"
        label = f"{model} switch, same core: {what} (net{', counted' * (what != 'cycles')})"
        results.append(make_result(id_, label, "number", samples, interference=loaded, extra=extra))
    return results, warnings


def measure_switch_rate(config: RateConfig, progress: Progress | None = None) -> Measurement:
    """Count the host's context switches per second idle and under a ping-pong; cost in cycles."""
    allowed = sorted(os.sched_getaffinity(0))
    online = max(os.sysconf("SC_NPROCESSORS_ONLN"), len(allowed))  # ctxt's CPUs, not ours only
    cpu = choose_cpu(config.cpu, allowed, default=allowed[-1])  # --cpu's documented default
    pmu, warnings = hardware.pmu_status()
    idle, idle_meter = _idle(config, progress)
    runs: dict[str, ModelRun] = {}
    with Meter((cpu,)) as meter:
        for index, model in enumerate(MODELS):
            if count := (config.windows + 1 - index) // 2:
                runs[model] = _pingpong(model, cpu, config, count, pmu["available"], progress)
    loaded = [w for run in runs.values() for w in run.windows]
    common = {"window_s": round(config.window_s, 4), "source": "/proc/stat ctxt"}
    uncounted = {} if pmu["available"] else {"pmu_unavailable": pmu["reason"]}  # claims say so
    per_cpu, source = per_cpu_rate(idle, allowed, online)
    shares = {"online_cpus": online, "per_cpu": round(per_cpu, 1), "per_cpu_from": source}
    idle_rate = make_result(
        "rate.switches_per_s",
        "context switches per second, idle host (all CPUs)",
        "per_s",
        [w.rate for w in idle],
        extra={**common, "cpus": allowed, **shares, **uncounted},
        interference=replace(idle_meter, judged=False),  # the rate IS others' work
        population=True,  # each second's bursts are the host's own: not noise
    )
    results = [idle_rate]

    def loaded_rate(id_: str, label: str, rates: list[float], extra: dict[str, Any]) -> Result:
        """A rate counted while the ping-pong ran, judged by what the meter saw meanwhile."""
        return make_result(id_, label, "per_s", rates, extra=extra, interference=meter.result)

    if loaded:
        label = f"context switches per second, ping-pong on CPU {cpu} (all CPUs)"
        extra = {**common, "cpu": cpu, "models": list(runs)}
        rates = [w.rate for w in loaded]
        results.append(loaded_rate("rate.switches_per_s.pingpong", label, rates, extra))
    mhz = read_cpu_mhz()
    for model, run in runs.items():
        model_results, model_warnings = cycle_results(model, run, cpu, mhz, meter.result)
        results += model_results
        warnings += model_warnings
    if counted := [rate for run in runs.values() for rate in run.instructions_per_s]:
        label = f"instructions per second while switching, CPU {cpu} (counted)"
        extra = {"cpu": cpu, "user_only": pmu["user_only"], "models": list(runs)}
        results.append(loaded_rate("rate.instructions_per_s", label, counted, extra))
    for model, run in runs.items():
        if (per_hop := _median(run.switches_per_hop)) < SWITCHES_PER_HOP_RANGE[0]:
            warnings.append(f"{model} ping-pong: {per_hop:.2f} switches per hop, not about 1")
    findings = _findings(results, runs, pmu)
    data: dict[str, Any] = {"pmu": pmu}
    if any(w.slices for w in idle + loaded):
        data["table"] = per_cpu_table(idle, loaded)
    else:
        findings.append("per CPU: /proc/schedstat is not readable here (CONFIG_SCHEDSTATS off)")
    perf_findings, perf_warnings, perf_data = hardware.perf_stat_check(cpu, config.perf_loops)
    if perf_data:
        data["perf_stat"] = perf_data
    return Measurement(
        tuple(results), tuple(findings + perf_findings), tuple(warnings + perf_warnings), data
    )


def _findings(results: list[Result], runs: dict[str, ModelRun], pmu: dict[str, Any]) -> list[str]:
    """The rate against the article, cycles per switch, the instruction rate if counted."""
    by_id = {r.id: r for r in results}
    idle, loaded = by_id["rate.switches_per_s"], by_id.get("rate.switches_per_s.pingpong")
    findings = [judge_rate(idle, loaded)] if loaded else []
    cycles = [(m, by_id[f"switch.{m}.cycles"]) for m in runs if f"switch.{m}.cycles" in by_id]
    if cycles:
        extra = cycles[0][1].extra
        source = (
            "" if extra["cycles_from"].startswith("counted") else f" from {extra['mhz_source']}"
        )
        said = ", ".join(f"{m} {r.median:,.0f}" for m, r in cycles)
        findings.append(f"cycles per switch, {extra['cycles_from']}{source}: {said}")
    if counted := by_id.get("rate.instructions_per_s"):
        findings.append(judge_instruction_rate(counted.median, pmu["user_only"]))
    return findings
