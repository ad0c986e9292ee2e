"""The cgroup CPU limit and throttling readers, on fake /proc and /sys files."""

from pathlib import Path

import pytest

from ostoolkit.cgroup import (
    Throttling,
    cpu_folders,
    parse_memberships,
    parse_mounts,
    parse_throttling,
    read_limit,
    throttled_between,
    tightest_limit,
)

V1_MOUNTS = (
    "32 31 0:29 / {root}/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "41 31 0:38 / {root}/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
V2_MOUNTS = "30 23 0:27 /kubepods {root} rw - cgroup2 cgroup2 rw,nsdelegate\n"


def test_memberships_name_v2_and_each_v1_controller():
    text = "4:memory:/a\n2:cpu,cpuacct:/docker/x\n0::/user.slice\nbroken line\n"
    assert parse_memberships(text) == {
        "memory": "/a",
        "cpu": "/docker/x",
        "cpuacct": "/docker/x",
        "v2": "/user.slice",
    }


def test_mounts_keep_cgroup_ones_with_their_root_and_controllers():
    mounts = parse_mounts(
        V1_MOUNTS.format(root="/sys/fs/cgroup") + "1 2 0:1 / /proc rw - proc proc rw\n"
    )
    assert [(m.version, m.root, "cpu" in m.controllers) for m in mounts] == [
        (1, "/", True),
        (2, "/", False),
    ]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v1_quota_on_an_ancestor_is_found_from_the_group_up(tmp_path):
    proc_cgroup, mountinfo = tmp_path / "cgroup", tmp_path / "mountinfo"
    write(proc_cgroup, "2:cpu:/outer/inner\n0::/\n")
    write(mountinfo, V1_MOUNTS.format(root=tmp_path))
    folders = cpu_folders(proc_cgroup, mountinfo)
    assert folders == [tmp_path / "cpu/outer/inner", tmp_path / "cpu/outer", tmp_path / "cpu"]
    write(tmp_path / "cpu/outer/inner/cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cpu/outer/inner/cpu.cfs_period_us", "100000\n")
    write(tmp_path / "cpu/outer/cpu.cfs_quota_us", "20000\n")
    write(tmp_path / "cpu/outer/cpu.cfs_period_us", "100000\n")
    limits = tuple(limit for folder in folders if (limit := read_limit(folder)))
    assert len(limits) == 1
    assert limits[0].cpus == pytest.approx(0.2)
    assert limits[0].version == 1


def test_the_cgroup_mount_is_found_after_thousands_of_other_mounts(tmp_path):
    proc_cgroup, mountinfo = tmp_path / "cgroup", tmp_path / "mountinfo"
    write(proc_cgroup, "2:cpu:/outer\n")
    others = "".join(
        f"{100 + i} 31 0:{50 + i} / /mnt/m{i} rw - tmpfs tmpfs rw\n" for i in range(3000)
    )
    write(mountinfo, others + V1_MOUNTS.format(root=tmp_path))
    assert cpu_folders(proc_cgroup, mountinfo) == [tmp_path / "cpu/outer", tmp_path / "cpu"]


def test_v2_reads_cpu_max_below_a_mount_that_shows_part_of_the_tree(tmp_path):
    proc_cgroup, mountinfo = tmp_path / "cgroup", tmp_path / "mountinfo"
    write(proc_cgroup, "0::/kubepods/pod1\n")
    write(mountinfo, V2_MOUNTS.format(root=tmp_path / "fs"))
    folders = cpu_folders(proc_cgroup, mountinfo)
    assert folders == [tmp_path / "fs/pod1", tmp_path / "fs"]
    write(tmp_path / "fs/pod1/cpu.max", "50000 100000\n")
    write(tmp_path / "fs/cpu.max", "max 100000\n")
    found = [read_limit(folder) for folder in folders]
    assert found[1] is None  # "max": no quota
    assert found[0] is not None
    assert found[0].cpus == pytest.approx(0.5)
    assert tightest_limit((found[0],)) == found[0]
    assert tightest_limit(()) is None


def test_no_cgroup_files_mean_no_limit(tmp_path):
    assert cpu_folders(tmp_path / "absent", tmp_path / "absent") == []
    assert read_limit(tmp_path) is None


def test_throttling_counters_of_both_versions():
    v2 = parse_throttling("usage_usec 5\nnr_periods 287\nnr_throttled 283\nthrottled_usec 9000\n")
    assert v2 == Throttling(287, 283, 9000.0)
    v1 = parse_throttling("nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\n")
    assert v1 == Throttling(10, 4, 2000.0)  # ns to µs
    assert parse_throttling("usage_usec 5\n") is None  # no CFS bandwidth counters


def test_the_most_throttled_group_tells_how_much_the_window_was_stopped():
    before = (Throttling(10, 1, 100.0), Throttling(50, 0, 0.0))
    after = (Throttling(12, 1, 100.0), Throttling(60, 9, 700.0))
    assert throttled_between(before, after) == Throttling(10, 9, 700.0)
    assert throttled_between((), ()) is None  # no quota: nothing to say
