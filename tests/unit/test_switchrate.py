"""switch-rate's pure parts: /proc readers on fixture text, perf_event_attr, the PMU paths."""

import ctypes
import errno
import os
import struct

import pytest

from ostoolkit.measure import pmu as hardware
from ostoolkit.measure import switchrate
from ostoolkit.measure.interference import Interference
from ostoolkit.measure.pmu import (
    Counters,
    PerfEventAttr,
    attr_bit,
    make_attr,
    open_counters,
    parse_perf_stat,
    pmu_status,
)
from ostoolkit.measure.switchrate import (
    ModelRun,
    RateConfig,
    Window,
    cycle_results,
    decade,
    judge_instruction_rate,
    judge_rate,
    per_cpu_rate,
    per_cpu_table,
    window_between,
)
from ostoolkit.procfs import read_cpu_mhz, read_cpu_schedstat, read_ctxt, read_perf_paranoid
from ostoolkit.report import make_result

PROC_STAT = """cpu  1437 0 1840 96313 31 0 44 0 0 0
cpu0 705 0 912 48203 14 0 22 0 0 0
cpu1 732 0 928 48110 17 0 22 0 0 0
intr 300000 0 9 0 0
ctxt 65821066
btime 1700000000
processes 4242
procs_running 1
procs_blocked 0
"""
DOMAIN = "domain0 03 " + " ".join(["0"] * 45)
SCHEDSTAT_V15 = f"""version 15
timestamp 4295037633
cpu0 0 0 87342 33064 41870 28312 81262839221 20101924622 54278
{DOMAIN}
cpu1 0 0 91102 36004 43005 29011 79262839221 21101924622 55010
{DOMAIN}
"""
CPUINFO_NOMINAL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
cpu MHz\t\t: 2112.006
"""
CPUINFO_VM = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
cpu MHz\t\t: 2599.998
"""
PERF_STAT_NO_PMU = """<not supported>,,instructions,0,100.00,,
<not supported>,,cycles,0,100.00,,
10005,,context-switches,20364830,100.00,,
"""
PERF_STAT_HYBRID = """# started on Mon
1200000,,instructions:u,20364830,100.00,,
100,,cpu_core/cycles/,20364830,100.00,,
50,,cpu_atom/cycles/,20364830,100.00,,
10005,,context-switches:u,20364830,100.00,,
"""


def fake_proc(tmp_path, **files):
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


# -- /proc and /sys readers ----------------------------------------------------------------


def test_ctxt_is_read_from_proc_stat(tmp_path):
    assert read_ctxt(fake_proc(tmp_path, stat=PROC_STAT)) == 65821066
    assert read_ctxt(fake_proc(tmp_path, stat="cpu  1 2 3 4\n")) is None


def test_schedstat_gives_each_cpus_schedule_calls_idle_picks_and_timeslices(tmp_path):
    # sched-stats.rst, cpu<N>: 3) schedule() calls 4) times it left the CPU idle 9) timeslices
    assert read_cpu_schedstat(fake_proc(tmp_path, schedstat=SCHEDSTAT_V15)) == {
        0: (87342, 33064, 54278),
        1: (91102, 36004, 55010),
    }
    newer = SCHEDSTAT_V15.replace("version 15", "version 17")
    assert read_cpu_schedstat(fake_proc(tmp_path, schedstat=newer))[1] == (91102, 36004, 55010)


def test_schedstat_older_than_15_or_missing_gives_nothing(tmp_path):
    older = SCHEDSTAT_V15.replace("version 15", "version 14")
    assert read_cpu_schedstat(fake_proc(tmp_path, schedstat=older)) == {}
    assert read_cpu_schedstat(tmp_path / "nowhere") == {}


