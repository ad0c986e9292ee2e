"""Context-switch cost: two tasks bounce a one-byte token over two pipes (lmbench lat_ctx).

Each hop of the token blocks one task and wakes the other. With both tasks pinned to one CPU,
every hop is a real context switch on that CPU; pinned to two CPUs, a hop is a wake-up across
CPUs (a different cost, reported under its own name). Per model and placement:

- round trip: time for the token to go there and back (two hops), raw;
- gross = round trip / 2, as ``perf bench sched pipe`` reports it (its usecs/op is a round trip);
- net = (round trip - 2 x baseline) / 2, lmbench's definition, where the baseline is the same
  write+read (and working-set touch) done by one task on a private pipe, so no switch happens;
  it is measured on the same CPU in the same run, one baseline sample before each round-trip
  sample, so drift affects both alike.

Each figure's samples are taken in blocks (5 by default), round by round across all the
figures, each block with a fresh partner task and its own warm-up, so that a figure's samples
span the whole run: a shared host changes speed for seconds at a time, and one stretch of
samples would show one state of it, tightly (measured: ``measure.reference``). Beside every
sample, the host's speed reference is timed too, for ``compare``.

The kernel's own per-task counters (voluntary and involuntary switches, proc(5) status) are
read for both tasks around every sample: about one switch per hop is what the method assumes,
and the report says so when the kernel disagrees.

Interference is metered on exactly the pinned CPUs (``measure.interference``): what other
tasks and the hypervisor took from them while one model ran on one pair is in both of its
results' extras (``other_cpu_share``, ``steal_share``) and in their status.

The method in full, its accuracy evidence and the numbers measured: docs/method.md,
"measure-switch".
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace

import psutil

from ostoolkit.children import Children, Fds, pin_current, pinned_main
from ostoolkit.errors import OstoolkitError
from ostoolkit.host import tlb_tagging
from ostoolkit.measure.blocks import Calibration, Gathered, Timing, block_sizes, take_block
from ostoolkit.measure.interference import Interference, Meter
from ostoolkit.measure.netcost import net_per_hop, positive_blocks
from ostoolkit.measure.placement import PLACEMENTS as PLACEMENTS
from ostoolkit.measure.placement import Pair as Pair
from ostoolkit.measure.placement import expand_topology
from ostoolkit.measure.placement import plan_pairs as plan_pairs
from ostoolkit.measure.reference import TOKEN, time_rounds
from ostoolkit.report import Measurement, Progress, Result, make_result
from ostoolkit.stats import judge_noise, summarize

MODELS = ("process", "thread")
# A byte the working-set buffers never contain, so bytes.find reads every byte (memchr).
ABSENT = b"\xff"
FILL = b"\x01"
MAX_WORKING_SET_KB = 64 * 1024
# The method assumes about one kernel context switch per hop; outside this range it warns.
SWITCHES_PER_HOP_RANGE = (0.8, 1.25)

# TLB tagging that lets a process switch keep the TLB (see host.tlb_tagging).
TLB_TAGS = ("pcid", "asid")


@dataclass(frozen=True)
class SwitchConfig:
    """What to measure and for how long."""

    models: tuple[str, ...] = MODELS
    placements: tuple[str, ...] = PLACEMENTS
    repeat: int = 30
    blocks: int = 5
    iterations: int | None = None
    target_sample_s: float = 0.05
    working_set_kb: int = 0
    cpus: tuple[int, ...] | None = None

    @classmethod
    def full(cls) -> SwitchConfig:
        """The careful settings (the defaults): samples of about 50 ms, 30 per figure."""
        return cls()

    @classmethod
    def quick(cls) -> SwitchConfig:
        """Settings that finish in about a second, for CI logs and the report's quick run."""
        return cls(repeat=15, target_sample_s=0.02)

    def steps(self, cpus_allowed: int) -> int:
        """How many progress steps ``measure_switch`` will report, for a progress bar."""
        expanded, _, _ = expand_topology(sorted(os.sched_getaffinity(0)), self.placements)
        placements = [p for p in expanded if p in ("same_core", "unpinned") or cpus_allowed >= 2]
        return len(placements) * len(self.models) * (self.repeat + 1)


def make_buffer(kb: int) -> bytearray | None:
    """Allocate and write a private working set (written, so it is not the shared zero page)."""
    return bytearray(FILL * (kb * 1024)) if kb else None


def ping(wfd: int, rfd: int, n: int, buf: bytearray | None) -> int:
    """Pass the token n times (touching the buffer first); return elapsed nanoseconds."""
    if buf is None:
        return time_rounds(wfd, rfd, n)
    read, write, token = os.read, os.write, TOKEN
    find = buf.find
    start = time.perf_counter_ns()
    for _ in range(n):
        find(ABSENT)
        write(wfd, token)
        read(rfd, 1)
    return time.perf_counter_ns() - start


