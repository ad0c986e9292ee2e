"""The seed and trial count of tests/os/test_signals.py's random signal trials: set by
tests/os/conftest.py from its options, else from the environment, else (seed) drawn once per
pytest process and printed, so that a failure can be replayed.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

_SEED: list[int] = []


def set_seed(value: int) -> None:
    _SEED[:] = [value]


def seed() -> int:
    if not _SEED:
        given = os.environ.get("OSTOOLKIT_SIGNAL_SEED", "").strip()
        _SEED.append(int(given) if given else int.from_bytes(os.urandom(4), "big"))
    return _SEED[0]


def trials(config: Any) -> int | None:
    """Random trials per command (--signal-trials or OSTOOLKIT_SIGNAL_TRIALS), else None."""
    value = None
    with contextlib.suppress(ValueError, AttributeError):
        value = config.getoption("signal_trials", default=None)
    if value is None:
        given = os.environ.get("OSTOOLKIT_SIGNAL_TRIALS", "").strip()
        value = int(given) if given else None
    return value if value and value > 0 else None
