"""A fleet's spread of one figure and the hosts that lie far out of it.

With tens of hosts no one reads a column each: what a reader wants per figure is how far the
hosts' medians spread and which hosts lie far from the rest, beyond what their own run-to-run
variation explains. The fences are Tukey's outer fences (3 interquartile ranges past the
quartiles) of the hosts' log medians, widened to the band of no practical difference; a host
is far out only when its median's whole interval lies beyond a fence (method and A/A, A/B
evidence: docs/comparing.md, "Fleets").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ostoolkit.stats.bootstrap import SampleSet, percentile_interval, sorted_quantile
from ostoolkit.stats.shift import ONE_RUN

# Tukey's "far out": 3 interquartile ranges past a quartile (Tukey, "Exploratory Data
# Analysis", 1977); a normal fleet puts 2 hosts in a million there.
OUTER_FENCE = 3.0
# Fewer hosts give quartiles too coarse to fence: their spread is given, no host is far out.
MIN_FENCED = 5

ABOVE = "above"
BELOW = "below"


@dataclass(frozen=True)
class FleetHost:
    """One host's figure: its samples in runs (with the seed key), or an exact value."""

    samples: SampleSet
    exact: bool


@dataclass(frozen=True)
class FarOut:
    """A host beyond a fence: its median and interval as ratios to the fleet's median.

    ``judged`` is False for a host of one run, whose interval shows no run-to-run variation:
    it is named, with the reason, but not called far out.
    """

    index: int
    ratio: float
    low: float
    high: float
    side: str  # ABOVE or BELOW
    judged: bool
    reason: str | None


@dataclass(frozen=True)
class FleetSpread:
    """How one figure spreads over the hosts that have it; fences as ratios to the median."""

    hosts: int
    median: float  # the median of the hosts' medians
    p10: float
    p90: float
    lowest: float
    highest: float
    fence_low: float | None  # None: too few hosts, or a median at 0 or below
    fence_high: float | None
    far_out: list[FarOut]


def fleet_spread(hosts: Sequence[tuple[int, FleetHost]], band: float) -> FleetSpread | None:
    """The spread of one figure over ``hosts`` (index, figure) and the hosts far out of it.

    ``band`` is compare's threshold: a fence is never nearer 1 than 1 ± band, so a fleet of
    near-identical hosts does not call a few percent far out. None without a host.
    """
    if not hosts:
        return None
    medians = sorted(host.samples.median for _, host in hosts)
    centre = sorted_quantile(medians, 0.5)
    spread = FleetSpread(
        hosts=len(hosts),
        median=centre,
        p10=sorted_quantile(medians, 0.1),
        p90=sorted_quantile(medians, 0.9),
        lowest=medians[0],
        highest=medians[-1],
        fence_low=None,
        fence_high=None,
        far_out=[],
    )
    if len(hosts) < MIN_FENCED or medians[0] <= 0:
        return spread
    logs = [math.log(value / centre) for value in medians]
    q1, q3 = sorted_quantile(logs, 0.25), sorted_quantile(logs, 0.75)
    reach = OUTER_FENCE * (q3 - q1)
    low_fence = min(math.exp(q1 - reach), 1 - band)
    high_fence = max(math.exp(q3 + reach), 1 + band)
    far = [
        out
        for index, host in hosts
        if (out := _beyond(index, host, centre, low_fence, high_fence)) is not None
    ]
    far.sort(key=lambda out: -abs(math.log(out.ratio)))  # the farthest first
    return replace(spread, fence_low=low_fence, fence_high=high_fence, far_out=far)


def _beyond(
    index: int, host: FleetHost, centre: float, low_fence: float, high_fence: float
) -> FarOut | None:
    """The host as FarOut when its median lies beyond a fence, else None; judged when its
    whole interval does (an exact figure: its value), not judged on one run."""
    samples = host.samples
    ratio = samples.median / centre
    if low_fence <= ratio <= high_fence:
        return None
    if host.exact:
        low = high = ratio
    else:
        low, high = (end / centre for end in percentile_interval(samples.bootstrap_medians()))
    side = ABOVE if ratio > high_fence else BELOW
    beyond = low > high_fence if side == ABOVE else high < low_fence
    one_run = not host.exact and samples.run_count < 2
    if not beyond and not one_run:
        return None  # its own variation reaches inside the fences
    reason = ONE_RUN if one_run else None
    return FarOut(index, ratio, low, high, side, beyond and not one_run, reason)
