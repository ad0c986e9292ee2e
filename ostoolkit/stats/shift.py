"""How one figure moved between two reports: compare's verdicts, rank test, host moves, strips.

What ``ostoolkit compare`` concludes from two hosts' samples of one figure: the ratio of
their medians, its 95 % bootstrap interval, a Mann-Whitney U rank test, and a
practical-equivalence band that turns the interval into a direction (ShiftVerdict).
compare.py names the direction after the figure's unit (slower, more, higher...).

numpy is imported inside the functions that use it (see stats.bootstrap for why).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ostoolkit.stats.bootstrap import (
    SampleSet,
    percentile_interval,
    ratio_draws,
    seed_for,
    seed_pcg64,
    sorted_quantile,
)

if TYPE_CHECKING:  # numpy is imported where it is used
    import numpy as np
    from numpy.typing import NDArray

# Fewer samples than this on a side: the verdict is "unclear" (FEW_SAMPLES). Measured over
# 1,000 pairs of identical distributions (lognormal, skewed, with outliers, exponential), the
# 95 % interval of the ratio left out the true ratio, 1, in 2.6-4.5 % of pairs from 5 samples
# a side up, but in 7.4 % with 4 and 10.4 % with 3: too narrow, as a resampled median of so
# few samples takes only a handful of values.
MIN_SAMPLES = 5
# From this many samples on both sides the rank test uses the normal approximation (with the
# tie correction); below, U's exact null distribution.
RANK_TEST_NORMAL_FROM = 8
# The bins of a figure's strip (compare's sparkline of each host's samples).
STRIP_BINS = 8
# Tukey's fences: a strip's shared range runs from the lowest to the highest sample but stops
# this many interquartile ranges beyond the pooled quartiles, so one far outlier does not
# squeeze every other sample into one bin (samples beyond a fence count in the end bin).
STRIP_FENCE = 1.5

# Why a comparison came out as it did: a fixed vocabulary without numbers (the figures that
# go with a reason, such as the sample counts, are fields of their own).
ONE_SAMPLE = "one sample"  # a side has one value: judged by the ratio and the band alone
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
class ShiftVerdict:
    """How one figure moved from the baseline's samples to another host's.

    ``direction`` is ``up``, ``down``, ``same`` or ``unclear``; ``reason`` one of the reason
    constants above. ``ratio`` is other / baseline of the medians, ``ci_low``/``ci_high`` its
    bootstrap interval (None with one or few samples, or no ratio), ``p_value`` the two-sided
    Mann-Whitney U test's (None when a side has one sample).
    """

    direction: str
    reason: str
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def rank_tests(base: SampleSet, others: Sequence[SampleSet]) -> list[float | None]:
    """Two-sided p-values of the Mann-Whitney U test of each other's samples against base's.

    With RANK_TEST_NORMAL_FROM samples or more on both sides: the normal approximation, with
    the tie correction and a continuity correction of 1/2. Below: U's exact null distribution
    (every split of the ranks equally likely), which assumes no ties; with ties U is counted
    from mid-ranks and the p-value is conservative, as ties narrow the true null distribution.
    None when a side has a single sample: there is nothing to rank. Hosts with the same
    number of samples are ranked together.
    """
    import numpy as np

    p_values: list[float | None] = [None] * len(others)
    by_size: dict[int, list[int]] = {}
    for index, other in enumerate(others):
        if min(base.n, other.n) >= 2:
            by_size.setdefault(other.n, []).append(index)
    for n, indices in by_size.items():
        ordered = np.stack([others[index].ordered for index in indices])
        below = np.searchsorted(base.ordered, ordered, side="left")
        at_or_below = np.searchsorted(base.ordered, ordered, side="right")
        # U: the pairs in which the other's sample is above the baseline's, ties counted half
        u_values = ((below.sum(axis=1) + at_or_below.sum(axis=1)) / 2).tolist()
        ties = [0.0] * len(indices)
        normal = min(base.n, n) >= RANK_TEST_NORMAL_FROM  # only it corrects for ties
        if normal and (base.tied or (at_or_below != below).any() or (np.diff(ordered) == 0).any()):
            ties = _tie_terms(base.ordered, ordered)
        for index, u, tie in zip(indices, u_values, ties, strict=True):
            p_values[index] = _rank_p_value(base.n, n, u, tie)
    return p_values


def rank_test(base: SampleSet, other: SampleSet) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test of two sets (see rank_tests)."""
    return rank_tests(base, [other])[0]


