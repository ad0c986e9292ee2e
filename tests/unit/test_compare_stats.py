"""compare's statistics: the hierarchical bootstrap, the verdict's rule and its error rates.

The rate tests run compare end to end on synthetic reports whose samples come from known
distributions in runs, seeded, so every run gives the same rates; ``pytest -s`` prints them.
A run has an effect of its own (the state of the host it ran in, lognormal with sd ``between``)
and its samples vary around it (sd ``within``): the structure that made one run's samples
cry wolf when they were resampled as if independent.
"""

import random

import numpy as np
import pytest

from ostoolkit.compare.engine import compare_reports
from ostoolkit.report import Measurement, build_report, make_result
from ostoolkit.stats import (
    EXACT,
    HOST_MOVED,
    ONE_RUN,
    RESAMPLES,
    Figure,
    HostMove,
    SampleSet,
    host_move,
    judge_shift,
    strip_counts,
    strip_range,
)
from ostoolkit.stats.bootstrap import (
    MAX_RUNS_DRAWN,
    hierarchical_medians,
    percentile_interval,
    seed_for,
)
from ostoolkit.stats.shift import (
    BELOW_RESOLUTION,
    FEW_SAMPLES,
    MIN_SAMPLES,
    OUTSIDE_BAND,
    WIDE_INTERVAL,
)

TRIALS = 200


def run_samples(rng, runs, per_run, median, between, within):
    """Samples of ``runs`` runs of ``per_run`` each: a lognormal run effect, then noise."""
    values = []
    for _ in range(runs):
        level = median * rng.lognormvariate(0, between)
        values += [level * rng.lognormvariate(0, within) for _ in range(per_run)]
    return values


def verdicts(shift, between, within=0.03, runs=3, per_run=6, threshold=0.05, trials=TRIALS):
    """compare's verdict words over ``trials`` pairs of synthetic reports, as counts."""
    counts: dict[str, int] = {}
    for trial in range(trials):
        rng = random.Random(trial)
        figure = f"spawn.trial{trial}"
        reports = []
        for _name, mu in (("base", 10.0), ("other", 10.0 * (1 + shift))):
            values = run_samples(rng, runs, per_run, mu, between, within)
            result = make_result(figure, "trial", "us", values, runs=[per_run] * runs)
            reports.append(build_report("report", [], Measurement((result,)), {}, "t", 1))
        data = compare_reports(reports, ["base", "other"], threshold=threshold).data
        (word,) = [c["verdict"] for c in data["comparisons"] if c["host"] == "other"]
        counts[word] = counts.get(word, 0) + 1
    print(f"\nshift {shift:.0%}, between {between}, within {within}, {runs} runs: {counts}")  # noqa: T201
    return counts


def share(counts, *words):
    return sum(counts.get(w, 0) for w in words) / sum(counts.values())


def sampled(values, key="k", runs=()):
    return Figure(SampleSet(values, key, runs))


# -- the rates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("between", [0.0, 0.03, 0.06])
def test_an_unchanged_host_is_given_a_direction_in_at_most_5_percent(between):
    counts = verdicts(0.0, between)
    assert share(counts, "slower", "faster") <= 0.05, counts


def test_one_run_a_side_would_cry_wolf_where_runs_do_not():
    """Runs 6 % apart (sd) with tight samples inside: one run of 18 samples a side (the old
    report, every sample resampled as independent) gives an interval outside the band in
    about a third of unchanged pairs; three runs of 6 a side keep directions within 5 %."""
    as_runs = verdicts(0.0, 0.06, within=0.01)
    as_one = {}
    for trial in range(TRIALS):
        rng = random.Random(trial)
        a, b = (sampled(run_samples(rng, 1, 18, 10.0, 0.06, 0.01), k) for k in "ab")
        shift = judge_shift(a, b, 0.05)  # one run: an interval, but no direction
        outside = shift.ci_low > 1.05 or shift.ci_high < 0.95
        as_one[outside] = as_one.get(outside, 0) + 1
    assert share(as_runs, "slower", "faster") <= 0.05
    assert as_one.get(True, 0) / TRIALS > 0.2, as_one  # what the runs protect against


