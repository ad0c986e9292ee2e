"""How one figure moved between two reports: compare's verdicts, the host's move, strips.

``judge_shift`` is the whole rule of docs/comparing.md, in order: exact values, resolution,
too few samples or one run, the bootstrap interval against the band, then the host's move.
The p-value goes beside and never decides. numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ostoolkit.stats.bootstrap import (
    SampleSet,
    bootstrap_p_value,
    percentile_interval,
    ratio_draws,
    sorted_quantile,
)

if TYPE_CHECKING:  # numpy is imported where it is used
    import numpy as np
    from numpy.typing import NDArray

# Fewer samples than this on a side: the verdict is "unclear" (FEW_SAMPLES): a resampled
# median of so few samples takes only a handful of values, and its interval is too narrow.
MIN_SAMPLES = 5
# Fewer runs than this on a side: "unclear" (ONE_RUN). One run's samples share that run's
# state of the host; only a second run shows how far that state varies.
MIN_RUNS = 2
# The bins of a figure's strip (compare's sparkline of each host's samples).
STRIP_BINS = 8
# Tukey's fences: a strip's shared range runs from the lowest to the highest sample but stops
# this many interquartile ranges beyond the pooled quartiles, so one far outlier does not
# squeeze every other sample into one bin (samples beyond a fence count in the end bin).
STRIP_FENCE = 1.5

# Why a comparison came out as it did: a fixed vocabulary without numbers (the figures that
# go with a reason, such as the sample and run counts, are fields of their own).
EXACT = "exact"  # both sides are exact: judged on the values
BELOW_RESOLUTION = "below resolution"  # a median below what the method resolves: unclear
ONE_RUN = "one run"  # a side has a single run: the variation between runs is unknown
FEW_SAMPLES = "few samples"  # fewer than MIN_SAMPLES on a side: unclear
OUTSIDE_BAND = "interval outside the band"  # up or down
INSIDE_BAND = "interval inside the band"  # same
WIDE_INTERVAL = "wide interval"  # straddles the band and is wider than it: spread decides
NEAR_BAND = "interval at the band's edge"  # straddles an edge but is narrower than the band
HOST_MOVED = "host moved as far"  # beyond the band, but the host's speed reference moved as far
BOTH_ZERO = "both zero"  # both medians are 0: same
NOT_POSITIVE = "not positive"  # a median (or a resampled one) is 0 or below: no ratio
OUT_OF_RANGE = "ratio out of range"  # the ratio (or its interval) overflows a double


@dataclass(frozen=True)
class Figure:
    """One host's figure as compare judges it: its samples in runs, exactness, resolution."""

    samples: SampleSet
    exact: bool = False
    resolution: float | None = None

    @property
    def below_resolution(self) -> bool:
        """Whether the median is below what the method can resolve (a negative one too)."""
        return self.resolution is not None and self.samples.median < self.resolution


@dataclass(frozen=True)
class ShiftVerdict:
    """How one figure moved from the baseline's samples to another host's: ``up``, ``down``,
    ``same`` or ``unclear``, and why; the ratio of the medians (other / baseline), with its
    bootstrap interval and p-value (None without an interval)."""

    direction: str
    reason: str
    ratio: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class HostMove:
    """How far the host's speed reference moved between two runs, as a figure would show it:
    the ratio of the medians (inverted for a rate), its bootstrap interval (both ``ratio`` with
    too few samples) and its draws (else None)."""

    ratio: float
    low: float
    high: float
    draws: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)


def host_move(
    base: SampleSet, other: SampleSet, exponent: int = 1, interval: bool = True
) -> HostMove | None:
    """The host's move from the baseline's reference samples to another run's (``exponent``: 1
    for a time, -1 for a rate); an interval only when asked and both sides have MIN_SAMPLES
    samples; None when a sample is not positive."""
    if base.ordered[0] <= 0 or other.ordered[0] <= 0:
        return None
    ratio = (other.median / base.median) ** exponent
    enough = interval and min(base.n, other.n) >= MIN_SAMPLES
    draws = ratio_draws(base, other) if enough else None
    if draws is not None and draws.min() > 0:
        draws = draws**exponent
        low, high = percentile_interval(draws)
    else:
        draws, low, high = None, ratio, ratio
    if not all(math.isfinite(value) and value > 0 for value in (ratio, low, high)):
        return None
    return HostMove(ratio, low, high, draws)


