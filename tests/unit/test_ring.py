"""Rings of N tasks: what is built, under which ids, what is refused, what the findings say."""

from __future__ import annotations

import pytest

from ostoolkit.errors import InvalidRequest
from ostoolkit.measure import ring
from ostoolkit.measure.blocks import Gathered
from ostoolkit.measure.ring import RingCell, RingConfig, cell_results, check_ring, ring_findings


def cell(model: str, tasks: int, kb: int, net: float, per_hop: float = 1.0) -> RingCell:
    laps = [(net + 0.5) * tasks] * 3  # 0.5 µs a hop over the baseline's
    return RingCell(model, tasks, kb, 1, Gathered(10, laps, [0.5] * 3, [], [per_hop] * 3))


def test_the_two_task_ring_is_added_for_the_working_set_curve():
    config = RingConfig(tasks=(8, 32), sizes_kb=(0, 64), models=("process",))
    assert config.cells() == [
        ("process", 8, 0),
        ("process", 8, 64),
        ("process", 32, 0),
        ("process", 32, 64),
        ("process", 2, 0),
        ("process", 2, 64),
    ]
    assert ring.ring_steps(config) == 6


def test_ids_of_rings_and_of_the_working_set_curve():
    config = RingConfig(tasks=(2, 32), sizes_kb=(0, 64), models=("thread",))
    cells = (cell("thread", 2, 0, 1.0), cell("thread", 2, 64, 2.0), cell("thread", 32, 64, 5.0))
    ids = {r.id for c in cells for r in cell_results(c, config, None)[0]}
    # the two-task ring with a working set is the curve's point only: one id per figure
    assert ids == {
        "ring.thread.2",
        "switch.thread.ws.0",
        "switch.thread.ws.64",
        "ring.thread.32.ws.64",
    }
    curve_only = RingConfig(tasks=(2,), sizes_kb=(0, 64), models=("thread",))
    assert [r.id for r in cell_results(cell("thread", 2, 0, 1.0), curve_only, None)[0]] == [
        "switch.thread.ws.0"
    ]  # --sizes alone: the curve, not a ring of one size as well
    one_size = RingConfig(tasks=(2,), sizes_kb=(0,), models=("thread",))
    assert [r.id for r in cell_results(cell("thread", 2, 0, 1.0), one_size, None)[0]] == [
        "ring.thread.2"
    ]  # no curve from one size


def test_net_is_gross_minus_the_baseline_and_counters_judge_the_method():
    config = RingConfig(tasks=(8,), models=("process",))
    (result,), warnings = cell_results(cell("process", 8, 0, 3.0, per_hop=2.5), config, None)
    assert warnings == []
    assert result.median == pytest.approx(3.0)
    assert result.unit == "us"
    assert result.extra["switches_per_hop"] == 2.5
    assert "2.50 switches per hop" in result.notes[0]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (RingConfig(tasks=(1, 8)), "--tasks must be within 2..2048"),
        (RingConfig(tasks=(4096,)), "--tasks must be within 2..2048"),
        (RingConfig(tasks=(2,), sizes_kb=(-1,)), "--sizes must be within"),
        (RingConfig(tasks=(2,), sizes_kb=(10**9,)), "--sizes must be within"),
    ],
)
def test_bad_rings_are_refused_before_any_fork(config, words):
    with pytest.raises(InvalidRequest, match=words):
        check_ring(config)


def test_findings_say_how_cost_grows_with_the_ring_and_the_working_set():
    cells = [
        cell("process", 2, 0, 1.0),
        cell("process", 256, 0, 8.0),
        cell("process", 2, 1024, 16.0),
    ]
    said = ring_findings(cells, {"L1d": 48, "L2": 2048})
    assert said[0].startswith("process switches cost 1.00 µs in a ring of 2 and 8.00 µs")
    assert "(8.0×)" in said[0]
    assert "TLB" in said[0]
    assert said[1] == (
        "process switch by working set: 0 KB 1.00 µs, 1024 KB 16.00 µs "
        "(caches here: L1d 48 KB, L2 2048 KB)"
    )


def test_charts_mark_the_cache_that_holds_both_working_sets():
    cells = [
        cell("process", 2, 0, 1.0),
        cell("process", 2, 16, 1.1),
        cell("process", 2, 64, 1.3),
        cell("process", 2, 4096, 20.0),
        cell("process", 32, 0, 3.0),
    ]
    caches = {"L1d": 48, "L2": 2048, "L3": 32768}
    by_title = {c["title"]: c for c in ring.ring_charts(cells, caches)}
    curve = by_title["process switch by working set"]
    assert curve["x"] == ["0 KB (L1d)", "16 KB (L1d)", "64 KB (L2)", "4096 KB (L3)"]
    assert curve["values"] == [1.0, 1.1, 1.3, 20.0]
    assert curve["kind"] == "line"
    assert by_title["process switch in a ring of N tasks"]["x"] == ["2", "32"]
    assert ring.holding_cache(20_000, caches) == "memory"
    bare = ring.ring_charts(cells, {})  # a VM without cache information: no guess
    assert bare[1]["x"] == ["0 KB", "16 KB", "64 KB", "4096 KB"]
    assert ring.ring_charts(cells[:1], caches) == []  # one point is no chart


def test_a_ring_whose_net_goes_negative_is_not_reported_and_says_why():
    config = RingConfig(tasks=(8,), sizes_kb=(0,), models=("process",))
    broken = cell("process", 8, 0, 2.5)
    broken.gathered.round_us[1] = 0.2 * 8  # shorter than its baseline: a negative cost
    results, (why,) = cell_results(broken, config, None)
    assert results == []
    assert why.startswith("process ring of 8: net per switch: not reported;")
    assert "negative cost" in why
    results, warnings = cell_results(cell("process", 8, 0, 3.0), config, None)
    assert len(results) == 1
    assert warnings == []
