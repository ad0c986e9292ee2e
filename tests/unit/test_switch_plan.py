import pytest

from ostoolkit.errors import InvalidRequest
from ostoolkit.measure.switch import Pair, SwitchConfig, plan_pairs, step_count


def test_two_cpus_same_and_cross():
    pairs, notes = plan_pairs([0, 1], None, ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 0, 0), Pair("cross_core", 0, 1)]
    assert notes == []


def test_one_cpu_skips_cross_core_with_a_note():
    pairs, notes = plan_pairs([3], None, ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 3, 3)]
    assert notes == ["cross-core skipped: only one usable CPU"]


def test_wanted_cpus_outside_the_cpuset_are_refused_naming_the_choices():
    with pytest.raises(InvalidRequest, match=r"--cpus 0,3: CPU 0 is not available.*of 2,3"):
        plan_pairs([2, 3], (0, 3), ("same_core", "cross_core"))


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
    assert notes == ["cross-core skipped: only one usable CPU"]


def test_wanted_order_is_kept():
    pairs, _ = plan_pairs([0, 1, 2, 3], (3, 1), ("cross_core",))
    assert pairs == [Pair("cross_core", 3, 1)]


def test_step_count_matches_placements():
    config = SwitchConfig(repeat=4)
    assert step_count(config, 2) == 2 * 2 * 5
    assert step_count(config, 1) == 1 * 2 * 5
