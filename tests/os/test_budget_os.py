"""Limits met by real processes (issue 21): a worker group's leader that cannot start a thread
says which limit stopped it in one line, and a task limit that does not bind root is said.

The refusals before any work (threads over ``ulimit -v``/``-d``) are cases of
tests/os/test_bad_input.py's table.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import pytest
from harness.paths import ENTRY
from harness.runs import ERROR_DUMP, marked_env, run_marked

# Root of the initial user namespace, which RLIMIT_NPROC does not bind (kernel/fork.c).
HOST_ROOT = os.getuid() == 0 and Path("/proc/self/uid_map").read_text().split() == [
    "0",
    "0",
    "4294967295",
]
# Room for ostoolkit and a few threads, not for 200 threads of default-sized stacks.
LOW_ADDRESS_SPACE = 500 * 2**20
# Past the pre-check, as a wrong estimate would be: the leader itself meets the limit.
LEADER_PAST_THE_CHECK = """
from ostoolkit.errors import LimitExceeded
from ostoolkit.measure.memory import run_group
try:
    run_group("thread", 200, 64)
except LimitExceeded as err:
    print(err)
    raise SystemExit(2)
"""


def test_a_leader_that_cannot_start_a_thread_names_the_limit_in_one_line(tmp_path):
    marker, env = marked_env()
    run = run_marked(
        [sys.executable, "-c", LEADER_PAST_THE_CHECK],
        env=env,
        marker=marker,
        timeout=60,
        cwd=tmp_path,  # ostoolkit as installed, not as found in the working directory
        preexec_fn=lambda: resource.setrlimit(
            resource.RLIMIT_AS, (LOW_ADDRESS_SPACE, LOW_ADDRESS_SPACE)
        ),
    )
    assert run.returncode == 2, run.describe()
    dump = ERROR_DUMP.search(run.stderr)
    assert dump is None, run.describe()
    assert run.stderr == "", run.describe()
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout
    assert "could not start: the address-space limit (ulimit -v) of 500 MiB" in lines[0]
    assert lines[0].endswith("lower --workers")
    assert not run.leftovers, run.describe()


def test_root_is_told_that_rlimit_nproc_does_not_bind_it():
    if not HOST_ROOT:
        pytest.skip("not root of the initial user namespace: RLIMIT_NPROC binds here")
    marker, env = marked_env()
    run = run_marked(
        [str(ENTRY), "fork-tree", "--depth", "2", "--breadth", "3", "--json", "-"],
        env=env,
        marker=marker,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NPROC, (5, 5)),
    )
    assert run.returncode == 0, run.describe()
    warnings = json.loads(run.stdout)["warnings"]
    assert "RLIMIT_NPROC (ulimit -u) 5 does not bind root: 12 processes started" in warnings
    assert not run.leftovers, run.describe()
