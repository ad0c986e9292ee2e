"""measure-switch's figures and findings from the kernel's tracepoints (``measure/trace.py``):
what each same-core switch did (counted), where a hop's time goes (traced), and why a process
switch costs what it does beside a thread's. docs/method.md, "Counting switches" and "Where
a hop's time goes".
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import replace

from ostoolkit.claims import EVERY_PER_HOP, NONE_PER_HOP, kernel_counts
from ostoolkit.measure.blocks import Gathered
from ostoolkit.measure.placement import Pair
from ostoolkit.measure.trace import FLUSHED, KEPT, SWITCHED, Counted, Traced
from ostoolkit.report import Result, make_result

MODELS = ("process", "thread")
# TLB tagging that lets a process switch keep the TLB (see host.tlb_tagging).
TLB_TAGS = ("pcid", "asid")
# The parts of a traced hop: (Traced's list, id's last part, unit, label).
TRACED_PARTS = (
    ("wake_to_run", "wake_to_run", "us", "wake-up to run"),
    ("switch_path", "switch_path", "us", "switch path, last kernel entry to the partner's return"),
    ("kernel", "in_kernel", "us", "a woken task's turn in the kernel"),
    ("user", "in_user", "us", "a woken task's turn in user space"),
)


def with_counting(
    result: Result, tagging: str, counted: Mapping[str, Counted], uncounted: str | None
) -> Result:
    """A same-core figure with what explains it: the CPU's TLB tagging (/proc/cpuinfo) and
    whether the kernel's counts were taken (``switch_counts``: "tracepoints" or why not)."""
    model = result.id.split(".")[1]
    how = "tracepoints" if model in counted else uncounted or "not asked for"
    return replace(result, extra={**result.extra, "tlb_tagging": tagging, "switch_counts": how})


def trace_results(model: str, pair: Pair, counted: Counted, ours: Gathered) -> list[Result]:
    """The kernel's counts per hop of one model's same-core pair (``trace.<model>.*``): its
    switches, its address-space changes and, of those, the TLB flushes; each sample one
    window, net of the same tasks' background. ``extra`` holds the raw counts, the background
    and the round trip with the counters on beside the timed one (their overhead)."""
    traced = statistics.median(counted.traced_round_us)
    untraced = statistics.median(ours.round_us)
    extra = {
        "cpus": [pair.cpu_a, pair.cpu_b],
        "windows": len(counted.traced_round_us),
        "hops": counted.hops,
        "counted": dict(counted.gross),
        "background": {name: round(value, 1) for name, value in counted.background.items()},
        "roundtrip_us": round(untraced, 4),
        "roundtrip_counted_us": round(traced, 4),
    }
    where = f"{model} switch, same core"
    figures = [(SWITCHED, "sched_switches_per_hop", "kernel switches per hop (sched_switch)")]
    samples = dict(counted.per_hop)
    if KEPT in samples and FLUSHED in samples:
        samples["mm"] = [k + f for k, f in zip(samples[KEPT], samples[FLUSHED], strict=True)]
        extra["tlb_kept_per_hop"] = round(statistics.median(samples[KEPT]), 4)
        figures += [
            ("mm", "mm_switches_per_hop", "address-space changes per hop (tlb_flush, reason 0)"),
            (FLUSHED, "tlb_flushes_per_hop", "TLB flushes on switch per hop (tlb_flush)"),
        ]
    return [
        make_result(
            f"trace.{model}.{name}",
            f"{where}: {label}",
            "number",
            samples[key],
            extra=extra,
            population=True,  # counts, not timings: their spread is not noise to judge
        )
        for key, name, label in figures
    ]


def timing_results(
    prefix: str, harness: bool, pair: Pair, traced: Traced, untimed: Gathered
) -> list[Result]:
    """One pair's traced hop (``<prefix>.wake_to_run``, ``switch_path``, ``in_kernel``,
    ``in_user``, ``kernel_share``), a sample per traced window; ``extra`` the traced round trip
    beside the untraced one of the same run (the tracing's overhead)."""
    if not traced.round_us:
        return []
    traced_us, untraced_us = statistics.median(traced.round_us), statistics.median(untimed.round_us)
    extra = {
        "cpus": [pair.cpu_a, pair.cpu_b],
        "windows": len(traced.round_us),
        "hops": traced.hops,
        "woken_hops": traced.woken,
        "lost_events": traced.lost,
        "roundtrip_us": round(untraced_us, 4),
        "roundtrip_traced_us": round(traced_us, 4),
        "tracing_overhead": round(traced_us / untraced_us, 3) if untraced_us > 0 else None,
    }
    who = "C harness lat_pipe.c" if harness else "ostoolkit"
    model = prefix.rsplit(".", 1)[1]
    label = f"{model} switch, same core, traced ({who}): "
    results = [
        make_result(f"{prefix}.{name}", label + words, unit, getattr(traced, part), extra=extra)
        for part, name, unit, words in TRACED_PARTS
    ]
    share = traced.kernel_share()
    if share:
        results.append(
            make_result(
                f"{prefix}.kernel_share",
                label + "the kernel's share of a woken task's turn",
                "ratio",
                share,
                extra=extra,
            )
        )
    return results


