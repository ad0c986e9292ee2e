"""The interference meter's arithmetic on fake /proc text, a fake clock and fake own times."""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from ostoolkit.errors import ProcUnreadable
from ostoolkit.measure.interference import (
    Interference,
    Meter,
    Reading,
    Sources,
    interference_between,
)
from ostoolkit.procfs import (
    USER_HZ_S,
    CpuTimes,
    parse_cpu_times,
    parse_pid_stat,
    read_tree_times,
)
from ostoolkit.report import make_result
from ostoolkit.stats import OTHER_CPU_LIMIT

TICK = 0.004  # HZ=250
TIGHT = [5.0, 5.1, 5.0, 5.05, 4.95, 5.02]


def stat_text(*cpus: tuple[int, ...], user_hz: int = 100) -> str:
    """/proc/stat text with one cpuN line per tuple of fields (in USER_HZ units)."""
    total = [sum(col) for col in zip(*cpus, strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{i} " + " ".join(map(str, fields)) for i, fields in enumerate(cpus)]
    lines += ["intr 7933352 0 0", "ctxt 123", "btime 1700000000", "procs_running 1"]
    return "\n".join(lines) + "\n"


# -- /proc/stat ---------------------------------------------------------------------------


def test_busy_is_user_nice_system_irq_softirq_and_steal_apart():
    #            user nice system idle iowait irq softirq steal guest guest_nice
    text = stat_text((100, 20, 50, 9000, 30, 5, 7, 11, 40, 0), (1, 0, 1, 100, 0, 0, 0, 0, 0, 0))
    times = parse_cpu_times(text, user_hz=100)
    assert set(times) == {0, 1}  # the aggregate "cpu" line is left out
    # idle and iowait are not busy; guest is already inside user (not added again)
    assert times[0].busy == pytest.approx((100 + 20 + 50 + 5 + 7) / 100)
    assert times[0].steal == pytest.approx(0.11)
    assert times[1] == CpuTimes(0.02, 0.0)


def test_an_old_kernel_without_steal_reads_zero_steal():
    times = parse_cpu_times("cpu0 10 0 10 500 0 0 0\n", user_hz=100)
    assert times[0] == CpuTimes(0.2, 0.0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no per-CPU lines"),
        ("cpu  1 2 3 4 5 6 7\nintr 1\n", "no per-CPU lines"),
        ("cpu0 1 2 x 4 5 6 7\n", "not a number"),
        ("cpu0 1 2 3\n", "3 fields"),
    ],
)
def test_unreadable_proc_stat_is_refused(text, problem):
    with pytest.raises(ProcUnreadable, match=problem):
        parse_cpu_times(text)


# -- /proc/PID/stat and the process tree --------------------------------------------------


def pid_stat(
    pid: int,
    ppid: int,
    utime: int,
    stime: int,
    cutime: int = 0,
    cstime: int = 0,
    comm: str = "python",
    start: int = 5000,
) -> str:
    """A /proc/PID/stat line with the fields the reader uses; the rest are zeros."""
    fields = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime), str(cutime), str(cstime)]
    fields += ["20", "0", "1", "0", str(start)] + ["0"] * 30
    return f"{pid} ({comm}) " + " ".join(fields) + "\n"


def test_pid_stat_fields_after_a_name_with_spaces_and_parens():
    task = parse_pid_stat(pid_stat(42, 7, 150, 50, 300, 100, comm="a) (b c)"), user_hz=100)
    assert (task.pid, task.ppid, task.start_ticks) == (42, 7, 5000)
    assert task.cpu_s == pytest.approx(2.0)
    assert task.children_s == pytest.approx(4.0)
    with pytest.raises(ProcUnreadable):
        parse_pid_stat("42 (python) S 7")


def fake_proc(tmp_path: Path, tasks: dict[int, tuple[int, int]], children_files: bool) -> Path:
    """A /proc holding ``tasks`` {pid: (ppid, utime ticks)}, each with one thread."""
    proc = tmp_path / "proc"
    for pid, (ppid, utime) in tasks.items():
        task_dir = proc / str(pid) / "task" / str(pid)
        task_dir.mkdir(parents=True)
        (proc / str(pid) / "stat").write_text(pid_stat(pid, ppid, utime, 0))
        if children_files:
            kids = [str(p) for p, (parent, _) in tasks.items() if parent == pid]
            (task_dir / "children").write_text(" ".join(kids) + (" " if kids else ""))
    (proc / "self").mkdir(parents=True, exist_ok=True)
    return proc


