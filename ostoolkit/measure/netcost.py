"""lmbench's net cost of a hop, and the blocks whose net cost is not a cost.

net = (round trip - 2 x baseline) / 2: the round trip's two hops, each less what one task's
own write and read cost without a switch (``measure.switch``). The baseline is timed just
before each round trip, on the same CPU, so that both see the same host. When they do not
(a CPU quota stopped the tasks during one and not the other, or the host changed speed
between them) a round trip can come out shorter than twice its baseline: a negative "cost",
which is the harness's error, not the kernel's. Such a sample condemns its whole block (the
block shares one partner task and one stretch of the host's time), so the block is left out
of the net figure and a note says which block and why; the raw round trip keeps every sample.
"""

from __future__ import annotations

import itertools
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


def positive_blocks(net_us: Sequence[float], runs: Sequence[int] | None) -> NetCost:
    """Leave out every block (run) with a negative net sample; say which and why.

    ``runs`` are the blocks' sizes in the order of ``net_us`` (None: one block). When every
    block goes, ``samples`` is empty: the caller reports no net figure at all.
    """
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
