"""Context-switch cost: two tasks bounce a one-byte token over two pipes (lmbench lat_ctx).

Per model and placement (one CPU: a switch; two: a wake-up across CPUs), the raw round trip
and net = (round trip - 2 x baseline) / 2, the baseline one task's own write+read. Blocks,
kernel counters, interference and the speed reference: docs/method.md, "measure-switch".
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from ostoolkit.children import Children, Fds, pin_current, pinned_main
from ostoolkit.errors import OstoolkitError
from ostoolkit.host import tlb_tagging
from ostoolkit.measure.blocks import MIN_ROUNDS, Gathered, Sampling, Timing, take_rounds
from ostoolkit.measure.cref import HarnessError, built_harness, served_pair
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.netcost import block_medians, net_per_hop
from ostoolkit.measure.placement import PLACEMENTS as PLACEMENTS
from ostoolkit.measure.placement import Pair, expand_topology, plan_pairs
from ostoolkit.measure.reference import TOKEN, time_rounds
from ostoolkit.measure.switchtrace import (
    timing_findings,
    timing_results,
    trace_results,
    why_finding,
    with_counting,
)
from ostoolkit.measure.trace import (
    TRACED_WINDOWS,
    Counted,
    Traced,
    TraceUnavailable,
    count_windows,
    open_events,
    probe,
    timed_ids,
    trace_windows,
)
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.scratch import run_tempdir
from ostoolkit.stats import judge_noise, median_interval, summarize

MODELS = ("process", "thread")
PLURAL = {"process": "processes", "thread": "threads"}
OURS, C = "ours", "c"  # whose blocks a figure's samples are: ostoolkit's, or the C harness's
# A byte the working-set buffers never contain, so bytes.find reads every byte (memchr).
ABSENT = b"\xff"
FILL = b"\x01"
MAX_WORKING_SET_KB = 64 * 1024
# The method assumes about one kernel context switch per hop; outside this range it warns.
SWITCHES_PER_HOP_RANGE = (0.8, 1.25)
# Labels by placement ("process switch, same core (net)"): only same-core is a switch.
PLACEMENT_LABELS = {
    "same_core": "switch, same core",
    "cross_core": "wake-up across cores",
    "unpinned": "ping-pong, unpinned: CPUs the scheduler chose",
    "smt_sibling": "wake-up, SMT sibling",
    "same_llc": "wake-up, same last-level cache",
    "other_llc": "wake-up, another last-level cache",
    "other_node": "wake-up, another NUMA node",
}


@dataclass(frozen=True)
class SwitchConfig(Sampling):
    """What to measure and for how long."""

    models: tuple[str, ...] = MODELS
    placements: tuple[str, ...] = PLACEMENTS
    working_set_kb: int = 0
    cpus: tuple[int, ...] | None = None
    c_harness: bool = False  # lat_pipe.c's blocks alternated with ours, same-core pairs only
    count_switches: bool = True  # the kernel's tracepoints, same-core pairs, where permitted
    trace_timing: bool = False  # --trace: each hop's time decomposed from sampled tracepoints

    def steps(self, cpus_allowed: int) -> int:
        """How many progress steps ``measure_switch`` will report, for a progress bar."""
        expanded, _, _ = expand_topology(sorted(os.sched_getaffinity(0)), self.placements)
        placements = [p for p in expanded if p in ("same_core", "unpinned") or cpus_allowed >= 2]
        placements += ["same_core"] if self.c_harness and "same_core" in placements else []
        return len(placements) * len(self.models) * (self.repeat + 1)


def make_buffer(kb: int) -> bytearray | None:
    """Allocate and write a private working set (written, so it is not the shared zero page)."""
    return bytearray(FILL * (kb * 1024)) if kb else None


def ping(wfd: int, rfd: int, n: int, buf: bytearray | None) -> int:
    """Pass the token n times (touching the buffer first); return elapsed nanoseconds."""
    if buf is None:
        return time_rounds(wfd, rfd, n)
    read, write, token, find = os.read, os.write, TOKEN, buf.find
    start = time.perf_counter_ns()
    for _ in range(n):
        find(ABSENT)
        write(wfd, token)
        read(rfd, 1)
    return time.perf_counter_ns() - start


def answer(rfd: int, wfd: int, buf: bytearray | None) -> None:
    """Pass every token on (touching the buffer first) until the pipe reaches end-of-file."""
    read, write, token = os.read, os.write, TOKEN
    if buf is None:
        while read(rfd, 1) == token:
            write(wfd, token)
        return
    find = buf.find
    while read(rfd, 1) == token:
        find(ABSENT)
        write(wfd, token)


def _serve(rfd: int, wfd: int, kb: int, cpu: int | None) -> None:
    """The partner task: pin, allocate its own buffer, say ready, then answer tokens."""
    if cpu is not None:
        pin_current(cpu)
    buf = make_buffer(kb)
    os.write(wfd, TOKEN)
    answer(rfd, wfd, buf)


def own_thread_switches() -> tuple[int, int]:
    """This thread's own voluntary and involuntary switches, getrusage(RUSAGE_THREAD)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_nvcsw, usage.ru_nivcsw