@pytest.mark.parametrize("children_files", [True, False])
def test_tree_holds_every_live_descendant_and_nothing_else(tmp_path, children_files):
    #        pid: (ppid, utime) — 10 is the root; 11, 12 its children; 13 a grandchild;
    #        20 and 21 belong to someone else
    tasks = {10: (1, 5), 11: (10, 100), 12: (10, 7), 13: (11, 40), 20: (1, 999), 21: (20, 1)}
    proc = fake_proc(tmp_path, tasks, children_files)
    tree = read_tree_times(10, proc)
    assert {pid for pid, _ in tree} == {11, 12, 13}
    assert tree[(11, 5000)].cpu_s == pytest.approx(100 * USER_HZ_S)


# -- the arithmetic of one window ---------------------------------------------------------


def reading(t, cpus, own, tree=None):
    """A reading at time t with per-CPU (busy, steal) seconds and own CPU seconds."""
    times = {cpu: CpuTimes(busy, steal) for cpu, (busy, steal) in cpus.items()}
    return Reading(t, times, own, dict(tree or {}))


def test_own_time_only_means_no_interference():
    before = reading(100.0, {0: (500.0, 1.0)}, own=10.0)
    after = reading(101.0, {0: (501.0, 1.0)}, own=11.0)  # one busy second, all ours
    result = interference_between(before, after, [0], TICK)
    assert result.other_cpu_share == 0.0
    assert result.steal_share == 0.0
    assert result.cpus == (0,)
    assert result.window_s == pytest.approx(1.0)
    # a fully busy CPU has no sampling error: only two USER_HZ units of rounding
    assert result.other_margin == pytest.approx(2 * USER_HZ_S)


def test_a_competitor_on_our_cpu_takes_its_share():
    before = reading(0.0, {0: (0.0, 0.0), 1: (0.0, 0.0)}, own=0.0)
    # CPU 1 was busy all 2 s: 1 s of it ours, 1 s another task's; CPU 0 idle
    after = reading(2.0, {0: (0.0, 0.0), 1: (2.0, 0.04)}, own=1.0)
    result = interference_between(before, after, [1], TICK)
    assert result.other_cpu_share == pytest.approx(0.5)
    assert result.steal_share == pytest.approx(0.02)
    # metered over both CPUs (unpinned), the same time is a quarter of the capacity
    both = interference_between(before, after, [0, 1], TICK)
    assert both.other_cpu_share == pytest.approx(0.25)


def test_only_the_measured_cpus_count():
    before = reading(0.0, {0: (0.0, 0.0), 1: (0.0, 0.0)}, own=0.0)
    after = reading(1.0, {0: (1.0, 0.5), 1: (1.0, 0.0)}, own=1.0)  # CPU 0: someone else, stolen
    pinned = interference_between(before, after, [1], TICK)
    assert pinned.other_cpu_share == 0.0
    assert pinned.steal_share == 0.0


def test_shares_are_clamped_to_0_1():
    before = reading(0.0, {0: (0.0, 0.0)}, own=0.0)
    ours_elsewhere = reading(1.0, {0: (0.2, 0.0)}, own=0.9)  # own time spent off this CPU
    assert interference_between(before, ours_elsewhere, [0], TICK).other_cpu_share == 0.0


