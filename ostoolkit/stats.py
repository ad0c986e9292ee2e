"""Summaries of timing samples: median, p10, p90, spread, and a verdict on their noise."""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used (see "comparing one figure" below)
    import numpy as np
    from numpy.typing import NDArray

# A figure whose p10-p90 range is wider than this fraction of its median is called noisy:
# on a quiet host, repeated pipe round trips agree within a few percent.
NOISY_SPREAD = 0.25
# Two clusters are called bimodal when the widest gap between neighbouring sorted samples is
# larger than this fraction of the median and each side holds at least BIMODAL_MIN_SHARE of them.
BIMODAL_GAP = 0.20
BIMODAL_MIN_SHARE = 0.2
# Samples needed before the bimodality test means anything.
BIMODAL_MIN_SAMPLES = 6
# Share of the measured CPUs' time that other tasks may take during a measurement before its
# figure is called noisy (measure/interference.py meters it): a tenth of our CPUs.
OTHER_CPU_LIMIT = 0.10
# Share of the measured CPUs' time the hypervisor may steal before timings are not trustworthy.
STEAL_LIMIT = 0.02


@dataclass(frozen=True)
class Summary:
    """Distribution of one figure's samples."""

    median: float
    p10: float
    p90: float
    n: int

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative width of the middle 80 % of samples."""
        return (self.p90 - self.p10) / abs(self.median) if self.median else 0.0


def summarize(samples: Sequence[float]) -> Summary:
    """Return median, p10 and p90 (linear interpolation between order statistics)."""
    if not samples:
        raise ValueError("no samples to summarize")
    if len(samples) == 1:
        return Summary(samples[0], samples[0], samples[0], 1)
    deciles = statistics.quantiles(samples, n=10, method="inclusive")
    return Summary(statistics.median(samples), deciles[0], deciles[8], len(samples))


def is_bimodal(samples: Sequence[float]) -> bool:
    """Tell whether the samples fall into two separated clusters (e.g. two CPU placements)."""
    if len(samples) < BIMODAL_MIN_SAMPLES:
        return False
    ordered = sorted(samples)
    median = statistics.median(ordered)
    if median == 0:
        return False
    min_side = max(1, int(len(ordered) * BIMODAL_MIN_SHARE))
    gaps = [
        (ordered[i + 1] - ordered[i], i + 1) for i in range(min_side - 1, len(ordered) - min_side)
    ]
    if not gaps:
        return False
    widest, _ = max(gaps)
    return widest > BIMODAL_GAP * abs(median)


@dataclass(frozen=True)
class Verdict:
    """How far a figure can be trusted: ``ok``, ``noisy`` or ``bimodal``, with the reasons."""

    status: str
    reasons: tuple[str, ...]


def judge_noise(
    samples: Sequence[float],
    other_cpu_share: float | None = None,
    steal_share: float | None = None,
    *,
    other_margin: float = 0.0,
    steal_margin: float = 0.0,
) -> Verdict:
    """Judge a figure from its samples and the interference metered while they were taken.

    ``bimodal`` when the samples fall into two clusters; else ``noisy`` when their p10-p90
    spread exceeds NOISY_SPREAD of the median, when other tasks took more than
    OTHER_CPU_LIMIT of the measured CPUs' time, or when the hypervisor stole more than
    STEAL_LIMIT of it; else ``ok``. The reasons are given in words (a bimodal figure's
    include the interference too, which may be what split it).

    The shares come from /proc counters, which cannot resolve small amounts in a short
    window: they count in 10 ms units, and the kernel charges CPU time by whole scheduler
    ticks while a task's own time is exact. ``other_margin`` and ``steal_margin`` are the
    shares the meter cannot tell from zero in this window (``measure.interference``); a
    limit is crossed only when a share exceeds the limit plus its margin, so an idle host
    right after heavy work comes out ``ok`` even in a short window. None means not measured:
    the spread alone decides. The load average plays no part: it lags by a minute and counts
    ostoolkit's own earlier work (it stays in the host fingerprint as context).
    """
    interference: list[str] = []
    if other_cpu_share is not None and other_cpu_share > OTHER_CPU_LIMIT + other_margin:
        interference.append(
            f"other tasks took {other_cpu_share:.0%} of the measured CPUs' time "
            f"(more than {OTHER_CPU_LIMIT:.0%})"
        )
    if steal_share is not None and steal_share > STEAL_LIMIT + steal_margin:
        interference.append(f"the hypervisor stole {steal_share:.1%} of the measured CPUs' time")
    if is_bimodal(samples):  # the interference, if any, may be why: say so too
        return Verdict("bimodal", ("samples fall into two separate clusters", *interference))
    summary = summarize(samples)
    spread = [f"p10-p90 spread is {summary.spread:.0%} of the median"]
    reasons = (spread if summary.spread > NOISY_SPREAD else []) + interference
    return Verdict("noisy" if reasons else "ok", tuple(reasons))


# -- comparing one figure's samples between two reports (used by compare) -------------------
# What ``ostoolkit compare`` concludes from two hosts' samples of one figure: the ratio of
# their medians, its 95 % bootstrap interval, a Mann-Whitney U rank test, and a
# practical-equivalence band that turns the interval into a direction (ShiftVerdict).
# compare.py names the direction after the figure's unit (slower, more, higher...).
#
# numpy is a runtime dependency for this part alone, imported inside the functions that use
# it, so that no other command pays for its import (about 0.1 s). Why numpy: the bootstrap
# draws RESAMPLES resampled medians for every figure and host with samples to resample, some
# 2,000 pairs in 50 reports of `report --full` size. Plain Python resampling took 16 ms a
# pair here (over 30 s in all), and even drawing from the median's exact law (MedianIndexLaw)
# 1.2 ms a pair; numpy's vectorised draws do them all in under 0.1 s.

# Bootstrap resamples per figure and host: 2,000 is the usual size for a 95 % percentile
# interval (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 and 19).
RESAMPLES = 2000
CONFIDENCE = 0.95
# Fewer samples than this on a side: the verdict is "unclear" (FEW_SAMPLES). Measured over
# 1,000 pairs of identical distributions (lognormal, skewed, with outliers, exponential), the
# 95 % interval of the ratio left out the true ratio, 1, in 2.6-4.5 % of pairs from 5 samples
# a side up, but in 7.4 % with 4 and 10.4 % with 3: too narrow, as a resampled median of so
# few samples takes only a handful of values.
MIN_SAMPLES = 5
# Samples taken in blocks are resampled block by block (block_bootstrap_medians) when there
# are this many blocks: with 3, the interval spans about the range of the block medians (each
# way of drawing one block three times has 3.7 % chance); beyond 8 the law's table grows past
# 6,435 rows, and sample-by-sample resampling is used.
MIN_BLOCKS = 3
MAX_BLOCKS = 8
# From this many samples on both sides the rank test uses the normal approximation (with the
# tie correction); below, U's exact null distribution.
RANK_TEST_NORMAL_FROM = 8
# A (J, J') pair of the median's index law less likely than this is left out of its table and
# the rest renormalised: it changes no draw's probability by more than ~1e-9, far below the
# resampling's own noise, and keeps the table to a few thousand rows when n is in the thousands.
INDEX_LAW_FLOOR = 1e-13
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


class SampleSet:
    """One host's samples of one figure, sorted once, with the numbers a comparison needs.

    ``key`` (compare uses the figure's id and the host's label) seeds this set's bootstrap:
    the same samples under the same key always give the same resampled medians, whatever
    else is compared, and no global random state is read or changed.
    """

    def __init__(
        self, samples: Sequence[float], key: str, blocks: Sequence[int] | None = None
    ) -> None:
        import numpy as np

        if not samples:
            raise ValueError("no samples to compare")
        values = sorted(samples)  # a list: its quantiles are quicker to read than numpy's
        self.ordered: NDArray[np.float64] = np.array(values, dtype=np.float64)
        self.key = key
        self.n = len(values)
        self.blocks = _split_blocks(samples, blocks)
        self.median = _sorted_quantile(values, 0.5)
        self.p10 = _sorted_quantile(values, 0.1)
        self.p90 = _sorted_quantile(values, 0.9)
        self._medians: dict[bool, NDArray[np.float64] | None] = {False: None, True: None}
        self._tied: bool | None = None

    @property
    def spread(self) -> float | None:
        """(p90 - p10) / |median|, as Summary.spread; None for a median of 0, or overflow."""
        spread = (self.p90 - self.p10) / abs(self.median) if self.median else math.inf
        return spread if math.isfinite(spread) else None

    @property
    def tied(self) -> bool:
        """Whether two samples are equal (the rank test's tie correction is then needed)."""
        if self._tied is None:
            self._tied = bool((self.ordered[1:] == self.ordered[:-1]).any())
        return self._tied

    def bootstrap_medians(self, shuffled: bool = False) -> NDArray[np.float64]:
        """RESAMPLES medians of resamples drawn with replacement, seeded by ``key``.

        In an order fixed by their values, or with ``shuffled`` in the random order of
        independent draws (see bootstrap_medians); either is drawn once (draw_bootstraps
        draws many sets at once).
        """
        medians = self._medians[shuffled]
        if medians is None:
            if self.blocks is not None:
                medians = block_bootstrap_medians(
                    self.blocks, seed_for(self.key), shuffled=shuffled
                )
            else:
                medians = bootstrap_medians(self.ordered, seed_for(self.key), shuffled=shuffled)
            self._medians[shuffled] = medians
        return medians


def _split_blocks(
    samples: Sequence[float], sizes: Sequence[int] | None
) -> list[NDArray[np.float64]] | None:
    """The samples cut into their blocks, in order; None unless the sizes fit the block law.

    Sizes fit when they are positive integers that add up to the samples and there are
    MIN_BLOCKS to MAX_BLOCKS of them; anything else is resampled sample by sample.
    """
    import numpy as np

    if sizes is None or not MIN_BLOCKS <= len(sizes) <= MAX_BLOCKS:
        return None
    if any(isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in sizes):
        return None
    if sum(sizes) != len(samples):
        return None
    bounds = np.cumsum([0, *sizes])
    values = np.array(samples, dtype=np.float64)
    return [values[start:end] for start, end in itertools.pairwise(bounds.tolist())]


def seed_for(key: str) -> int:
    """A 256-bit seed from a text, the same on every run and machine (hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=32).digest(), "big")


def _seed_pcg64(bit_generator: np.random.PCG64, seed: int) -> None:
    """Set a PCG64's whole state from a 256-bit seed: its 128-bit state and odd increment.

    A blake2b digest is already well mixed, so it is used as the state directly (numpy's
    SeedSequence exists to spread small, similar seeds). Setting the state of one generator
    costs a tenth of making one, which matters at thousands of figure-host pairs.
    """
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": seed >> 128, "inc": (seed & (2**128 - 1)) | 1},
        "has_uint32": 0,
        "uinteger": 0,
    }


def _sorted_quantile(ordered: Sequence[float] | NDArray[np.float64], q: float) -> float:
    """The q-quantile of sorted samples, interpolated as summarize() does (numpy's linear)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return float(ordered[low] * (1 - fraction) + ordered[high] * fraction)


@dataclass(frozen=True)
class MedianIndexLaw:
    """Where the median of a bootstrap resample of n sorted samples falls, as a table.

    A resample draws n positions of the sorted samples x(1) <= ... <= x(n) uniformly with
    replacement. Its median is x(J) for odd n, and (x(J) + x(J')) / 2 for even n, where J and
    J' are the positions its k-th and (k+1)-th smallest draws landed on (k = n // 2): the
    resampled median depends on the values only through (J, J'), whose law depends on n
    alone. With M(j) the number of draws at positions <= j, a Binomial(n, j/n):

    * P(J <= j) = P(M(j) >= k'), with k' = k for even n and (n + 1) / 2 for odd n;
    * for even n, J' > J = a exactly when M(a) = k and one of those k draws is at a:
      P(J = a, J' > a) = P(M(a) = k) (1 - ((a - 1) / a)^k), the k draws being uniform on
      1..a; J' = J = a otherwise;
    * and then J' is the lowest of the other n - k draws, uniform on a+1..n:
      P(J' - a > t | J = a, J' > a) = (1 - t / (n - a))^(n - k).

    The rows are the (J, J') pairs (0-based: ``lower``, ``upper``) with their probability;
    drawing rows (how many resamples fall on each: a multinomial draw over the table) is the
    same bootstrap as resampling the values and taking medians, at a cost that does not grow
    with n. Pairs below INDEX_LAW_FLOOR are left out.
    """

    n: int
    probability: NDArray[np.float64]
    lower: NDArray[np.intp]
    upper: NDArray[np.intp]


@functools.lru_cache(maxsize=64)
def median_index_law(n: int) -> MedianIndexLaw:
    """The law of the resampled median's positions for n samples (see MedianIndexLaw)."""
    import numpy as np

    if n < 1:
        raise ValueError("no samples")
    even = n % 2 == 0
    k = n // 2 if even else (n + 1) // 2
    log_factorial = np.array([math.lgamma(i + 1) for i in range(n + 1)])
    positions = np.arange(1, n, dtype=np.float64)  # j = 1..n-1 (all draws lie at or below n)
    log_p, log_q = np.log(positions / n), np.log1p(-positions / n)
    counts = np.arange(k, n + 1)  # M(j) = k'..n: the upper tail
    log_choose = log_factorial[n] - log_factorial[counts] - log_factorial[n - counts]
    # P(J <= j + 1). By Hoeffding's inequality P(M(j) >= k') < exp(-2 (k' - j)^2 / n), and
    # the same for M(j) < k' above k': beyond 5 sqrt(n) of k' the tails are below 1e-21, so
    # only positions within that reach are summed (the sums grow as n^1.5, not n^2).
    reach = math.ceil(5 * math.sqrt(n)) + 1
    at_most = np.where(np.arange(1, n + 1) < k, 0.0, 1.0)
    first, last = max(k - reach, 1), min(k + reach, n - 1)  # 1-based positions summed
    rows_per_block = max(1, 1_000_000 // len(counts))  # bounds the memory of one block
    for start in range(first - 1, last, rows_per_block):
        rows = slice(start, min(start + rows_per_block, last))
        log_pmf = log_choose + counts * log_p[rows, None] + (n - counts) * log_q[rows, None]
        at_most[rows] = np.exp(log_pmf).sum(axis=1)
    at_most = np.minimum(np.maximum.accumulate(at_most), 1.0)
    at = np.diff(at_most, prepend=0.0)  # P(J = j + 1)
    lowers, uppers, probabilities = [], [], []
    moves = np.zeros(n)  # P(J = a, J' > a), a = 1..n
    if even:
        log_pmf_k = log_choose[0] + k * log_p + (n - k) * log_q  # P(M(a) = k)
        first_at_a = 1 - ((positions - 1) / positions) ** k  # one of the k draws is at a
        moves[:-1] = np.minimum(np.exp(log_pmf_k) * first_at_a, at[:-1])
    for a in np.flatnonzero(at >= INDEX_LAW_FLOOR):
        lowers.append(np.array([a]))
        uppers.append(np.array([a]))
        probabilities.append(np.array([max(at[a] - moves[a], 0.0)]))
        if moves[a] < INDEX_LAW_FLOOR:
            continue
        room = n - 1 - a  # positions above a
        steps = np.arange(0, room + 1, dtype=np.float64)
        beyond = (1 - steps / room) ** (n - k)  # P(J' - a > t), t = 0..room
        step_probability = moves[a] * (beyond[:-1] - beyond[1:])  # t = 1..room
        kept = np.flatnonzero(step_probability >= INDEX_LAW_FLOOR)
        lowers.append(np.full(len(kept), a))
        uppers.append(a + 1 + kept)
        probabilities.append(step_probability[kept])
    probability = np.concatenate(probabilities)
    lower = np.concatenate(lowers).astype(np.intp)
    upper = np.concatenate(uppers).astype(np.intp)
    return MedianIndexLaw(n, probability / probability.sum(), lower, upper)


def bootstrap_medians(
    ordered: NDArray[np.float64], seed: int, resamples: int = RESAMPLES, shuffled: bool = False
) -> NDArray[np.float64]:
    """Medians of ``resamples`` bootstrap resamples of sorted samples.

    Drawn from their exact law (MedianIndexLaw) with numpy's PCG64 seeded with ``seed``: how
    many resamples fall on each (J, J') row is one multinomial draw, so the medians come out
    grouped by row, in the table's order rather than the order drawn. ``shuffled`` puts them
    in a random order (from the same generator), which is then the order of independent
    resamples. The same seed and samples give the same medians on any machine, alone or drawn
    with others by draw_bootstraps.
    """
    import numpy as np

    law = median_index_law(len(ordered))
    bit_generator = np.random.PCG64()
    _seed_pcg64(bit_generator, seed)
    generator = np.random.Generator(bit_generator)
    counts = generator.multinomial(resamples, law.probability)
    values = (np.take(ordered, law.lower) + np.take(ordered, law.upper)) / 2
    medians: NDArray[np.float64] = np.repeat(values, counts)
    if shuffled:
        generator.shuffle(medians)
    return medians


@functools.lru_cache(maxsize=MAX_BLOCKS)
def block_counts_law(blocks: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Every way a block resample can pick ``blocks`` of ``blocks`` blocks, with its probability.

    A resample draws that many blocks uniformly with replacement; what its median depends on
    is how often each block was drawn: a row of counts adding up to ``blocks``, with the
    multinomial probability blocks! / (c1! ... cB!) / blocks^blocks. There are
    C(2B - 1, B) rows: 10 for 3 blocks, 126 for 5, 6,435 for MAX_BLOCKS.
    """
    import numpy as np

    rows = []
    for picked in itertools.combinations_with_replacement(range(blocks), blocks):
        rows.append(np.bincount(np.array(picked), minlength=blocks))
    counts = np.array(rows, dtype=np.int64)
    log_ways = math.lgamma(blocks + 1) - np.array(
        [sum(math.lgamma(c + 1) for c in row) for row in counts.tolist()]
    )
    probability = np.exp(log_ways - blocks * math.log(blocks))
    return counts, probability / probability.sum()


def block_row_medians(
    blocks: Sequence[Sequence[NDArray[np.float64]]],
) -> NDArray[np.float64]:
    """The median of every row of block_counts_law, for sets whose blocks have equal sizes.

    Each row's resample is the pooled samples, each weighted by how often its block was
    drawn; its median is read off the sorted samples at the cumulative weights' middle.
    ``blocks`` holds K sets of B blocks, block b of the same size in every set; the result
    is K x rows. One set at a time would cost more in numpy calls than in arithmetic.
    """
    import numpy as np

    sizes = [len(block) for block in blocks[0]]
    counts, _ = block_counts_law(len(sizes))
    values = np.stack([np.concatenate(one) for one in blocks])  # K x n, in block order
    owner = np.repeat(np.arange(len(sizes)), sizes)
    order = np.argsort(values, axis=1, kind="stable")
    weights = counts[:, owner][:, order]  # rows x K x n: each sorted sample's multiplicity
    cumulative = np.cumsum(weights, axis=2)
    total = counts @ np.array(sizes)  # the same in every set
    low = np.argmax(cumulative >= ((total + 1) // 2)[:, None, None], axis=2)  # rows x K
    high = np.argmax(cumulative >= (total // 2 + 1)[:, None, None], axis=2)
    ordered = np.take_along_axis(values, order, axis=1)
    pick_low = np.take_along_axis(ordered, low.T, axis=1)
    pick_high = np.take_along_axis(ordered, high.T, axis=1)
    medians: NDArray[np.float64] = (pick_low + pick_high) / 2
    return medians


def block_bootstrap_medians(
    blocks: Sequence[NDArray[np.float64]],
    seed: int,
    resamples: int = RESAMPLES,
    shuffled: bool = False,
    row_medians: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Medians of ``resamples`` block bootstrap resamples: whole blocks drawn with replacement.

    Samples taken in blocks (a fresh partner task each, at different times of the run) vary
    together within a block, so they are not independent draws: resampling them one by one
    would give an interval as narrow as if they were, whatever the blocks disagree about. A
    block resample keeps each block whole (the cluster bootstrap), so the interval is as wide
    as the blocks' disagreement. Its median depends on how often each block was drawn, so
    the median of every row of block_counts_law is worked out exactly (block_row_medians,
    or given as ``row_medians``), and rows are drawn as in bootstrap_medians (seeded,
    grouped by row unless ``shuffled``).
    """
    import numpy as np

    _, probability = block_counts_law(len(blocks))
    if row_medians is None:
        row_medians = block_row_medians([blocks])[0]
    bit_generator = np.random.PCG64()
    _seed_pcg64(bit_generator, seed)
    generator = np.random.Generator(bit_generator)
    drawn = generator.multinomial(resamples, probability)
    medians: NDArray[np.float64] = np.repeat(row_medians, drawn)
    if shuffled:
        generator.shuffle(medians)
    return medians


def draw_bootstraps(sets: Sequence[SampleSet], resamples: int = RESAMPLES) -> None:
    """Draw the (unshuffled) bootstrap medians of many sets at once, as one by one would.

    Sets of one size share their law's table: one generator is re-seeded for each set's
    multinomial counts, and the medians of all of them are laid out by one repeat. Sets in
    blocks of the same sizes have their rows' medians worked out together. This is what
    keeps 50 reports' comparison within a second.
    """
    import numpy as np

    by_size: dict[int, list[SampleSet]] = {}
    by_blocks: dict[tuple[int, ...], list[SampleSet]] = {}
    for samples in sets:
        if samples._medians[False] is not None:
            continue
        if samples.blocks is None:
            by_size.setdefault(samples.n, []).append(samples)
        else:
            by_blocks.setdefault(tuple(map(len, samples.blocks)), []).append(samples)
    for group in by_blocks.values():
        rows = block_row_medians([samples.blocks for samples in group if samples.blocks])
        for samples, row in zip(group, rows, strict=True):
            assert samples.blocks is not None
            samples._medians[False] = block_bootstrap_medians(
                samples.blocks, seed_for(samples.key), resamples, row_medians=row
            )
    bit_generator = np.random.PCG64()
    generator = np.random.Generator(bit_generator)
    for n, group in by_size.items():
        law = median_index_law(n)
        counts = np.empty((len(group), len(law.probability)), dtype=np.int64)
        for row, samples in enumerate(group):
            _seed_pcg64(bit_generator, seed_for(samples.key))
            counts[row] = generator.multinomial(resamples, law.probability)
        ordered = np.stack([samples.ordered for samples in group])
        values = (ordered[:, law.lower] + ordered[:, law.upper]) / 2
        medians = np.repeat(values.ravel(), counts.ravel()).reshape(len(group), resamples)
        for row, samples in enumerate(group):
            samples._medians[False] = medians[row]


def ratio_draws(base: SampleSet, others: Sequence[SampleSet]) -> list[NDArray[np.float64] | None]:
    """RESAMPLES bootstrap draws of each other's median / base's median.

    Each set's medians are resampled independently (each seeded by its own key) and paired
    one to one: other's in the table's fixed order with base's in random order, which pairs
    them as independent draws do (one side of a pairing in random order is enough), and
    shuffles the baseline's once for all the hosts compared with it. None for a host when a
    resampled baseline median is 0 or below, or one of its own below 0 (the ratio is then
    unbounded or meaningless), or when a ratio overflows.
    """
    import numpy as np

    if not others:
        return []
    denominators = base.bootstrap_medians(shuffled=True)
    if denominators.min() <= 0:
        return [None] * len(others)
    draw_bootstraps(others)
    with np.errstate(over="ignore"):  # an overflowing ratio (a row of inf) is refused below
        ratios = np.stack([other.bootstrap_medians() for other in others]) / denominators
    valid = (ratios.min(axis=1) >= 0) & np.isfinite(ratios.max(axis=1))
    return [row if ok else None for row, ok in zip(ratios, valid.tolist(), strict=True)]


def percentile_interval(
    draws: NDArray[np.float64], confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The percentile interval of bootstrap draws: their (1 - confidence) / 2 tails cut off."""
    import numpy as np

    count = len(draws)
    tail = (1 - confidence) / 2
    low_rank = max(math.ceil(count * tail) - 1, 0)
    high_rank = min(math.ceil(count * (1 - tail)) - 1, count - 1)
    ranked = np.partition(draws, (low_rank, high_rank))
    return float(ranked[low_rank]), float(ranked[high_rank])


def ratio_intervals(
    base: SampleSet, others: Sequence[SampleSet], confidence: float = CONFIDENCE
) -> list[tuple[float, float] | None]:
    """The percentile bootstrap interval of each other's median / base's (see ratio_draws)."""
    return [
        None if draws is None else percentile_interval(draws, confidence)
        for draws in ratio_draws(base, others)
    ]


def ratio_interval(
    base: SampleSet, other: SampleSet, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The percentile bootstrap interval of other's median / base's (see ratio_intervals)."""
    return ratio_intervals(base, [other], confidence)[0]


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
            _seed_pcg64(bit_generator, seed_for(f"{other.key}\0pairing"))
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
    q1, q3 = _sorted_quantile(pooled, 0.25), _sorted_quantile(pooled, 0.75)
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