def _beside(mine: Result | None, theirs: Result | None) -> str:
    """2.50 µs (C 2.40)": ostoolkit's median, the C harness's beside where it was traced."""
    said = f"{mine.median:.2f}" if mine else "?"
    return f"{said} µs" + (f" (C {theirs.median:.2f})" if theirs else "")


def timing_findings(by_id: Mapping[str, Result]) -> list[str]:
    """Per model where --trace ran: where a hop's time goes, ostoolkit's pair beside the C
    harness's, so that Python's share is located (kernel or user space), with the tracing's
    overhead beside."""
    findings = []
    for model in MODELS:
        ours = {name: by_id.get(f"trace.{model}.{name}") for _, name, _, _ in TRACED_PARTS}
        if not all(ours.values()):
            continue
        c = {name: by_id.get(f"trace.lat_pipe.{model}.{name}") for _, name, _, _ in TRACED_PARTS}
        extra = next(r for r in ours.values() if r).extra
        parts = {name: _beside(ours[name], c[name]) for name in ours}
        said = (
            f"where a {model} switch's hop goes, traced (ostoolkit, C harness in brackets): "
            f"wake-up to run {parts['wake_to_run']}, switch path {parts['switch_path']}; a "
            f"woken task's turn: {parts['in_kernel']} in the kernel, {parts['in_user']} in user "
            "space"
        )
        kernel, user = ours["in_kernel"], ours["in_user"]
        c_kernel, c_user = c["in_kernel"], c["in_user"]
        if kernel and user and c_kernel and c_user:
            said += (
                f"; Python's extra per turn: {kernel.median - c_kernel.median:+.2f} µs in the "
                f"kernel, {user.median - c_user.median:+.2f} µs in user space"
            )
        said += (
            f"; tracing slowed a round trip from {extra['roundtrip_us']:.2f} to "
            f"{extra['roundtrip_traced_us']:.2f} µs (×{extra['tracing_overhead']:.1f}), so these "
            "parts are inflated alike, and no traced sample is in the timed figures"
        )
        findings.append(said)
    return findings


def why_finding(by_id: Mapping[str, Result], tagging: str) -> str | None:
    """Why a process switch costs what it does beside a thread's: from the kernel's counts
    where they were taken; else, where the two cost about the same, inferred from the CPU's
    TLB tagging flag in /proc/cpuinfo, saying so."""
    counts = kernel_counts(by_id)
    if "process" in counts and "thread" in counts:
        (p_mm, p_flush), (t_mm, t_flush) = counts["process"], counts["thread"]
        cpus = by_id["trace.process.mm_switches_per_hop"].extra.get("cpus", [])
        said = (
            "why, counted by the kernel (tracepoints sched:sched_switch and tlb:tlb_flush on "
            f"CPU {cpus[0] if cpus else '?'}, only the pair's tasks, net of their background): "
            f"per hop a process switch changed address space {p_mm:.2f} times and flushed the "
            f"TLB {p_flush:.2f} times, a thread switch {t_mm:.2f} and {t_flush:.2f}"
        )
        low, high = EVERY_PER_HOP
        if low <= p_mm <= high and p_flush < NONE_PER_HOP:
            tags = f" ({tagging} tags its entries by address space)" if tagging in TLB_TAGS else ""
            return (
                f"{said}: every process switch loads another page-table root but keeps the "
                f"TLB{tags}; threads share one address space and change neither, so what a "
                "process pays extra is the page-table load, not a TLB refill"
            )
        if p_flush >= NONE_PER_HOP:
            return (
                f"{said}: process switches flush the TLB here, a refill after each that "
                "threads, sharing one address space, do not pay"
            )
        return said
    process, thread = by_id.get("switch.process.same_core"), by_id.get("switch.thread.same_core")
    if not (process and thread and thread.median > 0 and tagging in TLB_TAGS):
        return None
    if process.median / thread.median >= 2:
        return None
    return (
        f"why (inferred from the CPU's {tagging} flag in /proc/cpuinfo, not counted by the "
        "kernel): this CPU "
        "tags TLB entries by address space, so switching to another process keeps the TLB "
        "instead of flushing it; what remains extra for a process is mostly loading its "
        "page-table root"
    )