def test_live_descendants_count_as_own_by_their_change():
    child, gone, reused_old, reused_new = (50, 7), (51, 7), (52, 7), (52, 900)
    before = reading(0.0, {0: (0.0, 0.0)}, own=0.0, tree={child: 2.0, gone: 0.5, reused_old: 1.0})
    # child used 0.3 s more; gone exited and was reaped by us (its whole 0.8 s is in own);
    # pid 52 now names a new process that used 0.1 s; a newborn used 0.05 s
    after = reading(
        1.0,
        {0: (0.3 + 0.8 - 0.5 + 0.1 + 0.05 + 0.25, 0.0)},
        own=0.8,
        tree={child: 2.3, reused_new: 0.1, (53, 950): 0.05},
    )
    result = interference_between(before, after, [0], TICK)
    # own = 0.8 (reaped) - 0.5 (its time before the window) + 0.3 + 0.1 + 0.05 - 1.0 (old 52)
    # so other = busy - own = 0.25 + 1.0 (old 52's vanished time is subtracted, not counted)
    assert result.other_cpu_share == pytest.approx(1.0)  # clamped
    no_reuse = replace(after, tree={child: 2.3, reused_old: 1.1, (53, 950): 0.05})
    result = interference_between(before, no_reuse, [0], TICK)
    assert result.other_cpu_share == pytest.approx(0.25)
    # each live descendant adds one USER_HZ unit that the meter cannot resolve
    assert (
        result.other_margin
        > interference_between(
            replace(before, tree={}), replace(no_reuse, tree={}), [0], TICK
        ).other_margin
    )


def test_only_descendants_timed_in_whole_ticks_widen_the_margin():
    tasks = {(50 + i, 7): 0.01 * i for i in range(100)}  # a server's hundred backends
    before = reading(0.0, {0: (0.0, 0.0)}, own=0.0, tree=tasks)
    after = reading(5.0, {0: (4.0, 0.0)}, own=0.0, tree={k: t + 0.03 for k, t in tasks.items()})
    bare = interference_between(replace(before, tree={}), replace(after, tree={}), [0], TICK)
    ticks = interference_between(before, after, [0], TICK)  # rounded: None, all in ticks
    assert ticks.other_margin == pytest.approx(bare.other_margin + 100 * USER_HZ_S / 5.0)
    exact = interference_between(
        replace(before, rounded=frozenset()), replace(after, rounded=frozenset()), [0], TICK
    )
    assert exact.other_margin == pytest.approx(bare.other_margin)  # schedstat: nothing to allow
    one = frozenset({(50, 7)})  # one of them reaped children: /proc/PID/stat's cutime
    mixed = interference_between(
        replace(before, rounded=one), replace(after, rounded=one), [0], TICK
    )
    assert mixed.other_margin == pytest.approx(bare.other_margin + USER_HZ_S / 5.0)
    assert exact.other_cpu_share == ticks.other_cpu_share  # the shares themselves are unchanged


def test_sampling_margin_grows_as_the_window_shrinks_and_is_largest_half_busy():
    def margin(window, busy):
        before = reading(0.0, {0: (0.0, 0.0)}, own=0.0)
        return interference_between(before, reading(window, {0: (busy, 0.0)}, busy), [0], TICK)

    assert margin(0.4, 0.2).other_margin > margin(4.0, 2.0).other_margin
    assert (
        margin(1.0, 0.5).other_margin
        > margin(1.0, 0.9).other_margin
        > margin(1.0, 1.0).other_margin
    )
    # a 0.4 s window on one fully busy CPU resolves about 5 %
    assert margin(0.4, 0.4).other_margin == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("before", "after", "cpus", "why"),
    [
        (
            Reading(0.0, None, 0.0, {}, "/proc/stat: Permission denied"),
            reading(1.0, {0: (1.0, 0.0)}, 1.0),
            [0],
            "Permission denied",
        ),
        (
            reading(0.0, {0: (0.0, 0.0)}, 0.0),
            reading(1.0, {0: (1.0, 0.0)}, 1.0),
            [3],
            "CPU 3 has no line",
        ),
        (
            reading(1.0, {0: (0.0, 0.0)}, 0.0),
            reading(1.0, {0: (0.0, 0.0)}, 0.0),
            [0],
            "an empty window",
        ),
    ],
)
def test_what_cannot_be_measured_is_null_with_a_reason(before, after, cpus, why):
    result = interference_between(before, after, cpus, TICK)
    assert result.other_cpu_share is None
    assert result.steal_share is None
    assert result.note is not None
    assert why in result.note
    assert result.extra() == {"other_cpu_share": None, "steal_share": None}


# -- the meter with fake sources ----------------------------------------------------------