def test_a_30_percent_shift_is_found_with_three_runs_and_10_percent_with_five():
    big = verdicts(0.30, 0.03)
    assert share(big, "slower") >= 0.95, big
    small = verdicts(0.10, 0.01, within=0.02, runs=5)
    assert share(small, "slower") >= 0.80, small
    assert share(small, "faster") == 0, small


@pytest.mark.parametrize(("shift", "most"), [(0.01, 0.0), (0.03, 0.01)])
def test_a_shift_inside_the_band_is_seldom_slower_or_faster(shift, most):
    counts = verdicts(shift, 0.02)
    assert share(counts, "slower", "faster") <= most, counts


# -- the bootstrap -----------------------------------------------------------------------------


def test_the_hierarchical_bootstrap_matches_plain_two_stage_resampling():
    """Its medians have the law of: draw runs with replacement, then samples within each."""
    rng = np.random.default_rng(3)
    runs = [np.sort(rng.normal(level, 1.0, 8)) for level in (10.0, 12.0, 15.0)]
    ours = hierarchical_medians(runs, seed_for("x"), resamples=20_000)
    plain = []
    for _ in range(20_000):
        picked = rng.integers(0, 3, 3)
        drawn = np.concatenate([rng.choice(runs[p], 8) for p in picked])
        plain.append(np.median(drawn))
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(ours, q) == pytest.approx(np.quantile(plain, q), abs=0.15)


def test_one_run_resamples_samples_alone_and_unequal_runs_are_handled():
    one = hierarchical_medians([np.arange(1.0, 10.0)], seed_for("y"))
    assert one.min() >= 1
    assert one.max() <= 9
    unequal = hierarchical_medians([np.array([1.0]), np.array([5.0, 5.0, 5.0])], seed_for("z"))
    assert set(np.unique(unequal)) <= {1.0, 3.0, 5.0}  # 1+1 -> 1; 1+555 -> 5; 555+555 -> 5
    assert (unequal == 5.0).mean() > 0.5


def test_long_runs_are_thinned_and_never_narrow_the_interval():
    rng = np.random.default_rng(4)
    long = [rng.normal(10, 1, 500) for _ in range(3)]
    thinned = hierarchical_medians(long, seed_for("w"))
    assert len(thinned) == RESAMPLES
    assert np.ptp(np.quantile(thinned, (0.025, 0.975))) > 0


def test_many_runs_are_drawn_as_blocks_of_adjacent_runs_never_narrowing_the_interval():
    """One-sample runs cost RESAMPLES draws each before issue 21; now at most MAX_RUNS_DRAWN
    blocks of runs are drawn, and the run count stays what the report says."""
    rng = np.random.default_rng(5)
    values = rng.lognormal(0, 0.1, 2000)
    many = SampleSet(values.tolist(), "k", [1] * 2000)
    assert many.run_count == 2000
    assert len(many.blocks) == MAX_RUNS_DRAWN
    assert {len(block) for block in many.blocks} == {15, 16}  # 2000 / 128, as even as can be
    assert np.array_equal(np.concatenate(many.blocks), values)  # adjacent runs, in order
    every_run = hierarchical_medians([values[i : i + 1] for i in range(2000)], seed_for("k"))
    width = np.ptp(percentile_interval(many.bootstrap_medians()))
    assert width >= np.ptp(percentile_interval(every_run))
    few = SampleSet(values[:300].tolist(), "k", [3] * 100)
    assert [len(block) for block in few.blocks] == [3] * 100  # each run its own, as ever


def test_the_bootstrap_is_seeded_by_the_key():
    values = [float(v) for v in range(1, 31)]
    a = SampleSet(values, "key", [10, 10, 10]).bootstrap_medians()
    assert np.array_equal(a, SampleSet(values, "key", [10, 10, 10]).bootstrap_medians())
    assert not np.array_equal(a, SampleSet(values, "other", [10, 10, 10]).bootstrap_medians())


@pytest.mark.parametrize("runs", [[6] * 4, [10, 21], [6, 6, 6, 6, 0, 6], [6.0] * 5, [True] * 30])
def test_run_sizes_that_do_not_fit_make_one_run(runs):
    assert SampleSet([1.0] * 30, "a", runs).run_count == 1