def judge_shift(
    base: Figure, other: Figure, band: float, host: HostMove | None = None
) -> ShiftVerdict:
    """Decide whether ``other`` moved from ``base`` beyond ±``band`` (see the module docstring)."""
    a, b = base.samples, other.samples
    if a.median == 0 and b.median == 0:
        return ShiftVerdict("same", BOTH_ZERO, None)
    if base.exact and other.exact:
        return _exact(a.median, b.median, band)
    if base.below_resolution or other.below_resolution:
        return ShiftVerdict("unclear", BELOW_RESOLUTION, None)
    if a.median <= 0 or b.median < 0:
        return ShiftVerdict("unclear", NOT_POSITIVE, None)
    ratio = b.median / a.median
    if not math.isfinite(ratio):
        return ShiftVerdict("unclear", OUT_OF_RANGE, None)
    if min(a.n, b.n) < MIN_SAMPLES:
        return ShiftVerdict("unclear", FEW_SAMPLES, ratio)
    draws = ratio_draws(a, b)
    if draws is None:  # a resampled median at 0, or overflow
        reason = OUT_OF_RANGE if a.ordered[0] > 0 and b.ordered[0] >= 0 else NOT_POSITIVE
        return ShiftVerdict("unclear", reason, ratio)
    low, high = percentile_interval(draws)
    p_value = bootstrap_p_value(draws)
    if min(a.run_count, b.run_count) < MIN_RUNS:
        return ShiftVerdict("unclear", ONE_RUN, ratio, low, high, p_value)
    direction, reason = _direction(low, high, band)
    if host is not None and direction in ("up", "down"):  # did it move further than the host?
        if host.draws is not None and len(draws) == len(host.draws):  # figure / host, paired
            beyond = percentile_interval(draws / host.draws)
        else:  # over the far ends of the host's interval
            beyond = low / host.high, high / host.low
        if not (beyond[0] > 1 + band if direction == "up" else beyond[1] < 1 - band):
            direction, reason = "unclear", HOST_MOVED  # the host's move explains it as well
    return ShiftVerdict(direction, reason, ratio, low, high, p_value)


def _exact(base: float, other: float, band: float) -> ShiftVerdict:
    """Two exact values: equal, within the band, or beyond it (no interval: nothing varies)."""
    if base <= 0 or other < 0:
        direction = "same" if base == other else "up" if other > base else "down"
        return ShiftVerdict(direction, EXACT, None)
    ratio = other / base
    direction = "up" if ratio > 1 + band else "down" if ratio < 1 - band else "same"
    return ShiftVerdict(direction, EXACT, ratio, ratio, ratio)


def _direction(low: float, high: float, band: float) -> tuple[str, str]:
    """The direction an interval of the ratio gives against the band, and why."""
    low_edge, high_edge = 1 - band, 1 + band
    if low > high_edge:
        return "up", OUTSIDE_BAND
    if high < low_edge:
        return "down", OUTSIDE_BAND
    if low >= low_edge and high <= high_edge:
        return "same", INSIDE_BAND
    if high * low_edge > high_edge * low:  # wider than the band (its low edge may be 0)
        return "unclear", WIDE_INTERVAL
    return "unclear", NEAR_BAND


def strip_range(sets: Sequence[SampleSet]) -> tuple[float, float] | None:
    """The range every host's strip of one figure shares: lowest to highest sample, stopped at
    Tukey's fences of the pooled samples; None when every sample is equal (no shape to draw)."""
    import numpy as np

    pooled = np.sort(np.concatenate([s.ordered for s in sets]))
    q1, q3 = sorted_quantile(pooled, 0.25), sorted_quantile(pooled, 0.75)
    fence = STRIP_FENCE * (q3 - q1)
    low, high = max(float(pooled[0]), q1 - fence), min(float(pooled[-1]), q3 + fence)
    return (low, high) if high > low else None


def strip_counts(sets: Sequence[SampleSet], low: float, high: float) -> list[list[int]]:
    """For each set, how many of its samples fall in each of STRIP_BINS equal bins over [low,
    high]: a bin holds its lower edge (the last both), samples past a fence the end bin's."""
    import numpy as np

    pooled = np.concatenate([s.ordered for s in sets])
    owner = np.repeat(np.arange(len(sets)), [s.n for s in sets])
    with np.errstate(over="ignore", invalid="ignore"):  # a range beyond a double: clipped
        scaled = np.floor((pooled - low) / (high - low) * STRIP_BINS)
    bins = np.clip(np.nan_to_num(scaled), 0, STRIP_BINS - 1).astype(np.intp)
    counts = np.bincount(owner * STRIP_BINS + bins, minlength=len(sets) * STRIP_BINS)
    return [[int(count) for count in row] for row in counts.reshape(len(sets), STRIP_BINS)]