class FakeHost:
    """A clock, /proc/stat and own times that the test moves forward by hand."""

    def __init__(self, cpus: int = 2) -> None:
        self.now = 5000.0
        self.ticks = [[0] * 10 for _ in range(cpus)]
        self.own = 0.0
        self.unreadable = False
        self.references: list[float | None] = [1.0, 1.5]  # the speed reference, in turn

    def run(
        self, seconds: float, *, cpu: int, ours: float, others: float = 0.0, steal: float = 0.0
    ) -> None:
        """Let ``seconds`` pass; ``cpu`` was busy ``ours + others`` of them."""
        self.now += seconds
        self.own += ours
        self.ticks[cpu][0] += round((ours + others) * 100)
        self.ticks[cpu][7] += round(steal * 100)

    def stat(self) -> dict[int, CpuTimes]:
        if self.unreadable:
            raise ProcUnreadable("/proc/stat: No such file or directory")
        return parse_cpu_times(stat_text(*map(tuple, self.ticks)), user_hz=100)

    def sources(self) -> Sources:
        return Sources(
            clock=lambda: self.now,
            cpu_times=self.stat,
            own_s=lambda: self.own,
            tree=lambda also: ({}, frozenset()),
            tick_s=lambda: TICK,
            reference=lambda: self.references.pop(0) if self.references else None,
        )


def test_an_idle_host_right_after_heavy_work_comes_out_ok():
    """The load average would be high after this; the meter sees only the window."""
    host = FakeHost()
    for cpu in (0, 1):  # a minute of heavy work by others (and earlier runs) before the window
        host.run(60.0, cpu=cpu, ours=30.0, others=30.0)
    with Meter([1], sources=host.sources()) as meter:
        host.run(0.45, cpu=1, ours=0.45)  # a same-core switch run: CPU 1 busy, all ours
    interference = meter.result
    assert interference.other_cpu_share == 0.0
    result = make_result("switch.process.same_core", "p", "us", TIGHT, interference=interference)
    assert result.status == "ok"
    assert result.extra == {
        "other_cpu_share": 0.0,
        "steal_share": 0.0,
        "reference_us": 1.25,
        "reference_samples_us": [1.0, 1.5],
    }


def test_the_speed_reference_is_taken_at_both_ends_and_averaged():
    """Before and after the window; a side that could not be taken is left out, none is null."""
    host = FakeHost()
    with Meter([0], sources=host.sources()) as meter:
        host.run(0.5, cpu=0, ours=0.5)
    assert meter.result.reference_us == 1.25
    host.references = [None, 2.0]
    with Meter([0], sources=host.sources()) as meter:
        host.run(0.5, cpu=0, ours=0.5)
    assert meter.result.reference_us == 2.0
    host.references = []
    with Meter([0], sources=host.sources()) as meter:
        host.run(0.5, cpu=0, ours=0.5)
    assert meter.result.reference_us is None
    assert "reference_us" not in meter.result.extra()


def test_a_competitor_makes_the_figure_noisy_with_the_reason():
    host = FakeHost()
    with Meter([1], sources=host.sources()) as meter:
        host.run(0.45, cpu=1, ours=0.25, others=0.2)
    result = make_result("switch.process.same_core", "p", "us", TIGHT, interference=meter.result)
    assert result.status == "noisy"
    assert result.extra["other_cpu_share"] == pytest.approx(0.4444, abs=1e-4)
    assert any("other tasks took 44% of the measured CPUs' time" in n for n in result.notes)


def test_steal_makes_the_figure_noisy():
    host = FakeHost()
    with Meter([0, 1], sources=host.sources()) as meter:
        host.run(2.0, cpu=0, ours=1.0, steal=0.2)
    result = make_result("spawn.fork", "f", "us", TIGHT, interference=meter.result)
    assert result.extra["steal_share"] == pytest.approx(0.05)
    assert result.status == "noisy"
    assert any("hypervisor stole 5.0%" in n for n in result.notes)


def test_unmetered_cpus_default_to_the_affinity_set():
    host = FakeHost(cpus=64)
    with Meter(sources=host.sources()) as meter:
        host.run(1.0, cpu=0, ours=0.5)
    assert meter.result.cpus == tuple(sorted(os.sched_getaffinity(0)))


