"""Interference, measured on the real host through the installed command.

Two runs of ``ostoolkit measure-switch --quick --placement same-core`` on one CPU: one right
after this test burned that CPU (load the load average remembers, the CPU idle again), which
must not be called noisy for interference; one while a busy loop that is not ostoolkit's (a
child of this test, a sibling of the command, so outside the measurement's process tree)
shares the CPU, which must be. Relations only, never exact timings: the host may be a shared
2-CPU VM, so the idle case first checks that nobody else is using the CPU, retries, and skips
when the host never goes quiet.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from harness.paths import ENTRY
from harness.waiting import wait_until

from ostoolkit.procfs import read_cpu_times
from ostoolkit.stats import OTHER_CPU_LIMIT

CPU = max(os.sched_getaffinity(0))
SAME_CORE = (
    "switch.process.same_core",
    "roundtrip.process.same_core",
    "switch.thread.same_core",
    "roundtrip.thread.same_core",
)
# A CPU busier than this with nobody's work of ours on it is not idle: others use the host.
QUIET_SHARE = 0.03
ATTEMPTS = 3
SPIN = f"import os\nos.sched_setaffinity(0, {{{CPU}}})\nwhile True:\n    pass\n"


def measure_switch() -> dict[str, dict]:
    """One quick same-core run on CPU, through the installed entry point; results by id."""
    done = subprocess.run(
        [
            str(ENTRY),
            "measure-switch",
            "--quick",
            "--placement",
            "same-core",
            "--cpus",
            str(CPU),
            "--json",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {r["id"]: r for r in json.loads(done.stdout)["results"]}


def busy_share_while_idle(seconds: float = 0.3) -> float:
    """How busy CPU was while this test did nothing: other tasks' share of it."""
    before, start = read_cpu_times()[CPU].busy, time.monotonic()
    time.sleep(seconds)
    return (read_cpu_times()[CPU].busy - before) / (time.monotonic() - start)


def burn_pinned(seconds: float) -> None:
    """Burn CPU in a pinned child of ours for ``seconds``, then reap it."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.sched_setaffinity(0, {CPU})
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def interference_notes(result: dict) -> list[str]:
    return [n for n in result["notes"] if "other tasks took" in n or "stole" in n]


def test_an_idle_host_right_after_heavy_work_is_not_called_noisy():
    seen = []
    for _ in range(ATTEMPTS):
        burn_pinned(1.0)
        quiet_before = busy_share_while_idle()
        results = measure_switch()
        quiet_after = busy_share_while_idle()
        shares = {i: results[i]["extra"]["other_cpu_share"] for i in SAME_CORE}
        seen.append((quiet_before, quiet_after, shares))
        if max(quiet_before, quiet_after) > QUIET_SHARE:
            continue  # someone else used this CPU around the run: not the idle case
        for result_id in SAME_CORE:
            result = results[result_id]
            assert result["extra"]["other_cpu_share"] is not None, result
            assert result["extra"]["other_cpu_share"] < OTHER_CPU_LIMIT, result
            assert 0 <= result["extra"]["steal_share"] <= 1
            assert not [n for n in result["notes"] if "other tasks took" in n], result
        return
    pytest.skip(f"CPU {CPU} never went quiet (other tasks' shares around each run: {seen})")


def test_a_competitor_on_the_measured_cpu_is_seen_and_called_noisy():
    competitor = subprocess.Popen([sys.executable, "-c", SPIN])
    try:

        def spinning() -> bool:  # it runs, pinned to the measured CPU
            if busy_share_while_idle(0.1) >= 0.5:
                return True
            assert competitor.poll() is None
            return False

        wait_until(spinning, 5, "the competitor did not start spinning", poll_s=0)
        results = measure_switch()
        assert competitor.poll() is None  # it competed all along
    finally:
        competitor.kill()
        competitor.wait(10)
    for result_id in SAME_CORE:
        result = results[result_id]
        # a CPU-bound task gets a large share beside the token's two tasks (about a half or
        # a third); 0.2 is far above an idle host's and below any fair share it could get
        assert result["extra"]["other_cpu_share"] > 0.2, result
        assert result["status"] in ("noisy", "bimodal"), result
        assert interference_notes(result), result
    noisy = [results[i] for i in SAME_CORE if results[i]["status"] == "noisy"]
    assert noisy, "with a competitor, some figure should be plainly noisy"


def test_live_children_are_timed_exactly():
    """schedstat times a live task to the nanosecond: no tick rounding for the meter to allow."""
    from ostoolkit.children import Children
    from ostoolkit.measure.interference import tree_cpu_s
    from ostoolkit.procfs import read_task_run_ns

    hold_r, hold_w = os.pipe()
    ready_r, ready_w = os.pipe()
    try:
        with Children() as children:
            idle = children.fork(lambda: os.read(hold_r, 1))
            busy = children.fork(
                lambda: (sum(range(2_000_000)), os.write(ready_w, b"."), os.read(hold_r, 1))
            )
            assert os.read(ready_r, 1) == b"."
            tree, rounded = tree_cpu_s()
            keys = {pid: key for key in tree for pid in (idle, busy) if key[0] == pid}
            assert set(keys) == {idle, busy}
            if read_task_run_ns(idle) is None:
                pytest.skip("no per-task schedstat here: every task is timed in ticks")
            assert not {keys[idle], keys[busy]} & rounded
            assert tree[keys[busy]] > tree[keys[idle]]  # its spin, exactly
            os.write(hold_w, b"..")
    finally:
        for fd in (hold_r, hold_w, ready_r, ready_w):
            os.close(fd)