def switches_with(partner: psutil.Process) -> tuple[int, int]:
    """This thread's and ``partner``'s voluntary and involuntary switches, added up."""
    own, theirs = own_thread_switches(), partner.num_ctx_switches()
    return own[0] + theirs.voluntary, own[1] + theirs.involuntary


@contextlib.contextmanager
def ping_pong(
    model: str, pair: Pair, kb: int
) -> Iterator[tuple[psutil.Process, tuple[int, int, int, int]]]:
    """A fresh, ready partner task (forked or a thread), this thread pinned beside it; yields it
    and the pipes (to it, from it, baseline write, baseline read). Each side holds only its own
    ends, so a dead partner reads as end-of-file, and closing ours after ends the partner."""
    fds = Fds()
    native: list[int] = []
    failure: list[Exception] = []
    try:
        rfd, to_pong = fds.pipe()
        from_pong, wfd = fds.pipe()
        base_r, base_w = fds.pipe()
        cpu = pair.cpu_b if pair.pinned else None

        def serve_thread() -> None:
            native.append(threading.get_native_id())
            try:
                _serve(rfd, wfd, kb, cpu)
            except Exception as err:  # reported below: this side reads end-of-file
                failure.append(err)
            finally:
                os.close(rfd)
                os.close(wfd)

        pinned = pinned_main(pair.cpu_a) if pair.pinned else contextlib.nullcontext()
        with Children() as children, pinned:
            try:
                if model == "process":
                    native.append(children.fork(lambda: _serve(rfd, wfd, kb, None), cpu=cpu))
                    fds.close(rfd)
                    fds.close(wfd)
                else:
                    fds.release(rfd, wfd)
                    children.start_thread(serve_thread, lambda: None, name="ostoolkit-pong")
                if os.read(from_pong, 1) != TOKEN:
                    why = f": {failure[0]}" if failure else ""
                    raise OstoolkitError(f"the partner {model} failed before it was ready{why}")
                yield psutil.Process(native[0]), (to_pong, from_pong, base_w, base_r)
            finally:
                fds.close(to_pong)
    finally:
        fds.close_all()


@contextlib.contextmanager
def _pair_timing(model: str, pair: Pair, kb: int) -> Iterator[Timing]:
    """One block's round trips with a fresh partner; without a working set the baseline is the
    host's speed reference, with one the reference is a bare write+read beside it."""
    with ping_pong(model, pair, kb) as (pong, (wfd, rfd, base_w, base_r)):
        buf = make_buffer(kb)
        yield Timing(
            rounds=lambda n: ping(wfd, rfd, n, buf),
            baseline=lambda n: ping(base_w, base_r, n, buf),
            switches=lambda: switches_with(pong),
            reference=None if buf is None else functools.partial(time_rounds, base_w, base_r),
            where=None if pair.pinned else lambda: (psutil.Process().cpu_num(), pong.cpu_num()),
            tasks=(threading.get_native_id(), pong.pid),
        )


def _metered(pair: Pair) -> frozenset[int]:
    """The CPUs a pair's interference is metered on: its own, or all allowed when unpinned."""
    if pair.pinned:
        return frozenset((pair.cpu_a, pair.cpu_b))
    return frozenset(os.sched_getaffinity(0))