def _pong(rfd: int, wfd: int, buf: bytearray | None) -> None:
    """Answer every token (touching the buffer first) until the pipe reaches end-of-file."""
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
    _pong(rfd, wfd, buf)


def own_thread_switches() -> tuple[int, int]:
    """This thread's own voluntary and involuntary switches, getrusage(RUSAGE_THREAD)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_nvcsw, usage.ru_nivcsw


def start_partner(
    model: str, pair: Pair, kb: int, children: Children, fds: Fds, ends: tuple[int, int, int]
) -> psutil.Process:
    """Start the pong task (a forked child or a thread) and wait until it is ready.

    ``ends`` are (pong reads, pong writes, ping reads). The ping side gives up its copies of
    the pong's two ends, so it reads end-of-file instead of hanging if the partner dies.
    """
    rfd, wfd, ready_fd = ends
    native: list[int] = []
    failure: list[Exception] = []
    if model == "process":
        cpu = pair.cpu_b if pair.pinned else None
        native.append(children.fork(lambda: _serve(rfd, wfd, kb, None), cpu=cpu))
        fds.close(rfd)
        fds.close(wfd)
    else:

        def serve_thread() -> None:
            native.append(threading.get_native_id())
            try:
                _serve(rfd, wfd, kb, pair.cpu_b if pair.pinned else None)
            except Exception as err:  # reported below: the ping side sees end-of-file
                failure.append(err)
            finally:
                os.close(rfd)
                os.close(wfd)

        fds.release(rfd, wfd)
        children.start_thread(serve_thread, lambda: None, name="ostoolkit-pong")
    if os.read(ready_fd, 1) != TOKEN:
        reason = f": {failure[0]}" if failure else ""
        raise OstoolkitError(f"the partner {model} failed before it was ready{reason}")
    return psutil.Process(native[0])


def _sample_block(
    model: str,
    pair: Pair,
    config: SwitchConfig,
    count: int,
    gathered: Gathered,
    progress: Progress | None,
) -> None:
    """Start a fresh partner, pin this thread, take ``count`` samples; end the partner after."""
    fds = Fds()
    try:
        to_pong_r, to_pong_w = fds.pipe()
        to_ping_r, to_ping_w = fds.pipe()
        base_r, base_w = fds.pipe()
        pinned = pinned_main(pair.cpu_a) if pair.pinned else contextlib.nullcontext()
        with Children() as children, pinned:
            try:
                ends = (to_pong_r, to_ping_w, to_ping_r)
                pong = start_partner(model, pair, config.working_set_kb, children, fds, ends)
                pipes = (to_pong_w, to_ping_r, base_w, base_r)
                _run_block(pong, pair.pinned, config, pipes, count, gathered, progress)
            finally:
                fds.close(to_pong_w)  # the partner reads end-of-file and returns
    finally:
        fds.close_all()


def _run_block(
    pong: psutil.Process,
    pinned: bool,
    config: SwitchConfig,
    pipes: tuple[int, int, int, int],
    count: int,
    gathered: Gathered,
    progress: Progress | None,
) -> None:
    """One block of round trips with the partner ``pong`` (``blocks.take_block``).

    ``pipes`` are (to the partner, from the partner, baseline write, baseline read); the
    host's speed reference is the baseline itself without a working set.
    """
    wfd, rfd, base_w, base_r = pipes
    buf = make_buffer(config.working_set_kb)

    def switches() -> tuple[int, int]:
        own, theirs = own_thread_switches(), pong.num_ctx_switches()
        return own[0] + theirs.voluntary, own[1] + theirs.involuntary

    def where() -> tuple[int, int]:  # where the scheduler put the two tasks last
        return psutil.Process().cpu_num(), pong.cpu_num()

    timing = Timing(
        rounds=lambda n: ping(wfd, rfd, n, buf),
        baseline=lambda n: ping(base_w, base_r, n, buf),
        switches=switches,
        reference=None if buf is None else (lambda n: time_rounds(base_w, base_r, n)),
        where=None if pinned else where,
    )
    calibration = Calibration(config.target_sample_s, config.iterations)
    take_block(timing, calibration, count, gathered, progress)


def _sample_all(
    pairs: list[Pair], config: SwitchConfig, progress: Progress | None
) -> list[tuple[str, Pair, Gathered, Interference]]:
    """Every model on every pair, in rounds of blocks, each block with a fresh partner.

    Round by round, each figure takes its next block of samples, so each figure's samples
    span the whole run instead of one stretch of it: a shared host changes speed for
    seconds at a time (measure.reference), and a figure sampled in one stretch would carry
    whatever state that stretch had, tight and unrepresentative. One interference meter
    per CPU set covers the whole run, from before the first partner starts until the last
    is reaped; every block's tasks are ours, so all of their CPU time counts as our own.
    """
    jobs = [(model, pair) for pair in pairs for model in config.models]
    gathered = {job: Gathered() for job in jobs}
    meters: dict[frozenset[int], Meter] = {}
    with ExitStack() as stack:
        for pair in pairs:
            cpus = _metered(pair)
            if cpus not in meters:
                meters[cpus] = stack.enter_context(Meter(cpus))
        for count in block_sizes(config.repeat, config.blocks):
            for model, pair in jobs:
                _sample_block(model, pair, config, count, gathered[(model, pair)], progress)
    return [
        (model, pair, gathered[(model, pair)], meters[_metered(pair)].result)
        for model, pair in jobs
    ]


PLACEMENT_WORDS = {
    "smt_sibling": "SMT sibling",
    "same_llc": "same last-level cache",
    "other_llc": "another last-level cache",
    "other_node": "another NUMA node",
}


def _metered(pair: Pair) -> frozenset[int]:
    """The CPUs a pair's interference is metered on: its own, or all allowed when unpinned."""
    if pair.pinned:
        return frozenset((pair.cpu_a, pair.cpu_b))
    return frozenset(os.sched_getaffinity(0))


