"""The statistics layer: every summary, verdict and resampling ostoolkit reports rests on.

``summary``: one figure's median, p10, p90 and spread, its noise verdict, and plain helpers
(a percentile, a least-squares slope). ``bootstrap``: one host's samples of a figure and the
hierarchical bootstrap of their median (runs, then samples within them; seeded draws,
intervals). ``shift``: how a figure moved between two reports (compare's verdicts, the
host's move, strips).
Only the comparing part needs numpy, and imports it inside its functions, so importing this
package costs no other command numpy's import.
"""

from ostoolkit.stats.bootstrap import (
    CONFIDENCE,
    RESAMPLES,
    SampleSet,
    hierarchical_medians,
    seed_for,
)
from ostoolkit.stats.shift import (
    BELOW_RESOLUTION,
    BOTH_ZERO,
    EXACT,
    FEW_SAMPLES,
    HOST_MOVED,
    INSIDE_BAND,
    MIN_RUNS,
    MIN_SAMPLES,
    NEAR_BAND,
    NOT_POSITIVE,
    ONE_RUN,
    OUT_OF_RANGE,
    OUTSIDE_BAND,
    WIDE_INTERVAL,
    Figure,
    HostMove,
    ShiftVerdict,
    host_move,
    judge_shift,
    strip_counts,
    strip_range,
)
from ostoolkit.stats.summary import (
    OTHER_CPU_LIMIT,
    STEAL_LIMIT,
    Summary,
    Verdict,
    is_bimodal,
    judge_noise,
    percentile,
    slope,
    summarize,
)

__all__ = [
    "BELOW_RESOLUTION",
    "BOTH_ZERO",
    "CONFIDENCE",
    "EXACT",
    "FEW_SAMPLES",
    "HOST_MOVED",
    "INSIDE_BAND",
    "MIN_RUNS",
    "MIN_SAMPLES",
    "NEAR_BAND",
    "NOT_POSITIVE",
    "ONE_RUN",
    "OTHER_CPU_LIMIT",
    "OUTSIDE_BAND",
    "OUT_OF_RANGE",
    "RESAMPLES",
    "STEAL_LIMIT",
    "WIDE_INTERVAL",
    "Figure",
    "HostMove",
    "SampleSet",
    "ShiftVerdict",
    "Summary",
    "Verdict",
    "hierarchical_medians",
    "host_move",
    "is_bimodal",
    "judge_noise",
    "judge_shift",
    "percentile",
    "seed_for",
    "slope",
    "strip_counts",
    "strip_range",
    "summarize",
]
