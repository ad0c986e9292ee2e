"""Pure logic of measure/spawn.py: ids, step counts, ratios to a thread, findings in words."""

import pytest

from ostoolkit.errors import InvalidRequest, LimitExceeded
from ostoolkit.measure.spawn import (
    MAX_PARENT_RSS_MB,
    METHODS,
    SpawnConfig,
    check_config,
    exec_finding,
    result_id,
    rss_finding,
    rss_result_id,
    thread_finding,
    unavailable_reason,
    with_thread_ratios,
)
from ostoolkit.procfs import parse_kb_fields
from ostoolkit.report import make_result


def result(id, median, **extra):
    return make_result(id, id, "us", [median] * 3, extra=extra)


def test_ids_of_methods_and_parent_sizes():
    assert [result_id(m) for m in SpawnConfig().methods] == [f"spawn.{m}" for m in METHODS]
    assert METHODS == (
        "fork",
        "fork_exec",
        "posix_spawn",
        "subprocess",
        "thread",
        "mp_fork",
        "mp_forkserver",
        "mp_spawn",
    )
    assert rss_result_id(0) == "spawn.fork_rss_0mb"
    assert rss_result_id(1024) == "spawn.fork_rss_1024mb"


def test_step_count_is_one_per_timed_operation():
    assert SpawnConfig().steps() == 5 * 30 + 3 * 10
    config = SpawnConfig(repeat=4, mp_repeat=2, methods=("fork", "mp_spawn"), parent_rss_mb=(8, 16))
    assert config.steps() == 4 + 2 + 2 * 4


def test_ratio_to_thread_is_added_to_every_result():
    results = with_thread_ratios([result("spawn.fork", 150.0), result("spawn.thread", 10.0)])
    assert [r.extra["ratio_to_thread"] for r in results] == [15.0, 1.0]


def test_no_ratio_without_a_thread():
    results = with_thread_ratios([result("spawn.fork", 150.0)])
    assert "ratio_to_thread" not in results[0].extra
    assert thread_finding(results) is None


def test_thread_finding_in_words():
    results = [
        result("spawn.fork", 140.0),
        result("spawn.fork_exec", 300.0),
        result("spawn.thread", 10.0),
        result("spawn.mp_spawn", 20_000.0),
    ]
    assert thread_finding(results) == (
        "a fork+exit costs 14× a thread start here; fork+execve 30×; multiprocessing 'spawn' 2,000×"
    )


def test_thread_finding_leads_with_the_first_measured_method():
    results = [result("spawn.thread", 10.0), result("spawn.posix_spawn", 45.0)]
    assert thread_finding(results) == "posix_spawn costs 4.5× a thread start here"


def test_exec_finding_only_when_posix_spawn_is_clearly_cheaper():
    cheaper = [result("spawn.fork_exec", 2000.0), result("spawn.posix_spawn", 500.0)]
    assert exec_finding(cheaper).startswith(
        "posix_spawn starts a program 4.0× faster than fork+execve here"
    )
    alike = [result("spawn.fork_exec", 500.0), result("spawn.posix_spawn", 480.0)]
    assert exec_finding(alike) is None


def test_rss_finding_against_the_plain_fork():
    results = [
        result("spawn.fork", 100.0, parent_vmpte_kb=300),
        result("spawn.fork_rss_1024mb", 900.0, parent_rss_mb=1024, parent_vmpte_kb=2048),
    ]
    assert rss_finding(results) == (
        "fork cost grows with the parent's memory: 900 µs with 1024 MiB more vs 100 µs without "
        "(page tables copied: 2.0 MiB vs 300 KiB)"
    )


def test_rss_finding_between_sizes_and_huge_pages():
    results = [
        result(
            "spawn.fork_rss_1024mb",
            110.0,
            parent_rss_mb=1024,
            parent_vmpte_kb=120,
            parent_anon_huge_kb=1024 * 1024,
        ),
        result("spawn.fork_rss_16mb", 100.0, parent_rss_mb=16, parent_vmpte_kb=100),
    ]
    text = rss_finding(results)
    assert text.startswith(
        "fork cost hardly grows with the parent's memory: 110 µs with 1024 MiB more vs "
        "100 µs with 16 MiB"
    )
    assert "transparent huge pages" in text


def test_rss_finding_single_size():
    results = [result("spawn.fork_rss_64mb", 2500.0, parent_rss_mb=64, parent_vmpte_kb=200)]
    assert rss_finding(results) == (
        "a fork of a parent holding 64 MiB more costs 2.5 ms (page tables copied: 200 KiB)"
    )
    assert rss_finding([result("spawn.fork", 100.0)]) is None


def test_parse_kb_fields():
    text = "Name:\tpython\nVmRSS:\t   19164 kB\nVmPTE:\t      84 kB\nThreads:\t1\n"
    assert parse_kb_fields(text, ("VmPTE", "VmRSS", "VmSwap")) == {"VmRSS": 19164, "VmPTE": 84}


@pytest.mark.parametrize(
    "config",
    [
        SpawnConfig(methods=("clone3",)),
        SpawnConfig(repeat=0),
        SpawnConfig(mp_repeat=0),
        SpawnConfig(parent_rss_mb=(-1,)),
    ],
)
def test_bad_configs_are_refused(config):
    with pytest.raises(InvalidRequest):
        check_config(config)


def test_parent_above_the_maximum_is_a_limit():
    with pytest.raises(LimitExceeded, match="--parent-rss"):
        check_config(SpawnConfig(parent_rss_mb=(MAX_PARENT_RSS_MB + 1,)))


def test_exec_methods_need_true():
    for method in ("fork_exec", "posix_spawn", "subprocess"):
        assert unavailable_reason(method, None) == "no 'true' executable on PATH"
    assert unavailable_reason("fork", None) is None
    assert unavailable_reason("thread", None) is None


def test_parent_finding_names_what_fork_copied():
    from ostoolkit.measure.spawn import parent_finding
    from ostoolkit.report import make_result

    fork = make_result(
        "spawn.fork",
        "fork",
        "us",
        [900.0],
        extra={"parent_vmrss_kb": 23552, "parent_mappings": 214, "parent_vmpte_kb": 88},
    )
    assert parent_finding([fork]) == (
        "fork's cost is its parent's: the parent timed here is a Python process with 23.0 MiB "
        "resident in 214 memory mappings (page tables 88 KiB), all of which fork copies; "
        "a smaller process forks faster"
    )
    assert parent_finding([]) is None


def test_main_reimport_finding_only_for_a_script_parent(monkeypatch):
    import sys
    import types

    from ostoolkit.measure.spawn import main_reimport_finding
    from ostoolkit.report import make_result

    results = [make_result("spawn.mp_spawn", "spawn", "us", [1000.0])]
    script = types.ModuleType("__main__")
    script.__file__ = "/usr/bin/tool"
    script.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert "re-run this parent's main script (/usr/bin/tool)" in main_reimport_finding(results)
    assert main_reimport_finding([]) is None
    script.__spec__ = types.SimpleNamespace(name="ostoolkit.__main__")
    assert main_reimport_finding(results) is None
