"""The bounded polls every test waits with (poll_until, wait_until): never a sleep for a guessed
time, always a condition checked under a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

POLL_S = 0.01  # a /proc scan takes about 1 ms; this keeps the poller near 10 % of a CPU

T = TypeVar("T")


def poll_until(ready: Callable[[], T], timeout: float, poll_s: float = POLL_S) -> T:
    """Call ``ready`` every ``poll_s`` until it returns something true or ``timeout`` passes.

    Returns its last value (false if the deadline passed): the one bounded poll of the tests.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll_s)


def wait_until(
    ready: Callable[[], T], timeout: float, failure: str | Callable[[], str], poll_s: float = POLL_S
) -> T:
    """poll_until, failing the test with ``failure`` (or what it returns) if ``ready`` never was."""
    value = poll_until(ready, timeout, poll_s)
    assert value, failure if isinstance(failure, str) else failure()
    return value
