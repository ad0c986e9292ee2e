"""The host's speed reference: one task writes a byte to a private pipe and reads it back.

Why: on a shared VM the same code runs at two or more speeds, for tenths of a second to tens
of seconds at a time, and the guest sees no cause. Measured here (2-vCPU VM, 60 s): this
reference took 1.1 µs or 1.6 µs, flipping per vCPU, while steal time and other tasks' CPU
time stayed at zero; a pipe ping-pong's round trip moved with it (7.5 or 10.5 µs, correlation
0.97), and so did a Python loop (+47 %) and getppid (+37 %), but not SHA-256 (+3 %), which
points at a busy SMT sibling on the hypervisor's side rather than the clock. So two runs on
one host can differ by a third for reasons outside both of them.

A fixed task timed beside a figure tells such a change of the host from a change of the thing
measured: ``compare`` reads the references of the two runs and does not call a figure slower
or faster when the reference moved as far (it never adjusts a figure). The reference is the
switch harness's own baseline without a working set: write(2) and read(2) of one byte, no
switch, so it exercises the same system-call path the switch figures do.
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
