from dataclasses import replace

import pytest

from ostoolkit.claims import annotate
from ostoolkit.errors import InvalidRequest
from ostoolkit.measure.blocks import Gathered
from ostoolkit.measure.interference import Interference
from ostoolkit.measure.placement import Pair, choose_cpu, plan_pairs
from ostoolkit.measure.switch import SwitchConfig, pair_results
from ostoolkit.report import Measurement


def test_two_cpus_same_and_cross():
    pairs, notes = plan_pairs([0, 1], None, ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 0, 0), Pair("cross_core", 0, 1)]
    assert notes == []


def test_one_cpu_skips_cross_core_with_a_note():
    pairs, notes = plan_pairs([3], None, ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 3, 3)]
    assert notes == ["placements not measured here: cross_core (only CPU 3 is allowed)"]


def test_wanted_cpus_outside_the_cpuset_are_refused_naming_the_choices():
    with pytest.raises(InvalidRequest, match=r"--cpus 0,3: CPU 0 is not available.*of 2,3"):
        plan_pairs([2, 3], (0, 3), ("same_core", "cross_core"))


def test_choose_cpu_takes_an_allowed_cpu_or_the_callers_default():
    assert choose_cpu(None, [2, 5, 7], default=7) == 7
    assert choose_cpu(None, [2, 5, 7], default=2) == 2
    assert choose_cpu(5, [2, 5, 7], default=7) == 5
    with pytest.raises(InvalidRequest, match=r"^CPU 4 is not available .*choose one of 2,5,7$"):
        choose_cpu(4, [2, 5, 7], default=2)


def test_more_than_two_cpus_are_refused():
    with pytest.raises(InvalidRequest, match=r"one CPU .* or two"):
        plan_pairs([0, 1, 2], (0, 1, 2), ("same_core",))


def test_cross_core_alone_on_one_cpu_leaves_nothing_and_is_refused():
    with pytest.raises(InvalidRequest, match="cross-core needs two CPUs but --cpus 1"):
        plan_pairs([0, 1], (1,), ("cross_core",))
    with pytest.raises(InvalidRequest, match="may use only CPU 3"):
        plan_pairs([3], None, ("cross_core",))


def test_one_wanted_cpu_with_both_placements_measures_same_core_and_says_so():
    pairs, notes = plan_pairs([0, 1], (1,), ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 1, 1)]
    assert notes == ["placements not measured here: cross_core (--cpus names one CPU)"]


def test_wanted_order_is_kept():
    pairs, _ = plan_pairs([0, 1, 2, 3], (3, 1), ("cross_core",))
    assert pairs == [Pair("cross_core", 3, 1)]


def test_step_count_matches_placements():
    config = SwitchConfig(repeat=4)
    assert config.steps(2) == 2 * 2 * 5
    assert config.steps(1) == 1 * 2 * 5


# -- results from samples (pure: no task is started)


def samples_with(references):
    """Thirty tight samples of a process switch with the given speed reference samples."""
    n = len(references)
    return Gathered(
        rounds=1,
        round_us=[7.5 + 0.01 * i for i in range(n)],
        baseline_us=[1.1] * n,
        reference_us=list(references),
        switches_per_hop=[1.0] * n,
        voluntary=2 * n,
        involuntary=0,
        hops=2 * n,
    )


def test_the_speed_reference_goes_into_both_results_and_a_change_of_it_is_said():
    pair = Pair("same_core", 0, 0)
    steady = samples_with([1.1] * 30)
    interference = Interference(0.0, 0.0, (0,), 1.0)
    results, warnings = pair_results("process", pair, steady, interference, SwitchConfig())
    assert [r.extra["reference_us"] for r in results] == [1.1, 1.1]
    assert not warnings
    changed = samples_with([1.1] * 15 + [1.6] * 15)
    results, warnings = pair_results("process", pair, changed, None, SwitchConfig())
    said = "the host's own speed changed meanwhile: its speed reference (one task's pipe "
    for result in results:  # a note on both; a warning only with a figure that is not ok
        assert result.notes[-1] == said + "write+read) took 1.10-1.60 µs"
    assert not warnings
    wide = replace(changed, round_us=[7.5 * (1 + (i % 2) * 0.4) for i in range(30)])
    results, warnings = pair_results("process", pair, wide, None, SwitchConfig())
    assert results[0].status != "ok"
    assert not warnings  # its noise warning is claims.annotate's
    noise = annotate(Measurement(tuple(results))).warnings
    assert len(noise) == 2  # the net switch and its raw round trip
    assert noise[0].endswith("took 1.10-1.60 µs")


def test_topology_measures_every_placement_the_host_has(monkeypatch):
    from ostoolkit.measure import placement
    from ostoolkit.topology import Placement, Plan, Skipped

    plan = Plan(
        placements=[
            Placement("same_cpu", (0, 0), "one CPU"),
            Placement("smt_sibling", (0, 8), "threads of one core"),
            Placement("other_node", (0, 4), "two nodes"),
        ],
        skipped=[Skipped("other_llc", "one L3 per node")],
    )
    monkeypatch.setattr(placement, "survey", lambda allowed: plan)
    pairs, notes = plan_pairs([0, 4, 8], None, ("topology",))
    assert [(p.placement, p.cpu_a, p.cpu_b) for p in pairs] == [
        ("same_core", 0, 0),
        ("smt_sibling", 0, 8),
        ("other_node", 0, 4),
        ("unpinned", -1, -1),
    ]
    assert notes == ["placements not measured here: other_llc (one L3 per node)"]
    assert not pairs[-1].pinned
    with pytest.raises(InvalidRequest, match="leave out --cpus"):
        plan_pairs([0, 4, 8], (0,), ("topology",))


def test_placements_skipped_for_one_reason_share_one_line():
    from ostoolkit.measure.placement import skipped_line

    only = "only CPU 0 is allowed"
    skipped = [
        ("smt_sibling", only),
        ("same_llc", only),
        ("other_node", "one NUMA node"),
        ("cross_core", only),
    ]
    assert skipped_line(skipped) == [
        "placements not measured here: smt_sibling, same_llc, cross_core (only CPU 0 is "
        "allowed); other_node (one NUMA node)"
    ]
    assert skipped_line([]) == []