def pair_results(
    model: str,
    pair: Pair,
    samples: Gathered,
    interference: Interference | None,
    config: SwitchConfig,
) -> tuple[list[Result], list[str]]:
    """Turn one pair's samples into its switch and round-trip results plus warnings."""
    key = f"{model}.{pair.placement}"
    label = f"{model} {PLACEMENT_LABELS.get(pair.placement, f'wake-up, {pair.placement}')}"
    extra = {
        "cpus": [pair.cpu_a, pair.cpu_b],
        "iterations": samples.rounds or 0,
        "working_set_kb": config.working_set_kb,
        **samples.counts_extra(),
    }
    if not pair.pinned:
        extra["cpus"] = sorted({cpu for seen in samples.cpus_seen for cpu in seen})
        extra["cpus_seen"] = [list(seen) for seen in sorted(samples.cpus_seen)]
    if interference is not None:
        interference = replace(interference, reference_samples=tuple(samples.reference_us))
    net = samples.net()
    roundtrip = make_result(
        f"roundtrip.{key}",
        f"{label} (round trip, raw)",
        "us",
        samples.round_us,
        extra=extra,
        interference=interference,
        runs=samples.block_sizes or None,  # each block is a run: a fresh partner task
    )
    if not net.samples:
        return [roundtrip], [net.dropped(f"{label} (net)")]
    switch = make_result(
        f"switch.{key}",
        f"{label} (net)",
        "us",
        net.samples,
        extra={**extra, **samples.hop_extra()},
        interference=interference,
        runs=net.runs,
        notes=net.notes,
    )
    if samples.reference_us and judge_noise(samples.reference_us).status != "ok":
        reference = summarize(samples.reference_us)
        moved = (
            "the host's own speed changed meanwhile: its speed reference (one task's pipe "
            f"write+read) took {reference.p10:.2f}-{reference.p90:.2f} µs"
        )
        switch, roundtrip = (replace(r, notes=(*r.notes, moved)) for r in (switch, roundtrip))
    per_hop = sum(samples.per_hop())
    low, high = SWITCHES_PER_HOP_RANGE
    if low <= per_hop <= high:
        return [switch, roundtrip], []  # their noise warnings: claims.annotate
    return [switch, roundtrip], [
        f"{switch.label}: the kernel counted {per_hop:.2f} context switches per hop, "
        "not about 1, so this figure is not the cost of one switch"
    ]


def measure_switch(config: SwitchConfig, progress: Progress | None = None) -> Measurement:
    """Measure process and thread switch cost on this host as configured; with ``c_harness``
    the C harness's blocks alternate with ours on the same-core CPU, and each model's
    ``python_share`` is their difference, block by block."""
    allowed = sorted(os.sched_getaffinity(0))
    pairs, notes = plan_pairs(allowed, config.cpus, config.placements)
    jobs = [(model, pair) for pair in pairs for model in config.models]
    kb = config.working_set_kb
    with ExitStack() as stack:
        same_core = next((pair.cpu_a for pair in pairs if pair.placement == "same_core"), None)
        binary, skipped = _c_harness(stack, config, same_core)
        notes += [skipped] if skipped else []
        trace_ids, uncounted, partly = _trace_probe(config, same_core)
        timings: dict[tuple[str, Pair, str], Callable[[], AbstractContextManager[Timing]]] = {}
        for model, pair in jobs:  # ours, then the C harness's, in every round of blocks
            timings[model, pair, OURS] = functools.partial(_pair_timing, model, pair, kb)
            if binary is not None and pair.placement == "same_core":
                timings[model, pair, C] = functools.partial(
                    served_pair, binary, model, pair.cpu_a, kb
                )
        # Every figure in rounds of blocks, one meter per CPU set over the whole run.
        meters = {
            cpus: stack.enter_context(Meter(cpus)) for cpus in dict.fromkeys(map(_metered, pairs))
        }
        gathered = take_rounds(timings, config, progress)
        counted, uncounted = _count_switches(timings, gathered, jobs, trace_ids, uncounted)
        traced, untraced = _trace_timing(timings, jobs, config, same_core)
    results: list[Result] = []
    warnings = [*notes, *([f"{COUNTS_SKIPPED}: {uncounted}"] if uncounted else []), *partly]
    warnings += [f"{TIMING_SKIPPED}: {untraced}"] if untraced else []
    tagging = tlb_tagging()
    for model, pair in jobs:
        interference = meters[_metered(pair)].result
        ours = gathered[model, pair, OURS]
        figures, said = pair_results(model, pair, ours, interference, config)
        if pair.placement == "same_core":
            figures = [with_counting(r, tagging, counted, uncounted) for r in figures]
        if (c := gathered.get((model, pair, C))) is not None:
            figures += c_results(model, pair, ours, c, interference)
        if model in counted and pair.placement == "same_core":
            figures += trace_results(model, pair, counted[model], ours)
        for whose, prefix in ((OURS, "trace"), (C, "trace.lat_pipe")):
            if (hops := traced.get((model, pair, whose))) is not None:
                untimed = gathered[model, pair, whose]
                figures += timing_results(f"{prefix}.{model}", whose == C, pair, hops, untimed)
        results.extend(figures)
        warnings.extend(said)
    findings = []
    by_id = {r.id: r for r in results}
    if why := why_finding(by_id, tagging):
        findings.append(why)
    findings += timing_findings(by_id)
    unpinned = [r for r in results if r.id.startswith("switch.") and r.id.endswith(".unpinned")]
    if unpinned:
        seen = "; ".join(
            f"{r.id.split('.')[1]} on CPUs {'/'.join(map(str, r.extra['cpus']))}: {r.median:.2f} µs"
            for r in unpinned
        )
        findings.append(
            f"unpinned, the scheduler chose: {seen}; where it put the two tasks on different "
            "CPUs the figure is a wake-up across CPUs, not a switch: pinning decides what is "
            "measured"
        )
    if any(p.placement == "cross_core" for p in pairs):
        findings.append(
            "cross-core figures are wake-up latency across CPUs, not a context switch; "
            "on a VM they can be many times the switch cost"
        )
    findings += c_findings(by_id)
    return Measurement(tuple(results), tuple(findings), tuple(warnings))


