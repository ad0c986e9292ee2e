"""The one block sampler behind every ping-pong, ring and Python-layer figure.

A figure's samples come in blocks, each with a fresh partner; the first block calibrates the
rounds per sample, every block warms up, and every sample times one task's baseline just
before the rounds (docs/method.md, "How it measures").
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TypeVar

from ostoolkit.measure.netcost import NetCost, net_per_hop, positive_blocks
from ostoolkit.report import Progress

MIN_ROUNDS, MAX_ROUNDS = 100, 1_000_000
Key = TypeVar("Key", bound=Hashable)
Config = TypeVar("Config", bound="Sampling")


@dataclass(frozen=True)
class Timing:
    """What one block times: ``rounds(n)``, and ``baseline(n)`` (n hops' worth of the same work
    by one task alone), in elapsed ns; ``reference``: the host's speed reference (None: the
    baseline is it); ``where``, for an unpinned pair: the CPUs the two tasks last ran on;
    ``tasks``: the timed tasks' ids, for counters filtered to them (measure/trace.py)."""

    rounds: Callable[[int], int]
    baseline: Callable[[int], int]
    switches: Callable[[], tuple[int, int]]
    hops_per_round: int = 2
    reference: Callable[[int], int] | None = None
    where: Callable[[], tuple[int, int]] | None = None
    tasks: tuple[int, ...] = ()


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

    def rounds_of(self, rounds: Callable[[int], int]) -> int:
        """``fixed``, else timed: ``probe`` rounds twice, the first to wake every partner up."""
        if self.fixed is not None:
            return self.fixed
        rounds(self.probe)
        return self.rounds_for(rounds(self.probe))


@dataclass(frozen=True)
class Sampling:
    """How a command samples each figure: ``repeat`` samples in up to ``blocks`` blocks, each
    sample ``iterations`` rounds or timed to last about ``target_sample_s``."""

    repeat: int = 30
    blocks: int = 5
    iterations: int | None = None
    target_sample_s: float = 0.05

    @classmethod
    def full(cls: type[Config]) -> Config:
        """The careful settings (the defaults): samples of about 50 ms, 30 per figure."""
        return cls()

    @classmethod
    def quick(cls: type[Config]) -> Config:
        """Settings that finish in a second or two, for CI logs and the report's quick run."""
        return cls(repeat=15, target_sample_s=0.02)

    @property
    def calibration(self) -> Calibration:
        """The rounds per sample these settings ask for."""
        return Calibration(self.target_sample_s, self.iterations)


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

    def net(self) -> NetCost:
        """A ping-pong's net µs per hop, every block whose net cost went negative left out."""
        return positive_blocks(net_per_hop(self.round_us, self.baseline_us), self.block_sizes)

    def hop_extra(self) -> dict[str, float]:
        """A ping-pong's gross (half the median round trip) and baseline µs, for a result."""
        return {
            "gross_us": round(statistics.median(self.round_us) / 2, 4),
            "baseline_us": round(statistics.median(self.baseline_us), 4),
        }

    def counts_extra(self) -> dict[str, float]:
        """The kernel's switches per hop, all, voluntary and involuntary, for a result."""
        voluntary, involuntary = self.per_hop()
        return {
            "switches_per_hop": round(voluntary + involuntary, 3),
            "voluntary_per_hop": round(voluntary, 3),
            "involuntary_per_hop": round(involuntary, 3),
        }


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
    """Calibrate (first block only), warm up, then take ``count`` samples into ``gathered``;
    ``progress`` gets one step after the first block's warm-up and one per sample."""
    first = gathered.rounds is None
    if gathered.rounds is None:
        gathered.rounds = calibration.rounds_of(timing.rounds)
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


def take_rounds(
    figures: Mapping[Key, Callable[[], AbstractContextManager[Timing]]],
    sampling: Sampling,
    progress: Progress | None = None,
) -> dict[Key, Gathered]:
    """Every figure's samples in rounds of blocks, each in a fresh context of its figure, so that
    its samples span the whole run: a shared host changes speed for seconds at a time, and one
    stretch of samples would show one state of it, tightly."""
    gathered = {key: Gathered() for key in figures}
    for count in block_sizes(sampling.repeat, sampling.blocks):
        for key, fresh in figures.items():
            with fresh() as timing:
                take_block(timing, sampling.calibration, count, gathered[key], progress)
    return gathered
