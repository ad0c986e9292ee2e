"""Real rings of processes and threads on one CPU: they pass the token, count one switch per
hop, and leave nothing behind (the autouse no_leftovers fixture checks children and threads)."""

from __future__ import annotations

import json
import os

import pytest
from harness.paths import ENTRY
from harness.runs import marked_env, message_lines, run_marked

from ostoolkit.measure.ring import RingConfig, measure_rings, run_cell


@pytest.mark.parametrize("model", ["process", "thread"])
def test_a_ring_counts_about_one_switch_per_hop(model):
    before = os.sched_getaffinity(0)
    cpu = max(before)
    cell = run_cell(model, 6, 16, cpu, samples=3)
    assert len(cell.gross_us) == 3
    assert all(g > 0 for g in cell.gross_us)
    assert cell.gathered.rounds >= 5
    # Every hop blocks the task that passed the token: at least one switch each, and the
    # wake-ups add some involuntary ones, never many.
    assert all(0.9 <= per_hop <= 2.0 for per_hop in cell.gathered.switches_per_hop), cell
    assert os.sched_getaffinity(0) == before  # the main thread's CPUs restored after pinning


def test_measure_rings_gives_ring_and_working_set_ids():
    config = RingConfig(tasks=(2, 4), sizes_kb=(0, 8), samples=2)
    measurement = measure_rings(config, {"L1d": 48})
    ids = {r.id for r in measurement.results}
    for model in ("process", "thread"):
        assert {
            f"ring.{model}.2",
            f"ring.{model}.4",
            f"ring.{model}.4.ws.8",
            f"switch.{model}.ws.0",
            f"switch.{model}.ws.8",
        } <= ids
    assert any("by working set" in f for f in measurement.findings)


def _run(*args: str):
    marker, env = marked_env()
    run = run_marked([str(ENTRY), "measure-switch", *args], env=env, marker=marker, timeout=120)
    assert not run.leftovers, run.describe()
    return run


def test_cli_rings_and_working_set_curve():
    run = _run("--tasks", "2,4", "--sizes", "0,8", "--quick", "--json", "-")
    assert run.returncode == 0, run.describe()
    ids = {r["id"] for r in json.loads(run.stdout)["results"]}
    assert {"ring.process.4.ws.8", "ring.thread.2", "switch.thread.ws.8"} <= ids


def test_cli_topology_measures_same_core_and_unpinned_at_least():
    run = _run("--placement", "topology", "--model", "thread", "--quick", "--json", "-")
    assert run.returncode == 0, run.describe()
    by_id = {r["id"]: r for r in json.loads(run.stdout)["results"]}
    assert "switch.thread.same_core" in by_id
    unpinned = by_id["switch.thread.unpinned"]
    assert set(unpinned["extra"]["cpus"]) <= os.sched_getaffinity(0)  # what the scheduler chose


@pytest.mark.parametrize(
    "args",
    [
        ["--tasks", "1"],
        ["--tasks", "4", "--placement", "same-core"],
        ["--sizes", "0,8", "--cpus", "0,1"],
        ["--placement", "topology", "--cpus", "0"],
    ],
)
def test_cli_refuses_what_rings_and_topology_do_not_take(args):
    run = _run(*args)
    assert run.returncode == 2, run.describe()
    assert len(message_lines(run.stderr)) == 1, run.stderr
