"""The article's claims, in one table, and the verdict in words for a measured value.

Source: Ben Dicken, "Processes and Threads", PlanetScale, 2025-09-24.
"""

from __future__ import annotations

from dataclasses import dataclass

# Within this factor of the article's figure a measurement is said to agree with it: the
# article gives round numbers ("~5 µs"), not a range.
AGREE_FACTOR = 1.25


@dataclass(frozen=True)
class Claim:
    """One figure the article states, with its words."""

    key: str
    value: float
    unit: str
    text: str
    quote: str


CLAIMS: dict[str, Claim] = {
    claim.key: claim
    for claim in (
        Claim(
            "context_switch",
            5.0,
            "us",
            "~5 µs",
            "The full time of a context switch takes ~5 microseconds on modern CPUs",
        ),
        Claim(
            "thread_switch",
            1.0,
            "us",
            "~1 µs",
            "switching between threads is ~5x faster than between processes (~1 µs)",
        ),
        Claim(
            "timeslice",
            1.0,
            "ms",
            "milliseconds",
            "the OS multiplexes the CPU across processes by time slicing, typically "
            "milliseconds per slice",
        ),
        Claim(
            "processes_heavy",
            1.0,
            "ratio",
            "processes are heavy",
            "Processes are heavy: there is memory overhead and a time overhead for managing them",
        ),
        Claim(
            "thread_speedup",
            5.0,
            "ratio",
            "~5×",
            "thread switches are about five times faster than process switches",
        ),
    )
}

# "Milliseconds" read as one to a hundred: below is sub-millisecond, above a tenth of a second.
TIMESLICE_RANGE_MS = (1.0, 100.0)

# Which result ids the article speaks about. Cross-core figures are wake-up latencies across
# CPUs, not the switch the article describes, so they carry no claim.
CLAIM_FOR_RESULT: dict[str, str] = {
    "switch.process.same_core": "context_switch",
    "switch.thread.same_core": "thread_switch",
}


def judge_time(measured: float, claim: Claim) -> str:
    """Say in words how a measured duration compares with the article's figure."""
    if measured <= 0:
        return "not measurable here: the harness's own cost was as large as the switch"
    factor = claim.value / measured
    if 1 / AGREE_FACTOR <= factor <= AGREE_FACTOR:
        return f"agrees with the article's {claim.text} (×{measured / claim.value:.2f})"
    if factor > 1:
        return f"{factor:.1f}× faster than the article's {claim.text}"
    return f"{1 / factor:.1f}× slower than the article's {claim.text}"


def judge_speedup(process_us: float, thread_us: float) -> str:
    """Say how much faster threads switch than processes here, beside the article's ~5×."""
    claim = CLAIMS["thread_speedup"]
    if process_us <= 0 or thread_us <= 0:
        return (
            "threads vs processes: not measurable here (a net figure was ≤ 0); "
            f"the article says threads are {claim.text} faster"
        )
    ratio = process_us / thread_us
    if abs(ratio - 1) < 0.1:
        return (
            f"threads and processes switch at about the same cost here (×{ratio:.2f}); "
            f"the article says threads are {claim.text} faster"
        )
    if ratio > 1:
        return f"threads switch {ratio:.1f}× faster here; the article says {claim.text}"
    return (
        f"threads switch {1 / ratio:.1f}× slower than processes here; "
        f"the article says {claim.text} faster"
    )


def judge_timeslice(median_ms: float) -> str:
    """Say in words how the median slice compares with the article's "milliseconds"."""
    low, high = TIMESLICE_RANGE_MS
    if median_ms < low:
        return f"{median_ms:.2f} ms: shorter than a millisecond here"
    if median_ms > high:
        return f"{median_ms:.0f} ms: longer than the article's milliseconds (over {high:.0f} ms)"
    return f"{median_ms:.1f} ms: {CLAIMS['timeslice'].text}, as the article says"


def judge_heavier(process_bytes: float, thread_bytes: float) -> str:
    """Say how many threads' worth of memory one process costs here."""
    if thread_bytes <= 0:
        return "not comparable here: a thread's marginal cost measured ≤ 0"
    ratio = process_bytes / thread_bytes
    if ratio >= 1.25:
        return f"a process costs {ratio:,.1f}× a thread here: heavier, as the article says"
    if ratio > 1 / 1.25:
        return f"a process costs about a thread's memory here (×{ratio:.2f}); the article: heavier"
    return f"a process costs {1 / ratio:.1f}× less than a thread here; the article says heavier"