def _tie_terms(base: NDArray[np.float64], others: NDArray[np.float64]) -> list[float]:
    """For each row of ``others`` pooled with ``base``: the sum of t^3 - t over its ties.

    A group of t equal values adds t^3 - t = sum over j = 1..t of 3j^2 - 3j, so each pooled
    value adds 3c^2 - 3c, c being its place within its group: all rows at once, no loop.
    """
    import numpy as np

    rows, width = others.shape[0], len(base) + others.shape[1]
    pooled = np.sort(np.concatenate((np.broadcast_to(base, (rows, len(base))), others), axis=1))
    places = np.arange(width)
    starts = np.where(np.diff(pooled, axis=1, prepend=-np.inf) != 0, places, 0)
    within = (places - np.maximum.accumulate(starts, axis=1) + 1).astype(np.float64)
    return [float(term) for term in (3 * within**2 - 3 * within).sum(axis=1)]


def _rank_p_value(m: int, n: int, u: float, ties: float) -> float:
    """The two-sided p-value of U for samples of m and n (see rank_tests)."""
    distance = abs(u - m * n / 2)
    if min(m, n) < RANK_TEST_NORMAL_FROM:
        cumulative = _u_null_cumulative(min(m, n), max(m, n))
        index = math.floor(m * n / 2 - distance + 1e-9)
        return min(1.0, 2 * cumulative[index]) if index >= 0 else 0.0
    total = m + n
    variance = m * n / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:  # every sample equal
        return 1.0
    z = max(distance - 0.5, 0.0) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))


@functools.lru_cache(maxsize=256)
def _u_null_cumulative(m: int, n: int) -> tuple[float, ...]:
    """P(U <= u), u = 0..m*n, for m and n samples without ties and no shift.

    The number of rank splits giving U = u is the coefficient of q^u in the Gaussian binomial
    [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), built one factor at a time
    in exact integers (each partial product is [n + i choose i]_q, a polynomial).
    """
    coefficients = [1]
    for i in range(1, m + 1):
        size = i * n + 1
        grown = coefficients + [0] * (size + i - len(coefficients))
        for power in range(len(grown) - 1, n + i - 1, -1):  # times (1 - q^(n+i))
            grown[power] -= grown[power - n - i]
        for power in range(i, len(grown)):  # divided by (1 - q^i)
            grown[power] += grown[power - i]
        coefficients = grown[:size]
    total = math.comb(m + n, m)
    running, cumulative = 0, []
    for count in coefficients:
        running += count
        cumulative.append(running / total)
    return tuple(cumulative)


@dataclass(frozen=True)
class HostMove:
    """How far the host's speed reference moved between two runs, as a figure would show it.

    ``ratio`` is the ratio of the references' medians (inverted for a rate); ``low`` and
    ``high`` its bootstrap interval, or both ``ratio`` when a side has too few samples;
    ``draws`` then its bootstrap draws, in random order, else None.
    """

    ratio: float
    low: float
    high: float
    draws: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)


def host_move(
    base: Sequence[float],
    other: Sequence[float],
    key: str,
    exponent: int = 1,
    blocks: tuple[Sequence[int] | None, Sequence[int] | None] = (None, None),
) -> HostMove | None:
    """The host's move from the baseline's reference samples to another run's, or None.

    ``exponent`` is 1 for a time (it takes as much longer as the reference does) and -1 for
    a rate; ``blocks`` the block sizes of each side's samples, if they were taken in blocks.
    None when a side has no samples or one is not positive. (host_moves does many at once.)
    """
    if not base or not other:
        return None
    base_set = SampleSet(base, f"{key}\0base", blocks[0])
    other_set = SampleSet(other, f"{key}\0other", blocks[1])
    return host_moves(base_set, [other_set], exponent, [True])[0]


