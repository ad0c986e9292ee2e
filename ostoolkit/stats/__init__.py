"""The statistics layer: every summary, verdict and resampling ostoolkit reports rests on.

``summary``: a figure's median, percentiles, spread and noise verdict, and plain helpers;
``bootstrap``: the hierarchical bootstrap of a median; ``shift``: how a figure moved between
two reports; ``fleet``: how it spreads over many hosts. Only the comparing part needs numpy,
and imports it inside its functions. Here: what the other layers use, each re-exported by
name (``X as X``).
"""

from ostoolkit.stats.bootstrap import CONFIDENCE as CONFIDENCE
from ostoolkit.stats.bootstrap import RESAMPLES as RESAMPLES
from ostoolkit.stats.bootstrap import SampleSet as SampleSet
from ostoolkit.stats.bootstrap import median_interval as median_interval
from ostoolkit.stats.shift import EXACT as EXACT
from ostoolkit.stats.shift import HOST_MOVED as HOST_MOVED
from ostoolkit.stats.shift import ONE_RUN as ONE_RUN
from ostoolkit.stats.shift import Figure as Figure
from ostoolkit.stats.shift import HostMove as HostMove
from ostoolkit.stats.shift import ShiftVerdict as ShiftVerdict
from ostoolkit.stats.shift import host_move as host_move
from ostoolkit.stats.shift import judge_shift as judge_shift
from ostoolkit.stats.shift import strip_counts as strip_counts
from ostoolkit.stats.shift import strip_range as strip_range
from ostoolkit.stats.summary import OTHER_CPU_LIMIT as OTHER_CPU_LIMIT
from ostoolkit.stats.summary import STEAL_LIMIT as STEAL_LIMIT
from ostoolkit.stats.summary import finite as finite
from ostoolkit.stats.summary import judge_noise as judge_noise
from ostoolkit.stats.summary import percentile as percentile
from ostoolkit.stats.summary import significant as significant
from ostoolkit.stats.summary import slope as slope
from ostoolkit.stats.summary import summarize as summarize
