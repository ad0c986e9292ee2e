from ostoolkit.measure.switch import Pair, SwitchConfig, plan_pairs, step_count


def test_two_cpus_same_and_cross():
    pairs, notes = plan_pairs([0, 1], None, ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 0, 0), Pair("cross_core", 0, 1)]
    assert notes == []


def test_one_cpu_skips_cross_core_with_a_note():
    pairs, notes = plan_pairs([3], None, ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 3, 3)]
    assert notes == ["cross-core skipped: only one usable CPU"]


def test_wanted_cpus_outside_the_cpuset_fall_back_and_say_so():
    pairs, notes = plan_pairs([2, 3], (0, 3), ("same_core", "cross_core"))
    assert pairs == [Pair("same_core", 3, 3)]
    assert "CPUs [0] are not available" in notes[0]
    assert notes[1] == "cross-core skipped: only one usable CPU"


def test_wanted_order_is_kept():
    pairs, _ = plan_pairs([0, 1, 2, 3], (3, 1), ("cross_core",))
    assert pairs == [Pair("cross_core", 3, 1)]


def test_step_count_matches_placements():
    config = SwitchConfig(repeat=4)
    assert step_count(config, 2) == 2 * 2 * 5
    assert step_count(config, 1) == 1 * 2 * 5
