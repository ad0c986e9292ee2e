"""lmbench's net cost of a hop, and the blocks whose net cost is not a cost.

net = (round trip - 2 x baseline) / 2. A round trip shorter than twice its baseline (a quota or
the host stopped one and not the other) is the harness's error, and condemns its whole block,
which shares one partner task and one stretch of the host's time (docs/results.md, "A CPU
quota, and net costs that are not costs").
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def net_per_hop(round_trip_us: Sequence[float], baseline_us: Sequence[float]) -> list[float]:
    """lmbench's net cost per hop, sample by sample: (round trip - 2 x baseline) / 2."""
    return [(rt - 2 * base) / 2 for rt, base in zip(round_trip_us, baseline_us, strict=True)]


@dataclass(frozen=True)
class NetCost:
    """The net samples worth reporting, their blocks' sizes, and why any block was left out."""

    samples: list[float]
    runs: list[int]
    notes: list[str]

    def dropped(self, label: str) -> str:
        """The warning for the figure ``label`` when no block is left: why it is not reported."""
        return f"{label}: not reported; {self.notes[0]}"


def positive_blocks(net_us: Sequence[float], runs: Sequence[int] | None) -> NetCost:
    """Leave out every block (run) with a negative net sample and say which; ``runs``: the
    blocks' sizes in the order of ``net_us`` (None: one block). No block left: no samples."""
    sizes = list(runs) if runs else [len(net_us)]
    kept: list[float] = []
    kept_runs: list[int] = []
    dropped: list[str] = []
    bounds = itertools.accumulate(sizes, initial=0)
    for number, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        block = list(net_us[start:end])
        if block and min(block) < 0:
            dropped.append(f"{number} ({min(block):.2f} µs)")
        elif block:
            kept += block
            kept_runs.append(len(block))
    notes = []
    if dropped:
        notes.append(
            f"left out {len(dropped)} of {len(sizes)} blocks whose round trip was shorter than "
            f"twice its baseline, a negative cost (block, lowest net: {', '.join(dropped)}): "
            "round trip and baseline were not timed under the same conditions"
        )
    return NetCost(kept, kept_runs, notes)


def block_medians(net_us: Sequence[float], runs: Sequence[int]) -> list[float | None]:
    """Each block's median net cost, None for a block ``positive_blocks`` leaves out (one of
    its samples negative): blocks taken in turn with another harness's pair up by index."""
    medians: list[float | None] = []
    for start, end in itertools.pairwise(itertools.accumulate(runs, initial=0)):
        block = net_us[start:end]
        if not block or min(block) < 0:
            medians.append(None)
            continue
        medians.append(statistics.median(block))
    return medians
