"""tests/unit is pure logic: any test here that starts a process or a thread fails loudly.

Tests that fork, exec, run strace, start threads or servers belong in tests/os. The guard
replaces every way Python starts a process (os.fork, os.posix_spawn, os.system,
subprocess.Popen, multiprocessing's fork_exec) and a thread for the duration of each test.
"""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess
import threading
from typing import Any, NoReturn

import pytest

PROCESS_STARTERS = ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen")


def _refuse(what: str) -> Any:
    """A stand-in for ``what`` that fails the test that called it."""

    def refused(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail(
            f"{what} called in tests/unit: a test that starts processes or threads "
            "belongs in tests/os",
            pytrace=True,
        )

    return refused


@pytest.fixture(autouse=True)
def no_process_or_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make starting a process or a thread fail the test (see the module docstring)."""
    for name in PROCESS_STARTERS:
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"os.{name}"))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("subprocess.Popen"))
    monkeypatch.setattr(_posixsubprocess, "fork_exec", _refuse("_posixsubprocess.fork_exec"))
    monkeypatch.setattr(threading.Thread, "start", _refuse("threading.Thread.start"))