COUNTS_SKIPPED = "the kernel's switch counts (address-space changes, TLB flushes) were skipped"
TIMING_SKIPPED = "--trace's timing decomposition was skipped"


def _trace_probe(
    config: SwitchConfig, cpu: int | None
) -> tuple[dict[str, int], str | None, list[str]]:
    """The tracepoint ids to count on the same-core ``cpu``; why none can be counted (not
    permitted, no tracefs); and a line per event skipped (a tracepoint missing). Nothing
    without a same-core pair or with counting off."""
    if not config.count_switches or cpu is None:
        return {}, None, []
    try:
        ids, partly = probe(cpu)
    except TraceUnavailable as why:
        return {}, str(why), []
    return ids, None, partly


def _count_switches(
    timings: Mapping[tuple[str, Pair, str], Callable[[], AbstractContextManager[Timing]]],
    gathered: Mapping[tuple[str, Pair, str], Gathered],
    jobs: list[tuple[str, Pair]],
    ids: Mapping[str, int],
    uncounted: str | None,
) -> tuple[dict[str, Counted], str | None]:
    """Each model's same-core pair counted by the kernel in a block of its own, after the timed
    ones (the counters slow every switch a little, so no timed sample is taken with them on):
    a fresh pair, its calibrated rounds, filtered to its two tasks."""
    counted: dict[str, Counted] = {}
    if not ids:
        return counted, uncounted
    for model, pair in jobs:
        if pair.placement != "same_core":
            continue
        rounds = gathered[model, pair, OURS].rounds or MIN_ROUNDS
        try:
            with (
                timings[model, pair, OURS]() as timing,
                contextlib.closing(open_events(pair.cpu_a, timing.tasks, ids)) as events,
            ):
                counted[model] = count_windows(timing, events, rounds)
        except TraceUnavailable as why:
            return {}, str(why)
    return counted, uncounted


def _trace_timing(
    timings: Mapping[tuple[str, Pair, str], Callable[[], AbstractContextManager[Timing]]],
    jobs: list[tuple[str, Pair]],
    config: SwitchConfig,
    cpu: int | None,
) -> tuple[dict[tuple[str, Pair, str], Traced], str | None]:
    """With ``trace_timing``, every same-core pair (ours and the C harness's) traced after the
    timed blocks, window by window in turn (ours, C, ours, C...), a fresh pair each: sampling
    every event slows each hop a lot, so no traced sample may join a timed figure, and taking
    them in turn lets a change of the host's speed move both. Or why not (one line)."""
    if not config.trace_timing:
        return {}, None
    if cpu is None:
        return {}, "it decomposes same-core hops, and no same-core pair was measured"
    wanted = [k for k in timings if k[:2] in jobs and k[1].placement == "same_core"]
    traced = {key: Traced() for key in wanted}
    try:
        ids = timed_ids()
        for _ in range(TRACED_WINDOWS):
            for key in wanted:
                with timings[key]() as timing:
                    traced[key].extend(trace_windows(timing, key[1].cpu_a, ids, windows=1))
    except TraceUnavailable as why:
        return {}, str(why)
    return traced, None


