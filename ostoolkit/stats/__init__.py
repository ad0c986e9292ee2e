"""The statistics layer: every summary, verdict and resampling ostoolkit reports rests on.

``summary``: a figure's median, percentiles, spread and noise verdict, and plain helpers;
``bootstrap``: the hierarchical bootstrap of a median; ``shift``: how a figure moved between
two reports. Only the comparing part needs numpy, and imports it inside its functions.
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
    EXACT,
    FEW_SAMPLES,
    HOST_MOVED,
    MIN_SAMPLES,
    ONE_RUN,
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
    Verdict,
    finite,
    is_bimodal,
    judge_noise,
    percentile,
    slope,
    summarize,
)

__all__ = [
    "BELOW_RESOLUTION",
    "CONFIDENCE",
    "EXACT",
    "FEW_SAMPLES",
    "HOST_MOVED",
    "MIN_SAMPLES",
    "ONE_RUN",
    "OTHER_CPU_LIMIT",
    "OUTSIDE_BAND",
    "RESAMPLES",
    "STEAL_LIMIT",
    "WIDE_INTERVAL",
    "Figure",
    "HostMove",
    "SampleSet",
    "ShiftVerdict",
    "Verdict",
    "finite",
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