def host_moves(
    base: SampleSet,
    others: Sequence[SampleSet | None],
    exponent: int = 1,
    intervals: Sequence[bool] = (),
) -> list[HostMove | None]:
    """How far the host's speed reference moved from ``base``'s samples to each of ``others``.

    The ratio of medians, raised to ``exponent`` (1 for a time, -1 for a rate), with its
    bootstrap interval and draws where ``intervals`` asks for them (all, when empty) and both
    sides have MIN_SAMPLES samples; else the ratio alone. None for a missing set, or a sample
    that is not positive. The draws are put in a random order of their own (seeded by the
    other set's key), so they pair with a figure's draws as independent ones do.
    """
    import numpy as np

    wanted = list(intervals) or [True] * len(others)
    moves: list[HostMove | None] = [None] * len(others)
    if base.ordered[0] <= 0:
        return moves
    usable = {
        i: other for i, other in enumerate(others) if other is not None and other.ordered[0] > 0
    }
    with_draws = [
        i for i, other in usable.items() if wanted[i] and min(base.n, other.n) >= MIN_SAMPLES
    ]
    found = ratio_draws(base, [usable[i] for i in with_draws])
    draws_of = dict(zip(with_draws, found, strict=True))
    bit_generator = np.random.PCG64()
    generator = np.random.Generator(bit_generator)
    for i, other in usable.items():
        ratio = (other.median / base.median) ** exponent
        draws = draws_of.get(i)
        if draws is not None and draws.min() > 0:
            seed_pcg64(bit_generator, seed_for(f"{other.key}\0pairing"))
            draws = generator.permutation(draws) ** exponent
            low, high = percentile_interval(draws)
        else:
            draws = None
            low = high = ratio
        if all(math.isfinite(v) and v > 0 for v in (ratio, low, high)):
            moves[i] = HostMove(ratio, low, high, draws)
    return moves


def judge_shifts(
    base: SampleSet,
    others: Sequence[SampleSet],
    band: float,
    host_moves: Sequence[HostMove | None] | None = None,
) -> list[ShiftVerdict]:
    """Decide whether each of ``others`` moved from ``base`` beyond ±``band`` (a fraction).

    ``up``/``down``: the whole interval of the ratio lies above 1 + band / below 1 - band;
    ``same``: it lies inside; ``unclear``: it straddles an edge, or a side has fewer than
    MIN_SAMPLES samples. A side with one sample is judged by the ratio alone (ONE_SAMPLE).
    The rank test's p-value goes beside and never decides: a significant 1.00x is no change
    worth a word, which is what the band is for. The hosts' rank tests and bootstraps are
    computed together; the verdicts are those of judge_shift one by one.

    ``host_moves`` (one per other, or None) is how far the host's speed reference moved
    between the two runs (measure.reference), as this figure would show it, with its
    interval. A figure is ``up`` only when its interval's low end lies beyond the band above
    the host's interval too (``down`` alike below): otherwise the host may explain as much as
    the figure does, and it is ``unclear`` (HOST_MOVED). ``same`` is still the whole interval
    inside the band around 1: the figure did not move, whatever the host did.
    """
    p_values = rank_tests(base, others)
    with_interval = [
        index
        for index, other in enumerate(others)
        if base.median > 0 and other.median >= 0 and min(base.n, other.n) >= MIN_SAMPLES
    ]
    found = ratio_draws(base, [others[index] for index in with_interval])
    draws = dict(zip(with_interval, found, strict=True))
    hosts = list(host_moves) if host_moves is not None else [None] * len(others)
    verdicts = []
    for index, (other, host) in enumerate(zip(others, hosts, strict=True)):
        own = draws.get(index)
        interval = None if own is None else percentile_interval(own)
        shift = _decide(base, other, band, p_values[index], interval)
        verdicts.append(_host_moved(shift, band, _beyond_host(shift, own, host)))
    return verdicts


def judge_shift(
    base: SampleSet, other: SampleSet, band: float, host: HostMove | None = None
) -> ShiftVerdict:
    """Decide whether ``other`` moved from ``base`` beyond ±``band`` (see judge_shifts)."""
    return judge_shifts(base, [other], band, [host])[0]


def _beyond_host(
    shift: ShiftVerdict, draws: NDArray[np.float64] | None, host: HostMove | None
) -> tuple[float, float] | None:
    """How much further than the host the figure moved: an interval of figure / host, or None.

    From both sets of bootstrap draws paired one to one (each in random order) when both
    have them; else the figure's interval (or its ratio) over the host's interval's far end.
    """
    if host is None or shift.ratio is None:
        return None
    if draws is not None and host.draws is not None and len(draws) == len(host.draws):
        return percentile_interval(draws / host.draws)
    low = shift.ratio if shift.ci_low is None else shift.ci_low
    high = shift.ratio if shift.ci_high is None else shift.ci_high
    return low / host.high, high / host.low


