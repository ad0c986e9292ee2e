"""fork-tree at scale, pure parts: the /proc parsers its snapshot reads, a fake /proc read as
the tree is, the phase clock, the floor and the line that shows them."""

import os

import psutil._pslinux
import pytest

from ostoolkit import procfs
from ostoolkit.errors import ProcUnreadable
from ostoolkit.measure import forktree
from ostoolkit.measure.forktree import STATUS_WORDS, Phases, floor
from ostoolkit.procfs import (
    full_name,
    parse_cmdline,
    parse_private_kb,
    parse_smaps_rollup,
    parse_statm_rss,
    read_process,
)
from ostoolkit.render.tables import tree_timing

ROLLUP = """\
55d0c0de0000-7ffd12345000 ---p 00000000 00:00 0                          [rollup]
Rss:               26676 kB
Pss:                2011 kB
Pss_Dirty:          1020 kB
Shared_Clean:       9812 kB
Shared_Dirty:      15860 kB
Private_Clean:         4 kB
Private_Dirty:      1000 kB
Referenced:        26676 kB
Anonymous:         16860 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
"""


def test_smaps_rollup_uss_is_every_private_line_as_psutil_sums_it():
    assert parse_smaps_rollup(ROLLUP) == 4 + 1000 + 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Rss: 1 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 1 kB\n",  # no [rollup] header
        ROLLUP.replace("Private_Dirty:      1000 kB\n", ""),  # a field missing
        ROLLUP.replace("1000 kB", "lots kB"),
        ROLLUP.replace("1000 kB", "1000 pages"),
    ],
)
def test_a_malformed_smaps_rollup_is_refused(text):
    with pytest.raises(ProcUnreadable):
        parse_smaps_rollup(text)


def test_smaps_private_lines_sum_over_mappings_and_an_empty_one_is_zero():
    text = "a-b r-xp 0 0:0 1 /bin/x\nPrivate_Clean: 8 kB\nPrivate_Dirty: 4 kB\n" * 2
    assert parse_private_kb(text) == 24
    assert parse_private_kb("") == 0  # a kernel thread's smaps


def test_statm_rss_is_field_two_in_pages():
    assert parse_statm_rss("9000 6669 2453 1 0 5000 0\n", page_size=4096) == 6669 * 4096
    with pytest.raises(ProcUnreadable):
        parse_statm_rss("9000\n")


def test_names_cut_by_the_kernel_are_completed_from_argv0_as_psutil_does():
    assert parse_cmdline("/usr/bin/gnome-keyring-daemon\0--start\0") == [
        "/usr/bin/gnome-keyring-daemon",
        "--start",
    ]
    assert parse_cmdline("nginx: worker process") == ["nginx:", "worker", "process"]
    assert parse_cmdline("") == []
    assert full_name("gnome-keyring-d", ["/usr/bin/gnome-keyring-daemon"]) == (
        "gnome-keyring-daemon"
    )
    assert full_name("gnome-keyring-d", ["/usr/bin/other"]) == "gnome-keyring-d"
    assert full_name("cat", ["/usr/bin/catalogue"]) == "cat"  # not cut: as the kernel says


def test_status_words_are_psutils():
    assert psutil._pslinux.PROC_STATUSES == STATUS_WORDS


def fake_proc(root, pid, *, rollup=ROLLUP, stat=None, smaps=None):
    """One process in a fake /proc: stat, statm and smaps_rollup (or smaps)."""
    base = root / str(pid)
    base.mkdir()
    name = "python3 (x) y"  # spaces and a parenthesis, as a command name may hold
    (base / "stat").write_text(stat or f"{pid} ({name}) S 77 {pid} " + "0 " * 40 + "\n")
    (base / "statm").write_text("9000 100 50 1 0 500 0\n")
    if rollup is not None:
        (base / "smaps_rollup").write_text(rollup)
    if smaps is not None:
        (base / "smaps").write_text(smaps)


def test_read_process_from_a_fake_proc(tmp_path):
    fake_proc(tmp_path, 4242)
    seen = read_process(4242, proc=tmp_path)
    assert seen is not None
    assert (seen.pid, seen.ppid, seen.name, seen.state) == (4242, 77, "python3 (x) y", "S")
    assert seen.rss == 100 * os.sysconf("SC_PAGE_SIZE")
    assert seen.uss == 1004 * 1024


def test_without_a_rollup_uss_comes_from_smaps_and_a_gone_process_is_none(tmp_path):
    fake_proc(tmp_path, 5, rollup=None, smaps="Private_Clean: 2 kB\nPrivate_Dirty: 3 kB\n")
    seen = read_process(5, proc=tmp_path)
    assert seen is not None
    assert seen.uss == 5 * 1024
    assert read_process(6, proc=tmp_path) is None  # no such process
    fake_proc(tmp_path, 7, stat="garbage")
    assert read_process(7, proc=tmp_path) is None


def test_a_refused_rollup_leaves_uss_unknown_not_the_process(tmp_path, monkeypatch):
    fake_proc(tmp_path, 8)
    real = procfs.read_proc_bytes

    def refuse_smaps(path, limit=procfs.PROC_READ_LIMIT):
        if "smaps" in path:  # the kernel's ptrace access check says no
            raise PermissionError(13, "Permission denied", path)
        return real(path, limit)

    monkeypatch.setattr(procfs, "read_proc_bytes", refuse_smaps)
    seen = read_process(8, proc=tmp_path)
    assert seen is not None
    assert seen.uss is None
    assert seen.rss > 0


def test_phases_add_up_in_order(monkeypatch):
    clock = iter([1.0, 1.5, 2.0, 2.25, 3.0, 3.5])
    monkeypatch.setattr(forktree.time, "perf_counter", lambda: next(clock))
    phases = Phases()
    with phases.timing("fork"):
        pass
    with phases.timing("snapshot"):
        pass
    with phases.timing("fork"):  # a phase that runs again adds up
        pass
    assert phases.seconds == {"fork": 1.0, "snapshot": 0.25}


def test_the_floor_is_fork_cost_times_processes_over_cpus(monkeypatch):
    monkeypatch.setattr(forktree.os, "sched_getaffinity", lambda pid: {0, 1})
    got = floor([2000.0, 1000.0, 3000.0], processes=1022)
    assert got == {"fork_us": 2000.0, "forks": 3, "processes": 1022, "cpus": 2, "floor_s": 1.022}


def test_tree_timing_shows_the_phases_and_the_floor_in_two_lines():
    data = {
        "phases_s": {"calibrate": 0.015, "fork": 1.1, "snapshot": 0.25, "teardown": 0.5},
        "floor": {"fork_us": 2000.0, "forks": 5, "processes": 1022, "cpus": 2, "floor_s": 1.022},
    }
    assert tree_timing(data) == [
        "phases: calibrate 0.015 s, fork 1.10 s, snapshot 0.250 s, teardown 0.500 s = 1.86 s",
        "floor: fork cost 2.00 ms × 1,022 processes / 2 CPUs = 1.02 s; "
        "fork + teardown took 1.60 s, 1.6× the floor",
    ]
    assert tree_timing({"phases_s": {"snapshot": 0.012}}) == ["phases: snapshot 0.012 s = 0.012 s"]
    assert tree_timing({}) == []