def test_cpu_clock_prefers_the_nominal_one_in_the_model_name(tmp_path):
    assert read_cpu_mhz(fake_proc(tmp_path, cpuinfo=CPUINFO_NOMINAL)) == (
        1900.0,
        "/proc/cpuinfo model name",
    )
    assert read_cpu_mhz(fake_proc(tmp_path, cpuinfo=CPUINFO_VM)) == (
        2599.998,
        "/proc/cpuinfo cpu MHz",
    )
    mhz, why = read_cpu_mhz(fake_proc(tmp_path, cpuinfo="processor\t: 0\nBogoMIPS\t: 50.00\n"))
    assert mhz == 0.0
    assert why == "no CPU clock"


def test_perf_paranoid(tmp_path):
    assert read_perf_paranoid(fake_proc(tmp_path, sys__kernel__perf_event_paranoid="2\n")) == 2
    assert read_perf_paranoid(tmp_path / "nowhere") is None


# -- windows ---------------------------------------------------------------------------------


def test_a_window_between_two_edges():
    start = (1.0, 100, {0: (5, 3, 10), 1: (7, 4, 20)})
    end = (1.5, 350, {0: (6, 9, 40)})  # CPU 1's line could not be read at the end
    window = window_between(start, end)
    assert window == Window(0.5, 250, {0: 30}, {0: 36})  # switches: 30 to a task, 6 to idle
    assert window.rate == 500.0


def test_a_cpus_switches_need_schedstats_counting():
    # kernel.sched_schedstats off: schedule() calls and idle picks stand still, slices do not
    start = (1.0, 100, {0: (5, 3, 10), 1: (7, 4, 20)})
    end = (1.5, 350, {0: (5, 3, 40), 1: (7, 4, 25)})
    assert window_between(start, end) == Window(0.5, 250, {0: 30, 1: 5}, {})


def test_per_cpu_the_host_count_is_shared_by_the_online_cpus_not_the_allowed_ones():
    # taskset -c 0 on a 2-CPU host: ctxt's 122 a second are both CPUs', about 61 each
    windows = [Window(0.5, 61, {}), Window(0.5, 60, {}), Window(0.5, 62, {})]
    assert per_cpu_rate(windows, [0], 2) == (61.0, switchrate.SHARED_COUNT)
    assert per_cpu_rate([], [0], 2) == (0.0, switchrate.SHARED_COUNT)


def test_per_cpu_the_allowed_cpus_own_counts_where_schedstat_has_them():
    windows = [Window(0.5, 61, {}, {0: 20, 1: 41}), Window(0.5, 60, {}, {0: 30, 1: 30})]
    assert per_cpu_rate(windows, [0], 2) == (50.0, switchrate.OWN_COUNTS)  # 40 and 60 a second
    assert per_cpu_rate(windows, [0, 1], 2) == (60.5, switchrate.OWN_COUNTS)  # their mean
    gap = [*windows, Window(0.5, 60, {}, {1: 60})]  # CPU 0's line unread once: shared instead
    assert per_cpu_rate(gap, [0], 2) == (120.0 / 2, switchrate.SHARED_COUNT)


def test_config_presets_and_steps():
    full, quick = RateConfig.full(), RateConfig.quick()
    assert quick.duration_s < full.duration_s
    assert full.window_s == pytest.approx(full.duration_s / full.windows)
    assert full.steps() == 2 * full.windows


# -- struct perf_event_attr ------------------------------------------------------------------

OFFSETS = {
    "type": 0,
    "size": 4,
    "config": 8,
    "sample_period": 16,
    "sample_type": 24,
    "read_format": 32,
    "flags": 40,
    "wakeup_events": 48,
    "bp_type": 52,
    "config1": 56,
    "config2": 64,
    "branch_sample_type": 72,
    "sample_regs_user": 80,
    "sample_stack_user": 88,
    "clockid": 92,
    "sample_regs_intr": 96,
    "aux_watermark": 104,
    "sample_max_stack": 108,
    "aux_sample_size": 112,
    "sig_data": 120,
    "config3": 128,
}


