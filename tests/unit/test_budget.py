"""Limits are checked before any fork: task headroom and available memory."""

from types import SimpleNamespace

import pytest

from ostoolkit import children
from ostoolkit.errors import LimitExceeded


def test_refuses_more_tasks_than_half_the_headroom(monkeypatch):
    monkeypatch.setattr(children, "task_headroom", lambda: (100, "RLIMIT_NPROC=4096 (ulimit -u)"))
    children.check_task_budget(50, 1, "--max-procs")
    with pytest.raises(LimitExceeded, match=r"--max-procs asks for 51 tasks but only 100 more"):
        children.check_task_budget(51, 1, "--max-procs")


def test_refuses_more_memory_than_half_available(monkeypatch):
    monkeypatch.setattr(children, "task_headroom", lambda: (None, "no limit found"))
    monkeypatch.setattr(
        children.psutil, "virtual_memory", lambda: SimpleNamespace(available=100 * 2**20)
    )
    children.check_task_budget(10, 5 * 2**20, "--workers")
    with pytest.raises(LimitExceeded, match="needs about 60 MiB but only 100 MiB"):
        children.check_task_budget(12, 5 * 2**20, "--workers")


def test_headroom_on_this_host_is_positive():
    headroom, limit = children.task_headroom()
    assert headroom is None or headroom > 0
    assert limit
