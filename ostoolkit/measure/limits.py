"""The one rule for a list of counts (--clients, --workers): each a whole number within 1..most.

The CLI's option type (``cli.options.counts``) and the library's own checks
(``connections.builtin``, ``connections.dsn``, ``measure.memory``) all apply it here, with
the library's limits (MAX_CLIENTS, MAX_PROCESSES, MAX_THREADS), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable

# The fewest clients or workers a count may name: 0 is the baseline every run measures anyway.
LEAST_COUNT = 1


def farthest_outside(numbers: Iterable[int], low: int, high: int) -> int | None:
    """The number farthest outside low..high (the highest above it, else the lowest below it),
    or None when every one is within."""
    values = list(numbers)
    if above := [n for n in values if n > high]:
        return max(above)
    return min((n for n in values if n < low), default=None)
