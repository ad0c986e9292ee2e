"""Options of the signal harness (tests/os/test_signals.py).

``--signal-trials N`` (or ``OSTOOLKIT_SIGNAL_TRIALS=N``) runs N random trials per command
instead of the default set; ``--signal-seed S`` (or ``OSTOOLKIT_SIGNAL_SEED=S``) replays a run.
The options are known to pytest when tests/os (or a file in it) is named on the command line;
the environment variables work however pytest is started.
"""

from __future__ import annotations

import harness
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ostoolkit signal harness")
    group.addoption(
        "--signal-trials",
        type=int,
        default=None,
        help="random signal trials per command instead of the default set "
        "(env OSTOOLKIT_SIGNAL_TRIALS)",
    )
    group.addoption(
        "--signal-seed",
        type=int,
        default=None,
        help="seed of the signal trials' delays, to replay a failure (env OSTOOLKIT_SIGNAL_SEED)",
    )


def pytest_configure(config: pytest.Config) -> None:
    seed = config.getoption("signal_seed", default=None)
    if seed is not None:
        harness.set_seed(seed)


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"signal harness: seed {harness.seed()} "
        f"(replay: OSTOOLKIT_SIGNAL_SEED={harness.seed()}), "
        f"trials per command: {harness.trials(config) or 'default set'}"
    )