# -- the rule ----------------------------------------------------------------------------------


def around(median, n=30, spread=0.02):
    """n samples evenly spread ±``spread`` around ``median``."""
    return [median * (1 - spread + 2 * spread * i / (n - 1)) for i in range(n)]


def test_one_run_gets_an_interval_but_no_direction():
    one = judge_shift(sampled(around(10.0)), sampled(around(20.0)), 0.05)
    assert (one.direction, one.reason) == ("unclear", ONE_RUN)
    assert one.ci_low is not None
    assert one.ci_low > 1.5
    runs = judge_shift(
        sampled(around(10.0), runs=[10] * 3), sampled(around(20.0), "b", [10] * 3), 0.05
    )
    assert (runs.direction, runs.reason) == ("up", OUTSIDE_BAND)
    assert runs.p_value == pytest.approx(1 / RESAMPLES)


def test_few_samples_are_unclear_whatever_the_ratio():
    few = judge_shift(
        sampled([1.0, 1.1, 1.2], runs=[1, 1, 1]), sampled([9.0, 9.1, 9.2], runs=[1, 1, 1]), 0.05
    )
    assert (few.direction, few.reason, few.ci_low) == ("unclear", FEW_SAMPLES, None)
    assert few.ratio == pytest.approx(9.1 / 1.1)
    enough = [float(i) for i in range(1, MIN_SAMPLES + 1)]
    shifted = [v + 100 for v in enough]
    runs = [1] * MIN_SAMPLES
    assert (
        judge_shift(sampled(enough, runs=runs), sampled(shifted, runs=runs), 0.05).direction == "up"
    )


def test_exact_figures_are_judged_on_their_values():
    def exact(value):
        return Figure(SampleSet([value], "e"), exact=True)

    same = judge_shift(exact(22.0), exact(22.0), 0.05)
    assert (same.direction, same.reason, same.ratio) == ("same", EXACT, 1.0)
    more = judge_shift(exact(11.0), exact(101.0), 0.05)
    assert (more.direction, more.reason) == ("up", EXACT)
    assert more.ci_low == more.ci_high == pytest.approx(101 / 11)
    assert judge_shift(exact(0.0), exact(3.0), 0.05).direction == "up"
    sampled_one = judge_shift(Figure(SampleSet([11.0], "a")), Figure(SampleSet([101.0], "b")), 0.05)
    assert (sampled_one.direction, sampled_one.reason) == ("unclear", FEW_SAMPLES)


def test_a_median_below_the_resolution_is_never_given_a_direction():
    page = 4096.0
    low = Figure(SampleSet([-3000.0, 200.0, 1000.0, 1200.0, 2000.0], "a", [1] * 5), resolution=page)
    high = Figure(SampleSet([9000.0] * 5, "b", [1] * 5), resolution=page)
    out = judge_shift(low, high, 0.05)
    assert (out.direction, out.reason, out.ratio) == ("unclear", BELOW_RESOLUTION, None)
    assert judge_shift(high, low, 0.05).reason == BELOW_RESOLUTION
    assert judge_shift(high, high, 0.05).direction == "same"


def test_a_shift_the_host_moved_as_far_is_unclear_and_beyond_it_is_a_verdict():
    """1.36x with the host at 1.42: unclear; with the host at 1.2, still slower; same is same."""
    runs = [10] * 3
    base, other = sampled(around(7.5), "a", runs), sampled(around(10.2), "b", runs)
    plain = judge_shift(base, other, 0.05)
    assert plain.direction == "up"
    moved = judge_shift(base, other, 0.05, HostMove(1.42, 1.42, 1.42))
    assert (moved.direction, moved.reason) == ("unclear", HOST_MOVED)
    assert (moved.ratio, moved.ci_low, moved.ci_high) == (plain.ratio, plain.ci_low, plain.ci_high)
    assert judge_shift(base, other, 0.05, HostMove(1.2, 1.2, 1.2)).direction == "up"
    assert judge_shift(base, other, 0.05, HostMove(1.2, 1.15, 1.33)).direction == "unclear"
    assert judge_shift(base, other, 0.05, HostMove(0.7, 0.7, 0.7)).direction == "up"  # faster
    faster = judge_shift(other, base, 0.05, HostMove(0.7, 0.7, 0.7))
    assert (faster.direction, faster.reason) == ("unclear", HOST_MOVED)
    assert judge_shift(other, base, 0.05, HostMove(1.3, 1.3, 1.3)).direction == "down"
    same = judge_shift(base, sampled(around(7.6), "c", runs), 0.05, HostMove(1.42, 1.4, 1.45))
    assert same.direction == "same"  # the figure did not move, whatever the host did


