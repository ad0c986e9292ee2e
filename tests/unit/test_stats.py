import pytest

from ostoolkit.stats import judge_noise, percentile, slope, summarize
from ostoolkit.stats.summary import is_bimodal


def test_summarize_odd_count_gives_middle_and_deciles():
    s = summarize([float(x) for x in range(1, 12)])  # 1..11
    assert (s.median, s.p10, s.p90, s.n) == (6.0, 2.0, 10.0, 11)
    assert s.spread == pytest.approx(8 / 6)


def test_summarize_single_sample():
    s = summarize([3.5])
    assert (s.median, s.p10, s.p90, s.n) == (3.5, 3.5, 3.5, 1)


def test_summarize_refuses_empty():
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_bimodal_two_clusters():
    assert is_bimodal([5.0, 5.1, 5.0, 5.2, 5.1, 9.0, 9.1, 9.2, 9.0, 9.1])


def test_not_bimodal_one_cluster_or_one_outlier():
    assert not is_bimodal([5.0, 5.1, 5.0, 5.2, 5.1, 5.0, 5.1, 5.2])
    assert not is_bimodal([5.0, 5.1, 5.0, 5.2, 5.1, 5.0, 5.1, 5.2, 5.0, 20.0])


def test_judge_ok_noisy_and_reasons():
    tight = [5.0, 5.1, 5.0, 5.05, 4.95, 5.02]
    assert judge_noise(tight).status == "ok"
    wide = judge_noise([3.0, 4.0, 5.0, 6.0, 7.0])
    assert wide.status == "noisy"
    assert "spread" in wide.reasons[0]
    loaded = judge_noise(tight, other_cpu_share=0.4, steal_share=0.1)
    assert loaded.status == "noisy"
    assert any("other tasks took 40%" in r for r in loaded.reasons)
    assert any("stole" in r for r in loaded.reasons)


def test_judge_interference_limits_and_margins():
    tight = [5.0, 5.1, 5.0, 5.05, 4.95, 5.02]
    assert judge_noise(tight, other_cpu_share=0.09, steal_share=0.01).status == "ok"
    assert judge_noise(tight, other_cpu_share=0.11).status == "noisy"
    assert judge_noise(tight, steal_share=0.03).status == "noisy"
    # what the meter cannot resolve in a short window is added to the limit
    assert judge_noise(tight, other_cpu_share=0.15, other_margin=0.06).status == "ok"
    assert judge_noise(tight, other_cpu_share=0.17, other_margin=0.06).status == "noisy"
    assert judge_noise(tight, steal_share=0.03, steal_margin=0.02).status == "ok"
    # not measured: the spread alone decides
    assert judge_noise(tight, None, None).status == "ok"


def test_judge_bimodal_wins():
    verdict = judge_noise([5.0, 5.1, 5.0, 5.2, 9.0, 9.1, 9.2, 9.0])
    assert verdict.status == "bimodal"


def test_bimodal_keeps_the_interference_reasons():
    verdict = judge_noise([5.0, 5.1, 5.0, 5.2, 9.0, 9.1, 9.2, 9.0], other_cpu_share=0.5)
    assert verdict.status == "bimodal"
    assert verdict.reasons[0] == "samples fall into two separate clusters"
    assert any("other tasks took 50%" in r for r in verdict.reasons)


def test_percentile_interpolates_linearly():
    assert percentile([5.0], 99) == 5.0
    hundred = [float(x) for x in range(1, 101)]
    assert percentile(hundred, 50) == pytest.approx(50.5)
    assert percentile(hundred, 1) == pytest.approx(1.99)
    assert percentile(hundred, 99) == pytest.approx(99.01)
    # the order of the samples does not matter, and it agrees with summarize's deciles
    eleven = [float(x) for x in (7, 1, 11, 3, 9, 5, 2, 10, 4, 8, 6)]
    summary = summarize(eleven)
    assert percentile(eleven, 10) == pytest.approx(summary.p10)
    assert percentile(eleven, 50) == pytest.approx(summary.median)
    assert percentile(eleven, 90) == pytest.approx(summary.p90)


def test_slope_is_the_least_squares_slope():
    assert slope([(0, 100.0), (1, 110.0), (10, 200.0)]) == pytest.approx(10.0)
    assert slope([(1, 5.0), (2, 3.0), (3, 1.0)]) == pytest.approx(-2.0)
    assert slope([(2, 7.0), (4, 7.0)]) == 0.0
    with pytest.raises(ValueError, match="two different"):
        slope([(5, 1.0), (5, 2.0)])
