"""Pure logic of measure.sched and its procfs readers: /proc parsing, per-window arithmetic,
verdicts in words."""

import pytest

from ostoolkit.claims import judge_timeslice
from ostoolkit.errors import InvalidRequest
from ostoolkit.measure.sched import Snapshot, TaskSample, window_figures
from ostoolkit.procfs import (
    SchedStat,
    fair_scheduler,
    parse_config_hz,
    parse_schedstat,
    parse_state_letter,
)


def test_state_letter_survives_spaces_and_parentheses_in_comm():
    assert parse_state_letter("123 (a b) c) R 1 123 123 0 -1") == "R"
    assert parse_state_letter("7 (python3) S 1 7 7 0 -1 4194560") == "S"
    assert parse_state_letter("9 ()) Z 1") == "Z"


def test_schedstat_fields():
    assert parse_schedstat("528952 58400 3\n") == SchedStat(528952, 58400, 3)


def test_schedstat_arithmetic():
    a, b = SchedStat(10, 4, 1), SchedStat(30, 10, 4)
    assert b - a == SchedStat(20, 6, 3)
    assert a + b == SchedStat(40, 14, 5)


def _snap(t, *tasks):
    return Snapshot(t, tuple(TaskSample(SchedStat(*s) if s else None, inv) for s, inv in tasks))


def test_window_figures_from_two_tasks():
    before = _snap(1.0, ((0, 0, 0), 10), ((0, 0, 0), 20))
    # 100 ms window: each task ran 50 ms in 12 slices and waited 48 ms; 25 preemptions in all.
    after = _snap(1.1, ((50_000_000, 48_000_000, 12), 22), ((50_000_000, 48_000_000, 12), 33))
    w = window_figures(before, after)
    assert w.elapsed_s == pytest.approx(0.1)
    assert w.slice_ms == pytest.approx(100 / 24)
    assert w.wait_per_slice_ms == pytest.approx(96 / 24)
    assert w.involuntary_per_s == pytest.approx(250)
    assert w.busy_share == pytest.approx(1.0)
    assert w.run_shares == pytest.approx((0.5, 0.5))


def test_window_without_a_new_slice_has_no_slice_figure():
    before = _snap(0.0, ((0, 0, 5), 0), ((0, 0, 5), 0))
    after = _snap(0.05, ((50_000_000, 0, 5), 0), ((0, 50_000_000, 5), 0))
    w = window_figures(before, after)
    assert w.slice_ms is None
    assert w.wait_per_slice_ms is None
    assert w.busy_share == pytest.approx(1.0)


def test_window_without_schedstat_keeps_psutil_counts():
    w = window_figures(_snap(0.0, (None, 1), (None, 2)), _snap(0.5, (None, 4), (None, 5)))
    assert (w.slice_ms, w.wait_per_slice_ms, w.busy_share, w.run_shares) == (None,) * 4
    assert w.involuntary_per_s == pytest.approx(12)


def test_verdict_in_words():
    assert judge_timeslice(2.84) == "2.8 ms: milliseconds, as the article says"
    assert judge_timeslice(0.4) == "0.40 ms: shorter than a millisecond here"
    assert judge_timeslice(150) == ("150 ms: longer than the article's milliseconds (over 100 ms)")


def test_config_hz():
    assert parse_config_hz("# CONFIG_HZ_1000 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n") == 250
    assert parse_config_hz("CONFIG_NO_HZ=y\n") is None


def test_fair_scheduler_by_release():
    assert fair_scheduler("6.18.44-fc") == "EEVDF"
    assert fair_scheduler("6.6.0") == "EEVDF"
    assert fair_scheduler("5.15.0-91-generic") == "CFS"
    assert fair_scheduler("weird") == "unknown"


def test_a_bad_timeslice_request_is_refused_as_invalid_before_any_fork():
    from ostoolkit.measure.sched import measure_timeslice

    with pytest.raises(InvalidRequest, match="duration_s must be > 0"):
        measure_timeslice(duration_s=0)
    with pytest.raises(InvalidRequest, match="windows >= 1"):
        measure_timeslice(windows=0)


def test_timeslice_defaults_are_the_quick_preset():
    import inspect

    from ostoolkit.measure.sched import TimesliceConfig, measure_timeslice

    quick, params = TimesliceConfig.quick(), inspect.signature(measure_timeslice).parameters
    assert params["duration_s"].default == quick.duration_s
    assert params["windows"].default == quick.windows
    assert quick.steps() == quick.windows