def _host_moved(
    shift: ShiftVerdict, band: float, beyond: tuple[float, float] | None
) -> ShiftVerdict:
    """An up/down verdict that the host's own move may explain as well becomes unclear.

    ``beyond`` is the interval of how much further than the host the figure moved
    (_beyond_host): up needs all of it above 1 + band, down all of it below 1 - band.
    """
    if beyond is None or shift.direction not in ("up", "down"):
        return shift
    low, high = beyond
    if shift.direction == "up" and low > 1 + band:
        return shift
    if shift.direction == "down" and high < 1 - band:
        return shift
    return replace(shift, direction="unclear", reason=HOST_MOVED)


def _decide(
    base: SampleSet,
    other: SampleSet,
    band: float,
    p_value: float | None,
    interval: tuple[float, float] | None,
) -> ShiftVerdict:
    """One verdict from the medians, the rank test's p-value and the ratio's interval."""
    low_edge, high_edge = 1 - band, 1 + band
    if base.median == 0 and other.median == 0:
        return ShiftVerdict("same", BOTH_ZERO, None, None, None, p_value)
    if base.median <= 0 or other.median < 0:
        return ShiftVerdict("unclear", NOT_POSITIVE, None, None, None, p_value)
    ratio = other.median / base.median
    if not math.isfinite(ratio):
        return ShiftVerdict("unclear", OUT_OF_RANGE, None, None, None, p_value)
    if min(base.n, other.n) == 1:
        direction = "up" if ratio > high_edge else "down" if ratio < low_edge else "same"
        return ShiftVerdict(direction, ONE_SAMPLE, ratio, None, None, None)
    if min(base.n, other.n) < MIN_SAMPLES:
        return ShiftVerdict("unclear", FEW_SAMPLES, ratio, None, None, p_value)
    if interval is None:  # a resampled median at 0 (none is below the least sample), or overflow
        positive = base.ordered[0] > 0 and other.ordered[0] >= 0
        reason = OUT_OF_RANGE if positive else NOT_POSITIVE
        return ShiftVerdict("unclear", reason, ratio, None, None, p_value)
    low, high = interval
    if low > high_edge:
        direction, reason = "up", OUTSIDE_BAND
    elif high < low_edge:
        direction, reason = "down", OUTSIDE_BAND
    elif low >= low_edge and high <= high_edge:
        direction, reason = "same", INSIDE_BAND
    elif high * low_edge > high_edge * low:  # wider than the band (its low edge may be 0)
        direction, reason = "unclear", WIDE_INTERVAL
    else:
        direction, reason = "unclear", NEAR_BAND
    return ShiftVerdict(direction, reason, ratio, low, high, p_value)


def strip_range(sets: Sequence[SampleSet]) -> tuple[float, float] | None:
    """The range that every host's strip of one figure shares: lowest to highest, fenced.

    Its ends stop at Tukey's fences of the pooled samples (STRIP_FENCE interquartile ranges
    beyond the quartiles). None when every sample is equal: there is no shape to draw.
    """
    import numpy as np

    pooled = np.sort(np.concatenate([s.ordered for s in sets]))
    q1, q3 = sorted_quantile(pooled, 0.25), sorted_quantile(pooled, 0.75)
    fence = STRIP_FENCE * (q3 - q1)
    low, high = max(float(pooled[0]), q1 - fence), min(float(pooled[-1]), q3 + fence)
    return (low, high) if high > low else None


def strip_counts(sets: Sequence[SampleSet], low: float, high: float) -> list[list[int]]:
    """For each set, how many of its samples fall in each of STRIP_BINS bins over [low, high].

    The bins are equal; a bin holds its lower edge, not its upper one (the last holds both);
    samples beyond the range, past a fence, count in the end bin on their side. All sets are
    binned in one pass.
    """
    import numpy as np

    if not sets:
        return []
    pooled = np.concatenate([s.ordered for s in sets])
    owner = np.repeat(np.arange(len(sets)), [s.n for s in sets])
    with np.errstate(over="ignore", invalid="ignore"):  # a range beyond a double: clipped
        scaled = np.floor((pooled - low) / (high - low) * STRIP_BINS)
    bins = np.clip(np.nan_to_num(scaled), 0, STRIP_BINS - 1).astype(np.intp)
    counts = np.bincount(owner * STRIP_BINS + bins, minlength=len(sets) * STRIP_BINS)
    return [[int(count) for count in row] for row in counts.reshape(len(sets), STRIP_BINS)]