def test_perf_event_attr_has_the_kernels_layout():
    assert ctypes.sizeof(PerfEventAttr) == 136  # PERF_ATTR_SIZE_VER8
    for name, offset in OFFSETS.items():
        assert getattr(PerfEventAttr, name).offset == offset, name


def test_bitfield_bits_follow_the_byte_order():
    assert [attr_bit(bit, "little") for bit in (0, 1, 5)] == [1, 2, 32]
    assert [attr_bit(bit, "big") for bit in (0, 1, 5)] == [1 << 63, 1 << 62, 1 << 58]


def test_attr_counts_a_hardware_event_inherited_and_user_only_when_asked():
    attr = make_attr(1, user_only=False)
    assert (attr.type, attr.size, attr.config, attr.read_format) == (0, 136, 1, 3)
    assert attr.flags == attr_bit(1)  # inherit; enabled from the start; kernel counted
    user = make_attr(0, user_only=True)
    assert user.config == 0
    assert user.flags == attr_bit(1) | attr_bit(5) | attr_bit(6)


# -- opening the counters --------------------------------------------------------------------


class FakeOpen:
    """perf_event_open stand-in: fails with the errnos given in turn, then gives real fds."""

    def __init__(self, *errnos):
        self.errnos = list(errnos)
        self.attrs = []
        self.fds = []

    def __call__(self, attr):
        self.attrs.append((attr.config, attr.flags))
        if self.errnos:
            code = self.errnos.pop(0)
            raise OSError(code, os.strerror(code))
        fd = os.open(os.devnull, os.O_RDONLY)
        self.fds.append(fd)
        return fd


@pytest.fixture
def unrestricted(monkeypatch):
    monkeypatch.setattr(hardware, "read_perf_paranoid", lambda: 1)


def test_no_pmu_is_one_reason_and_no_retry(monkeypatch, unrestricted):
    opener = FakeOpen(errno.ENOENT)
    monkeypatch.setattr(hardware, "perf_event_open", opener)
    reason = open_counters()
    assert reason == "perf_event_open: ENOENT, the CPU shows no PMU, usual in a VM"
    assert len(opener.attrs) == 1


def test_pmu_unavailable_is_data_and_exactly_one_warning_line(monkeypatch, unrestricted):
    monkeypatch.setattr(hardware, "perf_event_open", FakeOpen(errno.EOPNOTSUPP))
    pmu, warnings = pmu_status()
    assert pmu == {"available": False, "reason": pmu["reason"]}
    assert "EOPNOTSUPP" in pmu["reason"]
    assert len(warnings) == 1
    assert "\n" not in warnings[0]
    assert warnings[0].startswith("no hardware counters (perf_event_open: EOPNOTSUPP")


def test_unknown_machine_means_no_syscall(monkeypatch, unrestricted):
    monkeypatch.setattr(hardware.platform, "machine", lambda: "vax")
    with pytest.raises(OSError, match="vax") as err:
        hardware.perf_event_open(make_attr(1, False))
    assert err.value.errno == errno.ENOSYS
    assert "ENOSYS" in pmu_status()[0]["reason"]


def test_refused_kernel_counting_falls_back_to_user_space(monkeypatch, unrestricted):
    opener = FakeOpen(errno.EACCES)
    monkeypatch.setattr(hardware, "perf_event_open", opener)
    counters = open_counters()
    assert isinstance(counters, Counters)
    assert counters.user_only
    kernel_flag = attr_bit(5)
    assert not opener.attrs[0][1] & kernel_flag
    assert all(flags & kernel_flag for _, flags in opener.attrs[1:])
    assert sorted(counters.fds) == ["cycles", "instructions"]
    pmu, warnings = pmu_status()  # opens (and closes) another pair
    assert pmu == {"available": True, "events": ["instructions", "cycles"], "user_only": False}
    assert warnings == []  # this fake refused only once
    counters.close()
    assert counters.fds == {}


