"""Pure logic of measure-memory: slopes, limits, verdicts and findings."""

import multiprocessing.spawn
import os
import resource
import sys
from types import SimpleNamespace

import psutil
import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit import mpspawn
from ostoolkit.claims import judge_heavier
from ostoolkit.errors import InvalidRequest, LimitExceeded
from ostoolkit.measure.memory import (
    GroupTotal,
    MemoryConfig,
    check_config,
    memory_findings,
    per_worker_results,
)
from ostoolkit.mpspawn import SPAWN_LAUNCHER, spawn_context


def test_limits_are_checked_before_starting():
    with pytest.raises(InvalidRequest, match="over 1000 processes"):
        check_config(MemoryConfig(workers=(1001,), models=("process",)))
    with pytest.raises(InvalidRequest, match="over 10000 threads"):
        check_config(MemoryConfig(workers=(10001,), models=("thread",)))
    with pytest.raises(InvalidRequest, match="unknown model"):
        check_config(MemoryConfig(models=("fiber",)))
    with pytest.raises(InvalidRequest, match="groups must be at least 1"):
        check_config(MemoryConfig(groups=0))
    check_config(MemoryConfig(workers=(1, 2), models=("thread", "process")))


def total(workers, uss, pss, rss, pte=0):
    return GroupTotal(workers, uss, pss, rss, workers + 1, workers + 1, pte, 132)


def testper_worker_results_marginals_and_kernel_extras():
    totals = [
        total(0, 1000, 2000, 9000, 40),
        total(1, 2000, 3000, 19000, 44),
        total(10, 11000, 12000, 109000, 80),
    ]
    again = total(10, 12000, 12000, 119000, 80)
    uss, pss, rss = per_worker_results("process", totals, [totals[-1], again])
    assert uss.id == "memory.process.uss_per_worker"
    # the marginals at the largest count only, one per group of that many
    assert uss.samples == (1000.0, 1100.0)
    assert rss.samples == (10000.0, 11000.0)
    assert uss.extra["slope_bytes"] == 1000
    assert uss.extra["vmpte_per_worker_bytes"] == 4096
    assert uss.extra["kernel"]["10"]["processes"] == 11
    assert pss.unit == "bytes"


def test_findings_and_verdict():
    totals = [total(0, 0, 0, 0), total(1, 10**6, 2 * 10**6, 16 * 10**6)]
    thread_totals = [total(0, 0, 0, 0), total(1, 100_000, 100_000, 100_000)]
    results = per_worker_results("process", totals, totals[-1:]) + per_worker_results(
        "thread", thread_totals, thread_totals[-1:]
    )
    findings = memory_findings(results)
    assert findings[0].startswith("summed RSS says a forked process costs 15.26 MiB, 16×")
    assert findings[-1].startswith("a thread costs 98 KiB")
    assert (
        judge_heavier(10.0, 1.0)
        == "a process costs 10.0× a thread here: heavier, as the article says"
    )
    assert "about a thread's" in judge_heavier(1.0, 1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "a,b"], "--workers"),
        (["--workers", "20000"], "--workers"),
        (["--model", "process", "--workers", "1500"], "over 1000 processes"),
        (["--cow", "--size", "0"], "--size"),
        (["--model", "fiber"], "--model"),
    ],
)
def test_bad_input_exit_2(args, message):
    result = CliRunner().invoke(cli_module.cli, ["measure-memory", *args])
    assert result.exit_code == 2
    assert message in result.output


# --- mpspawn.spawn_context: multiprocessing's executable and the launcher's variables are set
# for the block and restored after; without a working launcher, plain 'spawn' and a warning.

LAUNCHER_VARS = ("OSTOOLKIT_SPAWN_SETPRIV", "OSTOOLKIT_SPAWN_PYTHON", "OSTOOLKIT_SPAWN_PARENT")


def test_spawn_context_sets_the_launcher_for_the_block(monkeypatch):
    monkeypatch.setattr(mpspawn, "spawn_launcher_warning", lambda: None)
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)
    before = multiprocessing.spawn.get_executable()
    warnings: list[str] = []
    with spawn_context(warnings) as context:
        assert context.get_start_method() == "spawn"
        assert os.fsdecode(multiprocessing.spawn.get_executable()) == str(SPAWN_LAUNCHER)
        assert os.environ["OSTOOLKIT_SPAWN_PARENT"] == str(os.getpid())
        assert os.environ["OSTOOLKIT_SPAWN_PYTHON"] == sys.executable
    assert multiprocessing.spawn.get_executable() == before
    assert not [name for name in LAUNCHER_VARS if name in os.environ]
    assert warnings == []


def test_spawn_context_without_setpriv_is_plain_spawn_with_one_warning(monkeypatch):
    monkeypatch.setattr(mpspawn.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        mpspawn, "spawn_launcher_warning", mpspawn.spawn_launcher_warning.__wrapped__
    )
    before = multiprocessing.spawn.get_executable()
    warnings: list[str] = []
    for _ in range(2):
        with spawn_context(warnings):
            assert multiprocessing.spawn.get_executable() == before
    assert len(warnings) == 1
    assert "setpriv is not installed" in warnings[0]
    assert "without ostoolkit's parent-death launcher" in warnings[0]


def test_mp_spawn_workers_beyond_the_open_file_limit_are_refused(monkeypatch):
    real = resource.getrlimit

    def getrlimit(which):
        return (256, 256) if which == resource.RLIMIT_NOFILE else real(which)

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=2**50))
    with pytest.raises(LimitExceeded, match="open files"):
        check_config(MemoryConfig(workers=(100,), models=("mp_spawn",)))
    check_config(MemoryConfig(workers=(100,), models=("process",)))
