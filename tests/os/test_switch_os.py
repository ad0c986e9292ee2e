"""Real switch measurements with tiny counts: invariants and kernel counters, never timings."""

import os

import pytest

from ostoolkit.claims import annotate
from ostoolkit.measure.switch import SwitchConfig, measure_switch

TWO_CPUS = len(os.sched_getaffinity(0)) >= 2


@pytest.fixture(scope="module")
def measurement():
    return annotate(measure_switch(SwitchConfig(repeat=3, iterations=300)))


def test_every_model_and_placement_is_reported(measurement):
    ids = {r.id for r in measurement.results}
    for model in ("process", "thread"):
        assert f"switch.{model}.same_core" in ids
        assert f"roundtrip.{model}.same_core" in ids
        assert (f"switch.{model}.cross_core" in ids) == TWO_CPUS


def test_same_core_needs_a_kernel_switch_per_hop(measurement):
    """On one CPU the token cannot move unless the kernel switches tasks: >= 1 per hop."""
    for model in ("process", "thread"):
        result = next(r for r in measurement.results if r.id == f"switch.{model}.same_core")
        assert result.extra["switches_per_hop"] >= 0.99, result.extra
        assert result.extra["cpus"][0] == result.extra["cpus"][1]


def test_figures_are_consistent(measurement):
    by_id = {r.id: r for r in measurement.results}
    for result in measurement.results:
        if result.id.startswith("trace."):  # the kernel's counted windows: test_trace_os.py
            continue
        assert result.n == 3
        assert len(result.samples) == 3
        assert result.p10 <= result.median <= result.p90
        assert result.status in ("ok", "noisy", "bimodal")
    for key in ("process.same_core", "thread.same_core"):
        switch, rt = by_id[f"switch.{key}"], by_id[f"roundtrip.{key}"]
        assert switch.extra["gross_us"] == pytest.approx(rt.median / 2, rel=1e-3)
        assert switch.median < switch.extra["gross_us"]  # net subtracts a positive baseline
        assert switch.extra["baseline_us"] > 0
        assert switch.claim
        assert switch.verdict


def test_working_set_is_recorded_and_affinity_restored():
    before = os.sched_getaffinity(0)
    m = measure_switch(
        SwitchConfig(
            models=("thread",),
            placements=("same_core",),
            repeat=2,
            iterations=100,
            working_set_kb=64,
        )
    )
    assert os.sched_getaffinity(0) == before
    assert m.results[0].extra["working_set_kb"] == 64


def test_progress_steps(measurement):
    steps: list[int] = []
    measure_switch(
        SwitchConfig(models=("process",), placements=("same_core",), repeat=2, iterations=50),
        steps.append,
    )
    assert sum(steps) == 3


def test_no_file_descriptor_leaks():
    before = set(os.listdir("/proc/self/fd"))
    measure_switch(SwitchConfig(placements=("same_core",), repeat=1, iterations=20))
    assert set(os.listdir("/proc/self/fd")) == before
