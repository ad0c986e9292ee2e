"""The bootstrap of a figure's median: one host's samples (SampleSet), its resampled medians.

Used by compare (stats.shift): the resampled medians are drawn from their exact law, sample
by sample (MedianIndexLaw) or block by block (block_counts_law), seeded by a text so the
same samples always give the same draws; their ratios give the percentile intervals.

numpy is a runtime dependency for this part alone, imported inside the functions that use
it, so that no other command pays for its import (about 0.1 s). Why numpy: the bootstrap
draws RESAMPLES resampled medians for every figure and host with samples to resample, some
2,000 pairs in 50 reports of `report --full` size. Plain Python resampling took 16 ms a
pair here (over 30 s in all), and even drawing from the median's exact law (MedianIndexLaw)
1.2 ms a pair; numpy's vectorised draws do them all in under 0.1 s.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used (see above)
    import numpy as np
    from numpy.typing import NDArray

# Bootstrap resamples per figure and host: 2,000 is the usual size for a 95 % percentile
# interval (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 and 19).
RESAMPLES = 2000
CONFIDENCE = 0.95
# Samples taken in blocks are resampled block by block (block_bootstrap_medians) when there
# are this many blocks: with 3, the interval spans about the range of the block medians (each
# way of drawing one block three times has 3.7 % chance); beyond 8 the law's table grows past
# 6,435 rows, and sample-by-sample resampling is used.
MIN_BLOCKS = 3
MAX_BLOCKS = 8
# A (J, J') pair of the median's index law less likely than this is left out of its table and
# the rest renormalised: it changes no draw's probability by more than ~1e-9, far below the
# resampling's own noise, and keeps the table to a few thousand rows when n is in the thousands.
INDEX_LAW_FLOOR = 1e-13


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
        self.median = sorted_quantile(values, 0.5)
        self.p10 = sorted_quantile(values, 0.1)
        self.p90 = sorted_quantile(values, 0.9)
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


def seed_pcg64(bit_generator: np.random.PCG64, seed: int) -> None:
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


def sorted_quantile(ordered: Sequence[float] | NDArray[np.float64], q: float) -> float:
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
    seed_pcg64(bit_generator, seed)
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
    seed_pcg64(bit_generator, seed)
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
            seed_pcg64(bit_generator, seed_for(samples.key))
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
