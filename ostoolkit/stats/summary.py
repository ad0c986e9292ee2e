"""Summaries of timing samples: median, p10, p90, spread, and a verdict on their noise.

Also the plain descriptive helpers other measurements need (a percentile, a least-squares
slope); nothing here imports numpy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def finite(value: Any) -> float | None:
    """A finite number as float, or None (for null, a bool, text, NaN...): a JSON value read."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def significant(value: float | None, digits: int = 5) -> float | None:
    """A ratio to ``digits`` significant digits: more would be noise, and JSON stays readable."""
    return None if value is None else float(f"{value:.{digits}g}")


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1..99) by linear interpolation, as summarize() interpolates."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def slope(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of y over x (measure.memory: the marginal cost of one more worker)."""
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        raise ValueError("need at least two different worker counts")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def is_bimodal(samples: Sequence[float]) -> bool:
    """Tell whether the samples fall into two separated clusters (e.g. two CPU placements)."""
    if len(samples) < BIMODAL_MIN_SAMPLES:
        return False
    ordered = sorted(samples)
    median = statistics.median(ordered)
    if median == 0:
        return False
    min_side = max(1, int(len(ordered) * BIMODAL_MIN_SHARE))
    gaps = [ordered[i + 1] - ordered[i] for i in range(min_side - 1, len(ordered) - min_side)]
    return max(gaps, default=0.0) > BIMODAL_GAP * abs(median)


@dataclass(frozen=True)
class Verdict:
    """How far a figure can be trusted: ``ok``, ``noisy``, ``bimodal`` or ``throttled``, and why."""

    status: str
    reasons: tuple[str, ...]


def judge_noise(
    samples: Sequence[float],
    other_cpu_share: float | None = None,
    steal_share: float | None = None,
    *,
    other_margin: float = 0.0,
    steal_margin: float = 0.0,
    throttled: str | None = None,
) -> Verdict:
    """Judge a figure from its samples and the interference metered while they were taken:
    ``throttled`` outranks all, then ``bimodal``, then ``noisy`` (the spread, or a share over its
    limit plus the meter's margin), else ``ok``; docs/method.md, "Trusting a figure"."""
    interference: list[str] = []
    if other_cpu_share is not None and other_cpu_share > OTHER_CPU_LIMIT + other_margin:
        interference.append(
            f"other tasks took {other_cpu_share:.0%} of the measured CPUs' time "
            f"(more than {OTHER_CPU_LIMIT:.0%})"
        )
    if steal_share is not None and steal_share > STEAL_LIMIT + steal_margin:
        interference.append(f"the hypervisor stole {steal_share:.1%} of the measured CPUs' time")
    if throttled:
        return Verdict("throttled", (throttled, *interference))
    if is_bimodal(samples):  # the interference, if any, may be why: say so too
        return Verdict("bimodal", ("samples fall into two separate clusters", *interference))
    summary = summarize(samples)
    spread = [f"p10-p90 spread is {summary.spread:.0%} of the median"]
    reasons = (spread if summary.spread > NOISY_SPREAD else []) + interference
    return Verdict("noisy" if reasons else "ok", tuple(reasons))