def test_the_host_move_from_reference_samples():
    refs = SampleSet(around(1.1, n=20), "r")
    later = SampleSet([1.5 * r for r in around(1.1, n=20)], "s")
    move = host_move(refs, later)
    assert move is not None
    assert move.ratio == pytest.approx(1.5)
    assert move.low < 1.5 < move.high < 1.56
    assert host_move(refs, later) == move  # seeded
    rate = host_move(refs, later, exponent=-1)
    assert rate is not None
    assert rate.ratio == pytest.approx(1 / 1.5)
    assert (rate.low, rate.high) == pytest.approx((1 / move.high, 1 / move.low))
    two = host_move(SampleSet([1.0, 1.2], "a"), SampleSet([1.5], "b"))  # the ratio alone
    assert two == HostMove(1.5 / 1.1, 1.5 / 1.1, 1.5 / 1.1)
    assert host_move(SampleSet([0.0, 1.0], "a"), refs) is None


def test_zero_medians():
    runs = [5, 5]
    zero = sampled([0.0] * 10, "a", runs)
    assert judge_shift(zero, sampled([0.0] * 10, "b", runs), 0.05).direction == "same"
    up = judge_shift(zero, sampled([1.0] * 10, "b", runs), 0.05)
    assert (up.direction, up.ratio) == ("unclear", None)
    crossing = judge_shift(sampled([0.0] * 4 + [1.0] * 6, "a", runs), sampled([1.0] * 10), 0.05)
    assert crossing.direction == "unclear"  # a resampled baseline median of 0: no ratio


def test_a_wide_interval_is_unclear():
    rng = random.Random(1)
    base = sampled([10.0 * rng.choice((1.0, 1.5)) for _ in range(30)], "a", [10] * 3)
    other = sampled([10.3 * rng.choice((1.0, 1.5)) for _ in range(30)], "b", [10] * 3)
    shift = judge_shift(base, other, 0.05)
    assert (shift.direction, shift.reason) == ("unclear", WIDE_INTERVAL)


def test_strips_share_a_fenced_range():
    rng = random.Random(5)
    a = SampleSet([rng.gauss(10, 1) for _ in range(30)], "a")
    b = SampleSet([rng.gauss(14, 1) for _ in range(30)] + [1000.0], "b")
    low, high = strip_range([a, b])
    assert low == a.ordered[0]
    assert high < 100  # the outlier is past the fence
    strip_a, strip_b = strip_counts([a, b], low, high)
    for counts, s in ((strip_a, a), (strip_b, b)):
        assert len(counts) == 8
        assert sum(counts) == s.n
    assert strip_b[-1] >= 1  # the outlier counts in the last bin
    assert strip_a[:4] > strip_a[4:]
    assert strip_counts([SampleSet([low, high], "c")], low, high) == [[1, 0, 0, 0, 0, 0, 0, 1]]
    assert strip_range([SampleSet([3.0, 3.0], "a"), SampleSet([3.0], "b")]) is None


def test_ratios_beyond_a_double_are_unclear_not_infinite():
    tiny, huge = sampled([1e-300] * 10, "a", [5, 5]), sampled([1e300] * 10, "b", [5, 5])
    out = judge_shift(tiny, huge, 0.05)
    assert (out.direction, out.reason, out.ratio) == ("unclear", "ratio out of range", None)
    assert SampleSet([-1e308, -1e308, 1e308, 1e308], "c").spread is None
