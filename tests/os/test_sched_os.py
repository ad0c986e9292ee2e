"""Real children through the process states, and real time slices: invariants, never timings."""

import os

import pytest

from ostoolkit.claims import annotate
from ostoolkit.errors import OstoolkitError
from ostoolkit.measure import sched, states
from ostoolkit.measure.sched import measure_timeslice
from ostoolkit.measure.states import STATES_STEPS, observe_states

ARTICLE_ORDER = ["running", "ready", "waiting", "stopped", "zombie", "killed"]


def test_states_timeline_in_order():
    before = os.sched_getaffinity(0)
    steps: list[int] = []
    m = observe_states(progress=steps.append)
    assert os.sched_getaffinity(0) == before
    timeline = m.data["timeline"]
    assert [e["article_state"] for e in timeline] == ARTICLE_ORDER
    assert [e["proc_state"] for e in timeline] == ["R", "R", "S", "T", "Z", "-"]
    assert [e["psutil_status"] for e in timeline] == [
        "running",
        "running",
        "sleeping",
        "stopped",
        "zombie",
        "gone",
    ]
    times = [e["t_ms"] for e in timeline]
    assert times == sorted(times)
    assert all(e["pid"] > 0 and e["detail"] for e in timeline)
    assert sum(steps) == STATES_STEPS
    assert m.findings


def test_timeslice_windows():
    before = os.sched_getaffinity(0)
    steps: list[int] = []
    m = annotate(measure_timeslice(duration_s=0.3, windows=3, progress=steps.append))
    assert os.sched_getaffinity(0) == before
    assert sum(steps) == 3
    by_id = {r.id: r for r in m.results}
    assert set(by_id) == {"sched.timeslice", "sched.runqueue_wait", "sched.involuntary_per_s"}
    for result in by_id.values():
        assert result.n == 3
        assert result.median > 0
        assert all(s > 0 for s in result.samples)
    timeslice = by_id["sched.timeslice"]
    assert timeslice.claim == "milliseconds"
    assert timeslice.verdict
    assert timeslice.extra["cpu"] == max(before)  # --cpu's default: the last allowed
    assert m.findings


def test_without_schedstat_only_psutil_figures(monkeypatch):
    monkeypatch.setattr(sched, "schedstat_available", lambda: False)
    m = measure_timeslice(duration_s=0.1, windows=2)
    assert [r.id for r in m.results] == ["sched.involuntary_per_s"]
    assert any("schedstat" in w for w in m.warnings)


def test_unusable_cpu_is_refused_before_forking():
    with pytest.raises(OstoolkitError, match="not available"):
        measure_timeslice(duration_s=0.1, windows=1, cpu=max(os.sched_getaffinity(0)) + 1)


def test_no_file_descriptor_leaks():
    before = set(os.listdir("/proc/self/fd"))
    observe_states()
    measure_timeslice(duration_s=0.05, windows=1)
    assert set(os.listdir("/proc/self/fd")) == before


def test_children_reaped_and_affinity_restored_on_error(monkeypatch):
    def fail(self):
        raise OstoolkitError("injected")

    monkeypatch.setattr(states._StateWalk, "zombie", fail)
    before = os.sched_getaffinity(0)
    with pytest.raises(OstoolkitError, match="injected"):
        observe_states()
    assert os.sched_getaffinity(0) == before
