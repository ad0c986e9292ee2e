"""The statistics layer: every summary, verdict and resampling ostoolkit reports rests on.

``summary``: one figure's median, p10, p90 and spread, its noise verdict, and plain helpers
(a percentile, a least-squares slope). ``bootstrap``: one host's samples of a figure and the
bootstrap of their median (exact laws, block resampling, seeded draws, intervals). ``shift``:
how a figure moved between two reports (compare's verdicts, rank test, host moves, strips).
Only the comparing part needs numpy, and imports it inside its functions, so importing this
package costs no other command numpy's import.
"""

from ostoolkit.stats.bootstrap import (
    CONFIDENCE,
    RESAMPLES,
    SampleSet,
    block_bootstrap_medians,
    block_counts_law,
    bootstrap_medians,
    draw_bootstraps,
    median_index_law,
    seed_for,
)
from ostoolkit.stats.shift import (
    BOTH_ZERO,
    FEW_SAMPLES,
    HOST_MOVED,
    INSIDE_BAND,
    MIN_SAMPLES,
    NEAR_BAND,
    NOT_POSITIVE,
    ONE_SAMPLE,
    OUT_OF_RANGE,
    OUTSIDE_BAND,
    WIDE_INTERVAL,
    HostMove,
    ShiftVerdict,
    host_move,
    host_moves,
    judge_shift,
    judge_shifts,
    rank_test,
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
    "BOTH_ZERO",
    "CONFIDENCE",
    "FEW_SAMPLES",
    "HOST_MOVED",
    "INSIDE_BAND",
    "MIN_SAMPLES",
    "NEAR_BAND",
    "NOT_POSITIVE",
    "ONE_SAMPLE",
    "OTHER_CPU_LIMIT",
    "OUTSIDE_BAND",
    "OUT_OF_RANGE",
    "RESAMPLES",
    "STEAL_LIMIT",
    "WIDE_INTERVAL",
    "HostMove",
    "SampleSet",
    "ShiftVerdict",
    "Summary",
    "Verdict",
    "block_bootstrap_medians",
    "block_counts_law",
    "bootstrap_medians",
    "draw_bootstraps",
    "host_move",
    "host_moves",
    "is_bimodal",
    "judge_noise",
    "judge_shift",
    "judge_shifts",
    "median_index_law",
    "percentile",
    "rank_test",
    "seed_for",
    "slope",
    "strip_counts",
    "strip_range",
    "summarize",
]
