"""The host's speed reference: one task writes a byte to a private pipe and reads it back.

A shared VM runs the same code at different speeds for seconds at a time, unseen by the
guest; this fixed task, timed beside a figure, lets ``compare`` tell a host that moved from
a figure that did (no figure is ever adjusted by it). It is the switch harness's baseline
without a working set. Evidence: docs/method.md, "The host's own speed".
"""

from __future__ import annotations

import os
import time

# Rounds of one reference sample when it is taken on its own (about 11-17 ms here).
REFERENCE_ROUNDS = 10_000
TOKEN = b"t"


def time_rounds(wfd: int, rfd: int, n: int) -> int:
    """Write one byte to ``wfd`` and read it from ``rfd``, n times; return elapsed nanoseconds."""
    read, write, token = os.read, os.write, TOKEN
    start = time.perf_counter_ns()
    for _ in range(n):
        write(wfd, token)
        read(rfd, 1)
    return time.perf_counter_ns() - start


def reference_us(rounds: int = REFERENCE_ROUNDS) -> float | None:
    """One reference sample on a pipe of its own, in µs per write+read; None if no pipe."""
    try:
        rfd, wfd = os.pipe()
    except OSError:  # out of file descriptors: the measurement itself will say so
        return None
    try:
        return time_rounds(wfd, rfd, rounds) / 1e3 / rounds
    finally:
        os.close(rfd)
        os.close(wfd)
