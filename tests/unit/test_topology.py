"""CPU topology from sysfs and the placements chosen from it, on fake trees of known machines."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fixtures import make_sys

from ostoolkit.topology import (
    OTHER_CPU,
    PLACEMENT_NAMES,
    cache_sizes,
    format_cpu_list,
    parse_cache_size,
    parse_cpu_list,
    read_cpu,
    survey,
)

KIB = 1024
MIB = 1024 * 1024


def pairs(allowed: object, root: Path) -> dict[str, tuple[int, int]]:
    return {p.name: p.cpus for p in survey(allowed, root).placements}  # type: ignore[arg-type]


def reasons(allowed: object, root: Path) -> dict[str, str]:
    return {s.name: s.why for s in survey(allowed, root).skipped}  # type: ignore[arg-type]


# -- the cpu-list parser -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0", [0]),
        ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]),
        ("0-3,8-11\n", [0, 1, 2, 3, 8, 9, 10, 11]),  # as read from a file
        ("5-5", [5]),
        ("8,0-1", [0, 1, 8]),  # sorted
        ("0-2,1-3", [0, 1, 2, 3]),  # overlaps are one set, as the kernel's bitmap reads them
        (" 1 , 3 ", [1, 3]),
        ("", []),  # a memory-only NUMA node's cpulist
        ("\n", []),
    ],
)
def test_cpu_lists_parse(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize(
    "text",
    ["a", "1,,2", ",1", "1,", "-1", "1-", "3-1", "1-2-3", "0-7:2", "0x1", "١", "1.5", "70000"],
)
def test_bad_cpu_lists_are_one_line_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="CPU list") as caught:
        parse_cpu_list(text)
    assert "\n" not in str(caught.value)


def test_a_huge_range_is_refused_before_it_is_built() -> None:
    with pytest.raises(ValueError, match="over 65535"):
        parse_cpu_list("0-4000000000")


def test_cpu_lists_format_as_the_kernel_writes_them() -> None:
    assert format_cpu_list([11, 0, 1, 2, 3, 8, 9, 10]) == "0-3,8-11"
    assert format_cpu_list([5]) == "5"
    assert format_cpu_list([1, 3, 4]) == "1,3-4"
    assert format_cpu_list([]) == ""
    for text in ("0-3,8,10-11", "0", "0-1,4-5,9"):
        assert format_cpu_list(parse_cpu_list(text)) == text


# -- cache sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("48K", 48 * KIB), ("2048K", 2 * MIB), ("32M", 32 * MIB), ("1G", 1024 * MIB), ("512", 512)],
)
def test_cache_sizes_parse(text: str, size: int) -> None:
    assert parse_cache_size(text + "\n") == size


@pytest.mark.parametrize("text", ["", "K", "48 K", "48KB", "48k", "-1K", "1.5M", "48T"])
def test_bad_cache_sizes_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="not a cache size"):
        parse_cache_size(text)


def test_cache_sizes_of_each_machine(tmp_path: Path) -> None:
    server = make_sys.two_socket(tmp_path / "server")
    assert cache_sizes(server, 0) == {"L1d": 48 * KIB, "L2": 2 * MIB, "L3": 36 * MIB}
    assert list(cache_sizes(server, 13)) == ["L1d", "L2", "L3"]  # smallest first, no L1i
    desktop = make_sys.desktop(tmp_path / "desktop")
    assert cache_sizes(desktop, 7) == {"L1d": 32 * KIB, "L2": 512 * KIB, "L3": 32 * MIB}
    vm = make_sys.this_vm(tmp_path / "vm")
    assert cache_sizes(vm, 1) == {"L1d": 48 * KIB, "L2": 2 * MIB, "L3": 491520 * KIB}


def test_cache_sizes_without_cache_information_are_empty(tmp_path: Path) -> None:
    assert cache_sizes(make_sys.bare(tmp_path / "bare"), 0) == {}
    assert cache_sizes(tmp_path / "nothing", 0) == {}
    vm = make_sys.this_vm(tmp_path / "vm")
    (vm / "devices/system/cpu/cpu0/cache/index3/size").write_text("lots\n")
    (vm / "devices/system/cpu/cpu0/cache/index2/level").unlink()
    assert cache_sizes(vm, 0) == {"L1d": 48 * KIB}


# -- what sysfs says about one CPU -------------------------------------------------------------


def test_one_cpu_of_the_server(tmp_path: Path) -> None:
    cpu = read_cpu(9, make_sys.two_socket(tmp_path))
    assert cpu.threads == {1, 9}
    assert (cpu.package, cpu.node) == (0, 0)
    assert cpu.package_cpus == {0, 1, 2, 3, 8, 9, 10, 11}
    assert [c.name for c in cpu.caches] == ["L1d", "L1i", "L2", "L3"]
    assert cpu.llc is not None
    assert cpu.llc.name == "L3"
    assert cpu.llc.cpus == cpu.package_cpus


def test_an_older_kernel_names_the_package_cpus_core_siblings(tmp_path: Path) -> None:
    root = make_sys.desktop(tmp_path)
    assert not (root / "devices/system/cpu/cpu0/topology/package_cpus_list").exists()
    assert read_cpu(3, root).package_cpus == set(range(8))


# -- placements --------------------------------------------------------------------------------


def test_every_placement_of_the_two_socket_server(tmp_path: Path) -> None:
    root = make_sys.two_socket(tmp_path)
    plan = survey(range(16), root)
    assert [(p.name, p.cpus) for p in plan.placements] == [
        ("same_cpu", (0, 0)),
        ("smt_sibling", (0, 8)),
        ("same_llc", (0, 1)),
        ("other_node", (0, 4)),
    ]
    whys = {p.name: p.why for p in plan.placements}
    assert whys["smt_sibling"] == "CPUs 0 and 8 are hardware threads of one core"
    assert whys["same_llc"] == (
        "CPUs 0 and 1 are on different cores sharing one L3 cache (CPUs 0-3,8-11)"
    )
    assert whys["other_node"] == "CPUs 0 and 4 are on NUMA nodes 0 and 1 (packages 0 and 1)"
    # One L3 per socket and one socket per node: no node has two last-level caches.
    assert [s.name for s in plan.skipped] == ["other_llc"]
    assert "each NUMA node" in plan.skipped[0].why


def test_other_llc_where_one_node_has_two_l3s(tmp_path: Path) -> None:
    root = make_sys.two_ccx(tmp_path)
    assert pairs(range(16), root) == {
        "same_cpu": (0, 0),
        "smt_sibling": (0, 8),
        "same_llc": (0, 1),
        "other_llc": (0, 4),
    }
    assert reasons(range(16), root) == {"other_node": "every allowed CPU (0-15) is on NUMA node 0"}


def test_the_desktop_has_no_smt_one_llc_and_one_node(tmp_path: Path) -> None:
    root = make_sys.desktop(tmp_path)
    assert pairs(range(8), root) == {"same_cpu": (0, 0), "same_llc": (0, 1)}
    assert reasons(range(8), root) == {
        "smt_sibling": "no SMT: each core runs one thread",
        "other_llc": "one L3 cache serves every allowed CPU (0-7)",
        "other_node": "every allowed CPU (0-7) is on NUMA node 0",
    }


def test_this_vm_shape(tmp_path: Path) -> None:
    root = make_sys.this_vm(tmp_path)
    assert pairs({0, 1}, root) == {"same_cpu": (0, 0), "same_llc": (0, 1)}
    assert list(reasons({0, 1}, root)) == ["smt_sibling", "other_llc", "other_node"]
    assert reasons({0, 1}, root)["smt_sibling"] == "no SMT: each core runs one thread"


def test_a_cpuset_of_one_socket_has_no_sibling_and_no_other_node(tmp_path: Path) -> None:
    root = make_sys.two_socket(tmp_path)
    assert pairs({0, 1, 2, 3}, root) == {"same_cpu": (0, 0), "same_llc": (0, 1)}
    why = reasons({0, 1, 2, 3}, root)
    # The host has SMT; these CPUs' siblings (8-11) are just not allowed.
    assert why["smt_sibling"] == "no two allowed CPUs (0-3) are hardware threads of one core"
    assert why["other_node"] == "every allowed CPU (0-3) is on NUMA node 0"


def test_pairs_are_the_lowest_allowed_cpus_that_fit(tmp_path: Path) -> None:
    root = make_sys.two_socket(tmp_path)
    assert pairs([13, 3, 12, 5], root) == {
        "same_cpu": (3, 3),
        "smt_sibling": (5, 13),
        "same_llc": (5, 12),
        "other_node": (3, 5),
    }
    assert pairs({2, 10}, root) == {"same_cpu": (2, 2), "smt_sibling": (2, 10)}
    assert "no two allowed CPUs (2,10) on different cores" in reasons({2, 10}, root)["same_llc"]


def test_one_allowed_cpu_offers_only_same_cpu(tmp_path: Path) -> None:
    root = make_sys.two_socket(tmp_path)
    assert pairs({5}, root) == {"same_cpu": (5, 5)}
    assert reasons({5}, root) == dict.fromkeys(PLACEMENT_NAMES[1:], "only CPU 5 is allowed")


def test_no_allowed_cpu_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CPU is allowed"):
        survey(set(), make_sys.two_socket(tmp_path))


# -- missing sysfs files -----------------------------------------------------------------------


def test_without_topology_a_generic_pair_stands_in(tmp_path: Path) -> None:
    for root in (make_sys.bare(tmp_path / "bare"), tmp_path / "no-sys-at-all"):
        plan = survey(range(4), root)
        assert [(p.name, p.cpus) for p in plan.placements] == [
            ("same_cpu", (0, 0)),
            (OTHER_CPU, (0, 1)),
        ]
        assert "sysfs does not show what they share" in plan.placements[1].why
        assert [s.name for s in plan.skipped] == list(PLACEMENT_NAMES[1:])
        assert all("for CPUs 0-3 (a container or VM may hide it)" in s.why for s in plan.skipped)


def test_missing_caches_and_nodes_skip_only_what_needs_them(tmp_path: Path) -> None:
    root = make_sys.two_socket(tmp_path)
    for cpu in range(16):
        shutil.rmtree(root / f"devices/system/cpu/cpu{cpu}/cache")
    shutil.rmtree(root / "devices/system/node")
    plan = survey(range(16), root)
    assert [(p.name, p.cpus) for p in plan.placements] == [
        ("same_cpu", (0, 0)),
        ("smt_sibling", (0, 8)),
    ]
    why = {s.name: s.why for s in plan.skipped}
    assert list(why) == ["same_llc", "other_llc", "other_node"]
    assert "cache/index*/shared_cpu_list for CPUs 0-15" in why["same_llc"]
    assert "NUMA nodes (devices/system/node) for CPUs 0-15" in why["other_node"]


def test_cpus_sysfs_says_nothing_about_are_left_out_of_the_pairs(tmp_path: Path) -> None:
    root = make_sys.desktop(tmp_path)
    shutil.rmtree(root / "devices/system/cpu/cpu0")  # as if a container hid it
    assert pairs({0, 1, 2}, root) == {"same_cpu": (0, 0), "same_llc": (1, 2)}


def test_malformed_files_count_as_missing(tmp_path: Path) -> None:
    root = make_sys.this_vm(tmp_path)
    for cpu in (0, 1):
        (root / f"devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").write_text("0-\n")
        (root / f"devices/system/cpu/cpu{cpu}/topology/physical_package_id").write_text("x\n")
    (root / "devices/system/node/node0/cpulist").write_bytes(b"\xff\n")
    cpu = read_cpu(0, root)
    assert (cpu.threads, cpu.package, cpu.node) == (None, None, None)
    plan = survey({0, 1}, root)
    assert [(p.name, p.cpus) for p in plan.placements] == [
        ("same_cpu", (0, 0)),
        (OTHER_CPU, (0, 1)),
    ]
    assert "thread_siblings_list for CPUs 0-1" in plan.skipped[0].why


# -- this host ---------------------------------------------------------------------------------


def test_this_hosts_sysfs_gives_sound_placements() -> None:
    allowed = os.sched_getaffinity(0)
    plan = survey(allowed)
    names = [p.name for p in plan.placements]
    assert names[0] == "same_cpu"
    assert plan.placements[0].cpus == (min(allowed),) * 2
    assert all(set(p.cpus) <= allowed and p.why and "\n" not in p.why for p in plan.placements)
    assert all(p.cpus[0] < p.cpus[1] for p in plan.placements[1:])
    order = [*PLACEMENT_NAMES, OTHER_CPU]
    assert names == sorted(names, key=order.index)
    assert sorted(names + [s.name for s in plan.skipped], key=order.index) == [
        n for n in order if n != OTHER_CPU or OTHER_CPU in names
    ]
    if len(allowed) > 1:
        assert len(plan.placements) >= 2  # some pair of two different CPUs, known or generic
