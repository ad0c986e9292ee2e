"""The one block sampler behind every ping-pong, ring and Python-layer figure.

A figure's samples come in blocks, each with a fresh partner. The first block calibrates the
rounds per sample, every block warms up, and every sample times one task's own baseline (no
switch) just before the rounds, with the kernel's switch counts of every task involved read
around them (docs/method.md, "How it measures").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ostoolkit.report import Progress

MIN_ROUNDS, MAX_ROUNDS = 100, 1_000_000


@dataclass(frozen=True)
class Timing:
    """What one block times; ``rounds`` and ``baseline`` take n and return elapsed ns.

    ``baseline(n)`` is n hops' worth of the same work by one task alone. ``reference`` is the
    host's speed reference (None: the baseline is it); ``where``, for an unpinned pair, the
    CPUs the two tasks last ran on.
    """

    rounds: Callable[[int], int]
    baseline: Callable[[int], int]
    switches: Callable[[], tuple[int, int]]
    hops_per_round: int = 2
    reference: Callable[[int], int] | None = None
    where: Callable[[], tuple[int, int]] | None = None


@dataclass(frozen=True)
class Calibration:
    """Rounds per sample: ``fixed`` when given, else timed so a sample lasts ``target_s``."""

    target_s: float
    fixed: int | None = None
    probe: int = 200
    bounds: tuple[int, int] = (MIN_ROUNDS, MAX_ROUNDS)

    def rounds_for(self, elapsed_ns: int) -> int:
        """Rounds per sample, from ``probe`` rounds having taken ``elapsed_ns``, within bounds."""
        per_round_s = max(elapsed_ns, 1) / 1e9 / self.probe
        low, high = self.bounds
        return max(low, min(high, int(self.target_s / per_round_s)))


@dataclass
class Gathered:
    """One figure's samples so far, block by block: µs per round and per baseline hop."""

    rounds: int | None = None
    round_us: list[float] = field(default_factory=list)
    baseline_us: list[float] = field(default_factory=list)
    reference_us: list[float] = field(default_factory=list)
    switches_per_hop: list[float] = field(default_factory=list)
    voluntary: int = 0
    involuntary: int = 0
    hops: int = 0
    block_sizes: list[int] = field(default_factory=list)
    cpus_seen: set[tuple[int, int]] = field(default_factory=set)

    def per_hop(self) -> tuple[float, float]:
        """Voluntary and involuntary switches per hop over every sample (0 if none)."""
        hops = max(self.hops, 1)
        return self.voluntary / hops, self.involuntary / hops


def block_sizes(repeat: int, blocks: int) -> list[int]:
    """Split ``repeat`` samples into at most ``blocks`` blocks as even as can be, larger first."""
    count = max(1, min(blocks, repeat))
    size, extra = divmod(repeat, count)
    return [size + (index < extra) for index in range(count)]


def take_block(
    timing: Timing,
    calibration: Calibration,
    count: int,
    gathered: Gathered,
    progress: Progress | None = None,
) -> None:
    """Calibrate (first block only), warm up, then take ``count`` samples into ``gathered``.

    ``progress`` gets one step after the first block's warm-up and one per sample.
    """
    first = gathered.rounds is None
    if gathered.rounds is None:
        gathered.rounds = calibration.fixed
    if gathered.rounds is None:
        timing.rounds(calibration.probe)  # the first rounds wake every partner up
        gathered.rounds = calibration.rounds_for(timing.rounds(calibration.probe))
    n = gathered.rounds
    hops = n * timing.hops_per_round
    gathered.block_sizes.append(count)
    timing.baseline(n)  # warm-up: caches, branch predictors, CPU frequency
    timing.rounds(n)
    if progress and first:
        progress(1)
    for _ in range(count):
        baseline = timing.baseline(n) / 1e3 / n
        gathered.baseline_us.append(baseline)
        gathered.reference_us.append(
            baseline if timing.reference is None else timing.reference(n) / 1e3 / n
        )
        before = timing.switches()
        gathered.round_us.append(timing.rounds(n) / 1e3 / n)
        after = timing.switches()
        if timing.where is not None:
            gathered.cpus_seen.add(timing.where())
        voluntary, involuntary = after[0] - before[0], after[1] - before[1]
        gathered.voluntary += voluntary
        gathered.involuntary += involuntary
        gathered.hops += hops
        gathered.switches_per_hop.append((voluntary + involuntary) / hops)
        if progress:
            progress(1)