def _label(model: str, placement: str, what: str) -> str:
    """Human label; only same-core is a switch: other placements are wake-ups across CPUs."""
    if placement == "same_core":
        return f"{model} switch, same core ({what})"
    if placement == "cross_core":
        return f"{model} wake-up across cores ({what})"
    if placement == "unpinned":
        return f"{model} ping-pong, unpinned: CPUs the scheduler chose ({what})"
    return f"{model} wake-up, {PLACEMENT_WORDS.get(placement, placement)} ({what})"


def pair_results(
    model: str,
    pair: Pair,
    samples: Gathered,
    interference: Interference | None,
    config: SwitchConfig,
) -> tuple[list[Result], list[str]]:
    """Turn one pair's samples into its switch and round-trip results plus warnings."""
    key = f"{model}.{pair.placement}"
    voluntary, involuntary = samples.per_hop()
    per_hop = voluntary + involuntary
    extra = {
        "cpus": [pair.cpu_a, pair.cpu_b],
        "iterations": samples.rounds or 0,
        "working_set_kb": config.working_set_kb,
        "switches_per_hop": round(per_hop, 3),
        "voluntary_per_hop": round(voluntary, 3),
        "involuntary_per_hop": round(involuntary, 3),
    }
    runs = samples.block_sizes or None  # each block is a run: a fresh partner task
    if not pair.pinned:
        extra["cpus"] = sorted({cpu for seen in samples.cpus_seen for cpu in seen})
        extra["cpus_seen"] = [list(seen) for seen in sorted(samples.cpus_seen)]
    if interference is not None:
        interference = replace(interference, reference_samples=tuple(samples.reference_us))
    net = positive_blocks(net_per_hop(samples.round_us, samples.baseline_us), runs)
    roundtrip = make_result(
        f"roundtrip.{key}",
        _label(model, pair.placement, "round trip, raw"),
        "us",
        samples.round_us,
        extra=extra,
        interference=interference,
        runs=runs,
    )
    if not net.samples:
        return [roundtrip], [
            f"{_label(model, pair.placement, 'net')}: not reported; {net.notes[0]}"
        ]
    switch = make_result(
        f"switch.{key}",
        _label(model, pair.placement, "net"),
        "us",
        net.samples,
        extra={
            **extra,
            "gross_us": round(roundtrip.median / 2, 4),
            "baseline_us": round(statistics.median(samples.baseline_us), 4),
        },
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
        switch = replace(switch, notes=(*switch.notes, moved))
        roundtrip = replace(roundtrip, notes=(*roundtrip.notes, moved))
    warnings = []
    low, high = SWITCHES_PER_HOP_RANGE
    if not low <= per_hop <= high:
        warnings.append(
            f"{switch.label}: the kernel counted {per_hop:.2f} context switches per hop, "
            "not about 1, so this figure is not the cost of one switch"
        )
    return [switch, roundtrip], warnings  # their noise warnings: claims.annotate


def measure_switch(config: SwitchConfig, progress: Progress | None = None) -> Measurement:
    """Measure process and thread switch cost on this host as configured."""
    allowed = sorted(os.sched_getaffinity(0))
    pairs, notes = plan_pairs(allowed, config.cpus, config.placements)
    results: list[Result] = []
    warnings = list(notes)
    for model, pair, samples, interference in _sample_all(pairs, config, progress):
        figures, said = pair_results(model, pair, samples, interference, config)
        results.extend(figures)
        warnings.extend(said)
    findings = []
    by_id = {r.id: r for r in results}
    process, thread = by_id.get("switch.process.same_core"), by_id.get("switch.thread.same_core")
    if process and thread:
        tagging = tlb_tagging()
        if thread.median > 0 and process.median / thread.median < 2 and tagging in TLB_TAGS:
            findings.append(
                f"why: this CPU tags TLB entries by address space ({tagging}), so switching "
                "to another process keeps the TLB instead of flushing it; what remains extra "
                "for a process is mostly loading its page-table root"
            )
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
    return Measurement(tuple(results), tuple(findings), tuple(warnings))
