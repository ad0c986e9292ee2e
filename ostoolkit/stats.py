"""Summaries of timing samples: median, p10, p90, spread, and a verdict on their noise."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# A figure whose p10-p90 range is wider than this fraction of its median is called noisy:
# on a quiet host, repeated pipe round trips agree within a few percent.
NOISY_SPREAD = 0.25
# Two clusters are called bimodal when the widest gap between neighbouring sorted samples is
# larger than this fraction of the median and each side holds at least BIMODAL_MIN_SHARE of them.
BIMODAL_GAP = 0.20
BIMODAL_MIN_SHARE = 0.2
# Samples needed before the bimodality test means anything.
BIMODAL_MIN_SAMPLES = 6
# Load average per usable CPU above which other work is likely to share our CPUs.
BUSY_LOAD_PER_CPU = 0.7
# Share of CPU time stolen by the hypervisor above which timings are not trustworthy.
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
    samples: Sequence[float], load_per_cpu: float | None = None, steal_share: float | None = None
) -> Verdict:
    """Judge a figure from its spread, the load average and the steal time during its run."""
    reasons: list[str] = []
    summary = summarize(samples)
    if is_bimodal(samples):
        return Verdict("bimodal", ("samples fall into two separate clusters",))
    if summary.spread > NOISY_SPREAD:
        reasons.append(f"p10-p90 spread is {summary.spread:.0%} of the median")
    if load_per_cpu is not None and load_per_cpu > BUSY_LOAD_PER_CPU:
        reasons.append(f"load average {load_per_cpu:.2f} per CPU")
    if steal_share is not None and steal_share > STEAL_LIMIT:
        reasons.append(f"hypervisor stole {steal_share:.1%} of CPU time")
    return Verdict("noisy" if reasons else "ok", tuple(reasons))
