"""The hierarchical bootstrap of a figure's median: runs first, then samples within each run.

One run's samples share its state of the host, so they are not independent draws (evidence:
docs/comparing.md). Draws are bounded, and seeded by a text so that the same samples always
give the same draws. numpy is imported inside the functions that use it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used (see above)
    import numpy as np
    from numpy.typing import NDArray

# Bootstrap resamples per figure and host: 1,000 is enough for a 95 % percentile interval
# (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 19).
RESAMPLES = 1000
CONFIDENCE = 0.95
# A resample's draws are bounded whatever the figure holds, which can only widen the interval
# (docs/comparing.md, "The rule": cost): a run of more samples is drawn through this many of
# its quantiles, and a figure of more runs as this many blocks of adjacent runs.
MAX_DRAWS_PER_RUN = 32
MAX_RUNS_DRAWN = 128


class SampleSet:
    """One host's samples (at least one) of one figure in runs (sizes that do not add up make
    one run), with the numbers a comparison needs; ``key`` seeds the bootstrap of ``blocks``."""

    def __init__(self, samples: Sequence[float], key: str, runs: Sequence[int] = ()) -> None:
        import numpy as np

        values = np.array(samples, dtype=np.float64)
        self.ordered: NDArray[np.float64] = np.sort(values)
        self.key = key
        self.n = len(values)
        fits = all(type(size) is int and size > 0 for size in runs) and sum(runs) == self.n
        sizes = runs if runs and fits else [self.n]
        self.run_count = len(sizes)  # how many runs the samples came from
        # each run's samples, or MAX_RUNS_DRAWN blocks of adjacent runs when there are more
        # (their sizes in runs differ by one at most)
        count = min(len(sizes), MAX_RUNS_DRAWN)
        edges = np.cumsum([0, *sizes])[np.arange(count + 1) * len(sizes) // count].tolist()
        self.blocks = [values[start:end] for start, end in itertools.pairwise(edges)]
        self.median = sorted_quantile(self.ordered, 0.5)
        self.p10 = sorted_quantile(self.ordered, 0.1)
        self.p90 = sorted_quantile(self.ordered, 0.9)
        self._medians: NDArray[np.float64] | None = None

    @property
    def spread(self) -> float | None:
        """(p90 - p10) / |median|, as Summary.spread; None for a median of 0, or overflow."""
        spread = (self.p90 - self.p10) / abs(self.median) if self.median else math.inf
        return spread if math.isfinite(spread) else None

    def bootstrap_medians(self) -> NDArray[np.float64]:
        """RESAMPLES medians of hierarchical resamples (runs, then samples), in random order."""
        if self._medians is None:
            self._medians = hierarchical_medians(self.blocks, seed_for(self.key))
        return self._medians


def hierarchical_medians(
    runs: Sequence[NDArray[np.float64]], seed: int, resamples: int = RESAMPLES
) -> NDArray[np.float64]:
    """Medians of ``resamples`` two-stage resamples of the runs: ranks counted per resample,
    the median read off the running counts, so no resample is sorted (docs/comparing.md)."""
    import numpy as np

    positions = (np.arange(MAX_DRAWS_PER_RUN) + 0.5) / MAX_DRAWS_PER_RUN  # of a longer run
    ordered_runs = [np.sort(run) for run in runs]
    kept = [np.quantile(r, positions) if len(r) > MAX_DRAWS_PER_RUN else r for r in ordered_runs]
    sizes = np.array([len(run) for run in kept])
    width, total = int(sizes.max()), int(sizes.sum())
    ordered = np.concatenate(kept)
    order = np.argsort(ordered, kind="stable")
    ranks = np.empty(total, dtype=np.intp)
    ranks[order] = np.arange(total)
    table = np.zeros((len(kept), width), dtype=np.intp)  # each run's samples as ranks
    for row, (start, size) in enumerate(zip(np.cumsum(sizes) - sizes, sizes, strict=True)):
        table[row, :size] = ranks[start : start + size]
    generator = np.random.Generator(np.random.PCG64(seed))
    shape = (resamples, len(kept), width)
    picked = generator.integers(0, len(kept), size=shape[:2], dtype=np.int32)
    equal = int(sizes.min()) == width
    if equal:  # every run of one size: bounded integers at once
        within = generator.integers(0, width, size=shape, dtype=np.int32)
    else:  # float32 below 1 times a size of at most MAX_DRAWS_PER_RUN stays below the size
        scale = sizes[picked].astype(np.float32)[..., None]
        within = (generator.random(shape, dtype=np.float32) * scale).astype(np.int32)
    # intp indices: np.take with int32 ones is about ten times slower (numpy 2.x)
    drawn = np.take(table.ravel(), ((picked * width)[..., None] + within).astype(np.intp))  # ranks
    flat = drawn + (np.arange(resamples, dtype=np.intp) * total)[:, None, None]
    if not equal:  # draws past a picked run's size count nowhere
        flat = flat[np.arange(width) < sizes[picked][..., None]]
    counts = np.bincount(flat.ravel(), minlength=resamples * total).reshape(resamples, total)
    running = np.cumsum(counts, axis=1)
    drawn_count = running[:, -1]
    low = np.argmax(running >= ((drawn_count + 1) // 2)[:, None], axis=1)
    high = np.argmax(running >= (drawn_count // 2 + 1)[:, None], axis=1)
    values = ordered[order]
    medians: NDArray[np.float64] = (values[low] + values[high]) / 2
    return medians


def ratio_draws(base: SampleSet, other: SampleSet) -> NDArray[np.float64] | None:
    """RESAMPLES bootstrap draws of other's median / base's median, paired in random order;
    None when the ratio is unbounded or meaningless (a resampled baseline median at 0 or below,
    one of other's below 0) or overflows."""
    import numpy as np

    denominators = base.bootstrap_medians()
    if denominators.min() <= 0:
        return None
    with np.errstate(over="ignore"):  # an overflowing ratio is refused below
        ratios: NDArray[np.float64] = other.bootstrap_medians() / denominators
    if ratios.min() < 0 or not np.isfinite(ratios.max()):
        return None
    return ratios


def percentile_interval(draws: NDArray[np.float64]) -> tuple[float, float]:
    """The percentile interval of bootstrap draws: their (1 - CONFIDENCE) / 2 tails cut off."""
    import numpy as np

    count = len(draws)
    tail = (1 - CONFIDENCE) / 2
    low_rank = max(math.ceil(count * tail) - 1, 0)
    high_rank = min(math.ceil(count * (1 - tail)) - 1, count - 1)
    ranked = np.partition(draws, (low_rank, high_rank))
    return float(ranked[low_rank]), float(ranked[high_rank])


def bootstrap_p_value(draws: NDArray[np.float64]) -> float:
    """The two-sided bootstrap p-value of "the ratio is 1": twice the smaller tail beyond 1, of
    the same hierarchical draws as the interval; never below one draw's share."""
    below = float((draws <= 1).mean())
    above = float((draws >= 1).mean())
    return max(min(1.0, 2 * min(below, above)), 1 / len(draws))


def median_interval(
    samples: Sequence[float], key: str, runs: Sequence[int] = ()
) -> tuple[float, float]:
    """The CONFIDENCE percentile interval of the samples' median, from the hierarchical
    bootstrap (runs, then samples; seeded by ``key``)."""
    return percentile_interval(SampleSet(samples, key, runs).bootstrap_medians())


def seed_for(key: str) -> int:
    """A 128-bit seed from a text, the same on every run and machine (hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest(), "big")


def sorted_quantile(ordered: Sequence[float] | NDArray[np.float64], q: float) -> float:
    """The q-quantile of sorted samples, interpolated as summarize() does (numpy's linear)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return float(ordered[low] * (1 - fraction) + ordered[high] * fraction)