def _c_harness(
    stack: ExitStack, config: SwitchConfig, cpu: int | None
) -> tuple[Path | None, str | None]:
    """lat_pipe built for this run (removed with ``stack``) and tried once on ``cpu``, or None
    and the one line that says why not (no compiler, a failed build or start)."""
    if not config.c_harness or cpu is None:
        return None, None
    try:
        binary = stack.enter_context(built_harness(stack.enter_context(run_tempdir())))
        with served_pair(binary, config.models[0], cpu, config.working_set_kb) as probe:
            probe.rounds(1)
    except HarnessError as error:
        return None, f"the C harness was skipped: {error}"
    return binary, None


def c_results(
    model: str,
    pair: Pair,
    ours: Gathered,
    c: Gathered,
    interference: Interference | None,
) -> list[Result]:
    """The C harness's net figure of one model (``ref.lat_pipe.<model>.same_core``) and
    Python's share: ours minus C, block by block (each pair of blocks taken in turn)."""
    c_net = c.net()
    if not c_net.samples:
        return []
    extra = {
        "cpus": [pair.cpu_a, pair.cpu_b],
        "iterations": c.rounds or 0,
        **c.counts_extra(),
        **c.hop_extra(),
    }
    reference = make_result(
        f"ref.lat_pipe.{model}.same_core",
        f"C harness lat_pipe.c, {model} switch, same core (net)",
        "us",
        c_net.samples,
        extra=extra,
        interference=interference,
        runs=c_net.runs,
        notes=c_net.notes,
    )
    pairs = zip(
        block_medians(net_per_hop(ours.round_us, ours.baseline_us), ours.block_sizes),
        block_medians(net_per_hop(c.round_us, c.baseline_us), c.block_sizes),
        strict=True,
    )
    share = [mine - theirs for mine, theirs in pairs if mine is not None and theirs is not None]
    if not share:
        return [reference]
    low, high = median_interval(share, f"python_share.{model}")
    python_share = make_result(
        f"switch.{model}.python_share",
        f"{model} switch, same core: Python's share (ostoolkit − C, net)",
        "us",
        share,
        extra={"cpus": [pair.cpu_a, pair.cpu_b], "blocks": len(share), "ci_us": [low, high]},
        interference=interference,
        runs=[1] * len(share),  # each a pair of blocks: its own partner tasks and moment
        # a difference near 0 has no meaningful relative spread: its interval (ci_us) says how
        # well it is known, and only the interference the run saw judges its status
        population=True,
    )
    return [reference, python_share]


def c_findings(by_id: Mapping[str, Result]) -> list[str]:
    """Three sentences where the C harness ran beside us: the kernel's switch (C), what a
    Python program pays (ours), and the difference and why."""
    models = [m for m in MODELS if f"switch.{m}.python_share" in by_id]
    if not models:
        return []

    def figures(template: str) -> str:
        return ", ".join(f"{PLURAL[m]} {by_id[template.format(m)].median:.2f} µs" for m in models)

    shares = []
    for model in models:
        share = by_id[f"switch.{model}.python_share"]
        low, high = share.extra["ci_us"]
        shares.append(f"{PLURAL[model]} {share.median:.2f} µs [{low:.2f}–{high:.2f}]")
    return [
        "the kernel's switch, same core (the C harness: same method, same CPU, its blocks "
        f"alternated with ostoolkit's): {figures('ref.lat_pipe.{}.same_core')} per switch (net)",
        f"what a Python program pays per switch (ostoolkit, net): {figures('switch.{}.same_core')}",
        f"Python's share (ostoolkit − C, block by block, 95 % interval): {'; '.join(shares)}; "
        "after each switch the interpreter's deeper path back into Python finds the caches, "
        "TLB and branch predictors cold, a cost a Python program pays and a C program does not",
    ]