def test_paranoid_host_asks_for_user_space_from_the_start(monkeypatch):
    monkeypatch.setattr(hardware, "read_perf_paranoid", lambda: 2)
    monkeypatch.setattr(hardware.os, "geteuid", lambda: 1000)
    opener = FakeOpen(errno.EACCES)
    monkeypatch.setattr(hardware, "perf_event_open", opener)
    reason = open_counters()
    assert reason == "perf_event_open: EACCES, not permitted to count even user space " + (
        "(perf_event_paranoid)"
    )
    assert opener.attrs[0][1] & attr_bit(5)


def test_counters_scale_a_multiplexed_count():
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, struct.pack("=3Q", 100, 10, 5) + struct.pack("=3Q", 7, 10, 0))
        counters = Counters({"instructions": read_end}, False)
        assert counters.read() == {"instructions": 200.0}  # ran half the time it was enabled
        assert counters.read() == {"instructions": 0.0}  # never ran
    finally:
        os.close(read_end)
        os.close(write_end)


# -- perf stat -------------------------------------------------------------------------------


def test_perf_stat_not_supported_reads_as_none():
    assert parse_perf_stat(PERF_STAT_NO_PMU) == {
        "instructions": None,
        "cycles": None,
        "context-switches": 10005.0,
    }


def test_perf_stat_adds_a_hybrid_cpus_core_types_and_drops_modifiers():
    assert parse_perf_stat(PERF_STAT_HYBRID) == {
        "instructions": 1200000.0,
        "cycles": 150.0,
        "context-switches": 10005.0,
    }


def test_missing_perf_is_one_warning(monkeypatch):
    monkeypatch.setattr(hardware.shutil, "which", lambda name: None)
    findings, warnings, data = hardware.perf_stat_check(0, 100)
    assert (findings, data) == ([], {})
    assert warnings == ["perf stat cross-check skipped: perf is not installed (Debian: linux-perf)"]


# -- results and verdicts --------------------------------------------------------------------

LOADED = Interference(0.0, 0.0, (1,), 1.0)


def test_cycles_from_the_clock_without_counters():
    run = ModelRun(net_us=[1.0, 1.5, 2.0], switches_per_hop=[1.0, 1.0, 1.0], iterations=500)
    results, warnings = cycle_results("process", run, 1, (2600.0, "/proc/cpuinfo cpu MHz"), LOADED)
    assert warnings == []
    assert [r.id for r in results] == ["switch.process.cycles"]
    cycles = results[0]
    assert cycles.unit == "number"
    assert cycles.samples == (2600.0, 3900.0, 5200.0)
    assert cycles.extra["cycles_from"].startswith("net time x 2,600 MHz")
    assert cycles.extra["mhz_source"] == "/proc/cpuinfo cpu MHz"


def test_counted_cycles_are_preferred_and_instructions_reported():
    run = ModelRun(net_us=[1.0], switches_per_hop=[1.0])
    run.counted = {"instructions": [9000.0], "cycles": [3000.0]}
    results, _ = cycle_results("thread", run, 1, (2600.0, "cpu MHz"), LOADED)
    by_id = {r.id: r for r in results}
    assert by_id["switch.thread.cycles"].samples == (3000.0,)
    assert by_id["switch.thread.cycles"].extra["cycles_from"].startswith("counted")
    assert by_id["switch.thread.instructions"].samples == (9000.0,)


def test_no_clock_and_no_counters_gives_no_cycles():
    run = ModelRun(net_us=[1.0], switches_per_hop=[1.0])
    assert cycle_results("process", run, 1, (0.0, "no CPU clock"), LOADED) == ([], [])