def test_unreadable_proc_stat_falls_back_to_the_spread_with_a_note():
    host = FakeHost()
    host.unreadable = True
    with Meter([0], sources=host.sources()) as meter:
        host.run(1.0, cpu=0, ours=1.0)
    result = make_result("switch.thread.same_core", "t", "us", TIGHT, interference=meter.result)
    assert result.extra == {
        "other_cpu_share": None,
        "steal_share": None,
        "reference_us": 1.25,
        "reference_samples_us": [1.0, 1.5],
    }
    assert result.status == "ok"
    assert any("CPU interference not measured" in n for n in result.notes)
    wide = make_result(
        "switch.thread.same_core", "t", "us", [3.0, 4.0, 5.0, 6.0, 7.0], interference=meter.result
    )
    assert wide.status == "noisy"


def test_the_result_before_the_window_closes_is_an_error():
    meter = Meter([0], sources=FakeHost().sources())
    with pytest.raises(RuntimeError):
        _ = meter.result
    with meter, pytest.raises(RuntimeError):
        _ = meter.result
    with pytest.raises(ZeroDivisionError), Meter([0], sources=FakeHost().sources()) as failed:
        _ = 1 / 0
    with pytest.raises(RuntimeError):  # a window that raised has no result
        _ = failed.result


# -- what the shares judge ----------------------------------------------------------------


BUSY = Interference(0.5, 0.0, (0,), 1.0)


@pytest.mark.parametrize("unit", ["bytes", "count", "bool"])
def test_memory_and_counts_carry_the_shares_as_context_only(unit):
    result = make_result("memory.process.uss_per_worker", "m", unit, TIGHT, interference=BUSY)
    assert result.status == "ok"
    assert result.extra["other_cpu_share"] == 0.5


@pytest.mark.parametrize("unit", ["us", "ms", "per_s"])
def test_times_and_rates_are_judged(unit):
    assert make_result("x", "x", unit, TIGHT, interference=BUSY).status == "noisy"


def test_context_only_interference_never_judges_but_says_why():
    context = replace(BUSY, judged=False, note="the server's process was not found")
    result = make_result("conn.postgres.connect_ms", "c", "ms", TIGHT, interference=context)
    assert result.status == "ok"
    assert result.extra["other_cpu_share"] == 0.5
    assert "the server's process was not found" in result.notes


def test_shares_are_rounded_to_four_decimals_and_extras_kept():
    interference = Interference(1 / 3, 2 / 3 * 0.01, (0,), 1.0)
    result = make_result("x", "x", "us", TIGHT, interference=interference, extra={"cpus": [0, 0]})
    assert result.extra == {"cpus": [0, 0], "other_cpu_share": 0.3333, "steal_share": 0.0067}


def test_the_limit_is_a_tenth():
    assert OTHER_CPU_LIMIT == 0.10
    below = Interference(0.099, 0.0, (0,), 1.0)
    assert make_result("x", "x", "us", TIGHT, interference=below).status == "ok"


def test_a_quota_that_stopped_the_tasks_makes_times_throttled_but_not_sizes():
    from ostoolkit.cgroup import Throttling

    throttled = Interference(
        0.0, 0.0, (0,), 1.0, throttled=Throttling(10, 9, 700_000.0), cpu_limit=0.2
    )
    result = make_result(
        "switch.process.same_core", "s", "us", [2.0, 2.1, 2.0], interference=throttled
    )
    assert result.status == "throttled"
    assert "0.20 CPUs" in result.notes[0]
    assert "9 of 10 periods" in result.notes[0]
    assert result.extra["throttled_periods"] == 9
    assert result.extra["quota_periods"] == 10
    size = make_result("memory.x", "m", "bytes", [4096.0], interference=throttled)
    assert size.status == "ok"  # a quota does not change a size


def test_a_quota_that_never_bit_changes_nothing():
    from ostoolkit.cgroup import Throttling

    idle = Interference(0.0, 0.0, (0,), 1.0, throttled=Throttling(10, 0, 0.0), cpu_limit=0.2)
    assert make_result("x", "x", "us", [2.0, 2.1, 2.0], interference=idle).status == "ok"
    unlimited = Interference(0.0, 0.0, (0,), 1.0)
    result = make_result("x", "x", "us", [2.0, 2.1, 2.0], interference=unlimited)
    assert result.status == "ok"
    assert "throttled_periods" not in result.extra