def test_a_negative_net_time_gives_no_cycles_and_says_why():
    """Issue 21: under a CPU quota the clock-derived cycles went down to -39,988."""
    run = ModelRun(net_us=[1.0, -15.0, 2.0], switches_per_hop=[1.0, 1.0, 1.0])
    results, warnings = cycle_results("thread", run, 1, (2600.0, "cpu MHz"), LOADED)
    assert results == []
    assert len(warnings) == 1
    assert "cycles not reported" in warnings[0]
    assert "negative cost" in warnings[0]


def rate(id, median, **extra):
    return make_result(id, id, "per_s", [median], extra=extra)


def test_decades_in_words():
    assert decade(5) == "fewer than ten times"
    assert decade(95) == "tens of times"
    assert decade(100) == "hundreds of times"
    assert decade(999) == "hundreds of times"
    assert decade(710_000) == "hundreds of thousands of times"
    assert decade(3e6) == "millions of times"


def idle_rate(median, cpus, online, per_cpu, source=switchrate.SHARED_COUNT):
    extra = {"cpus": cpus, "online_cpus": online, "per_cpu": per_cpu, "per_cpu_from": source}
    return rate("rate.switches_per_s", median, **extra)


def test_verdict_on_hundreds_a_second():
    loaded = rate("rate.switches_per_s.pingpong", 710_000, cpu=1)
    quiet = judge_rate(idle_rate(95, [0, 1], 2, 47.5), loaded)
    assert "tens of times a second (95 on its 2 online CPUs, 48 per CPU: " in quiet
    assert "no per-CPU counts here): not hundreds; " in quiet
    assert "on CPU 1, hundreds of thousands of times (710,000)" in quiet
    usual = judge_rate(idle_rate(491, [0, 1], 2, 245.5), loaded)
    assert "hundreds of times a second (491 on its 2 online CPUs, 246 per CPU: " in usual
    assert "): as the article says" in usual


def test_verdict_per_cpu_under_taskset_counts_every_online_cpu():
    loaded = rate("rate.switches_per_s.pingpong", 400_000, cpu=0)
    shared = judge_rate(idle_rate(122, [0], 2, 61.0), loaded)
    assert "(122 on its 2 online CPUs, 61 per CPU: the host's count over them, " in shared
    assert "no per-CPU counts here): as the article says" in shared
    assert "1 CPUs" not in shared
    own = judge_rate(idle_rate(122, [0], 2, 58.0, switchrate.OWN_COUNTS), loaded)
    assert "(122 on its 2 online CPUs; 58 on CPU 0, by its own count in /proc/schedstat)" in own
    both = judge_rate(idle_rate(122, [0, 1], 2, 61.0, switchrate.OWN_COUNTS), loaded)
    assert "; 61 per CPU on CPUs 0-1, by their own counts in /proc/schedstat)" in both
    alone = judge_rate(idle_rate(122, [0], 1, 122.0), loaded)
    assert "(122 on its 1 online CPU, 122 per CPU" in alone


def test_verdict_on_billions_of_instructions():
    assert judge_instruction_rate(2.5e9, False).endswith(
        "2.50 billion instructions a second: as the article says"
    )
    slow = judge_instruction_rate(4e8, True)
    assert "0.40 billion instructions a second in user space alone" in slow
    assert slow.endswith("fewer than the article's billions")


def test_per_cpu_timeslices_become_a_table_the_renderer_draws():
    from ostoolkit.render import render
    from ostoolkit.report import Measurement, build_report

    idle = [Window(0.5, 100, {0: 20, 1: 30}), Window(0.5, 120, {0: 40, 1: 30})]
    loaded = [Window(0.25, 50_000, {0: 2, 1: 25_000})]
    table = per_cpu_table(idle, loaded)
    assert table["rows"] == [
        {"cpu": 0, "idle": 60.0, "ping-pong": 8.0},
        {"cpu": 1, "idle": 60.0, "ping-pong": 100_000.0},
    ]
    report = build_report("switch-rate", [], Measurement((), data={"table": table}), {}, "", 0)
    for fmt in ("table", "markdown"):
        assert "100,000" in render(report, fmt)
