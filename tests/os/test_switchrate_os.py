"""switch-rate for real: the command through its entry point, and the library's counting path.

Invariants only, never a time: the host switches at all, a ping-pong on one CPU makes it
switch more than it does idle, each hop is a switch, every child is reaped.
"""

import json
import os
import time
from collections.abc import Callable

import pytest
from harness.paths import ENTRY
from harness.runs import ERROR_DUMP, Run, marked_env, message_lines, run_marked

from ostoolkit.claims import annotate
from ostoolkit.measure import pmu, switchrate
from ostoolkit.measure.pmu import Counters
from ostoolkit.measure.switchrate import RateConfig, measure_switch_rate

SMALL = RateConfig(duration_s=0.2, windows=4)


def run_cli(*args: str, preexec_fn: Callable[[], None] | None = None) -> Run:
    marker, env = marked_env()
    argv = [str(ENTRY), "switch-rate", *args]
    return run_marked(argv, env=env, marker=marker, timeout=60, preexec_fn=preexec_fn)


def test_the_command_counts_more_switches_under_the_ping_pong():
    run = run_cli("--duration", "0.5", "--json", "-")
    assert run.returncode == 0, run.describe()
    assert not run.leftovers, run.describe()
    assert run.children, "the process model's partner was never seen"
    assert not ERROR_DUMP.search(run.stderr), run.describe()
    report = json.loads(run.stdout)
    by_id = {r["id"]: r for r in report["results"]}
    idle, loaded = by_id["rate.switches_per_s"], by_id["rate.switches_per_s.pingpong"]
    assert idle["unit"] == loaded["unit"] == "per_s"
    assert idle["median"] > 0
    assert loaded["median"] > idle["median"]
    assert idle["n"] == loaded["n"] == RateConfig().windows
    assert idle["claim"]  # the article's "hundreds a second", set by claims.annotate
    for model in ("process", "thread"):
        cycles = by_id[f"switch.{model}.cycles"]
        assert cycles["unit"] == "number"
        assert cycles["extra"]["switches_per_hop"] >= 0.99  # one CPU: each hop is a switch
        assert cycles["extra"]["cycles_from"]
    pmu = report["data"]["pmu"]
    assert isinstance(pmu["available"], bool)
    counter_lines = [w for w in report["warnings"] if "hardware counters" in w]
    if pmu["available"]:
        assert "switch.process.instructions" in by_id
    else:
        assert pmu["reason"].startswith("perf_event_open: ")
        assert len(counter_lines) == 1
        assert not any(key.endswith(".instructions") for key in by_id)
    assert any("hundreds of times per second" in f for f in report["findings"])


def pin(cpu: int) -> None:
    """The child's affinity before it execs ostoolkit, as ``taskset -c CPU`` sets it."""
    os.sched_setaffinity(0, {cpu})


def test_per_cpu_under_taskset_counts_every_online_cpu_not_the_allowed_one():
    """As ``taskset -c 0``: one CPU allowed, but ctxt counts every online CPU's switches."""
    cpu = min(os.sched_getaffinity(0))
    run = run_cli("--duration", "0.2", "--json", "-", preexec_fn=lambda: pin(cpu))
    assert run.returncode == 0, run.describe()
    assert not run.leftovers, run.describe()
    report = json.loads(run.stdout)
    idle = next(r for r in report["results"] if r["id"] == "rate.switches_per_s")
    online = os.sysconf("SC_NPROCESSORS_ONLN")
    extra = idle["extra"]
    assert extra["cpus"] == [cpu]
    assert extra["online_cpus"] == online
    if extra["per_cpu_from"] == switchrate.OWN_COUNTS:  # CONFIG_SCHEDSTATS, counting
        said = f"on CPU {cpu}, by its own count in /proc/schedstat)"
    else:  # the host's count shared by every online CPU, and the finding says so
        assert extra["per_cpu_from"] == switchrate.SHARED_COUNT
        assert extra["per_cpu"] == pytest.approx(idle["median"] / online, abs=0.06)
        said = "per CPU: the host's count over them, no per-CPU counts here)"
    finding = next(f for f in report["findings"] if f.startswith("the idle host switched"))
    assert f" on its {online} online CPU{'s' * (online != 1)}" in finding
    assert said in finding
    assert "1 CPUs" not in finding


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("--duration", "0"), "--duration"),
        (("--duration", "nan"), "--duration"),
        (("--cpu", "999"), "CPU 999 is not available"),
        (("--cpu", "-1"), "--cpu"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, pattern):
    run = run_cli(*args)
    assert run.returncode == 2, run.describe()
    lines = message_lines(run.stderr)
    assert len(lines) == 1, run.describe()
    assert pattern in lines[0]
    assert not run.children, run.describe()
    assert not run.leftovers, run.describe()


class ClockCounters(Counters):
    """Counters that count as a 3 GHz CPU at one instruction a cycle would: time-based."""

    def read(self) -> dict[str, float]:
        ns = time.perf_counter_ns()
        return {"instructions": 3.0 * ns, "cycles": 3.0 * ns}


def test_counted_instructions_and_cycles_reach_the_results(monkeypatch):
    monkeypatch.setattr(pmu, "open_counters", lambda: ClockCounters({}, False))
    m = annotate(measure_switch_rate(SMALL))
    by_id = {r.id: r for r in m.results}
    assert m.data["pmu"] == {
        "available": True,
        "events": ["instructions", "cycles"],
        "user_only": False,
    }
    for model in ("process", "thread"):
        instructions = by_id[f"switch.{model}.instructions"]
        assert instructions.unit == "number"
        assert instructions.n == SMALL.windows // 2
        assert instructions.claim  # "tens of thousands of instructions", set by claims
        assert by_id[f"switch.{model}.cycles"].extra["cycles_from"].startswith("counted")
    assert not any("hardware counters" in w for w in m.warnings)
    assert any("billion instructions a second: as the article says" in f for f in m.findings)
    ips = by_id["rate.instructions_per_s"]
    assert (ips.unit, ips.claim) == ("per_s", "billions a second")
    assert ips.median > 1e9  # the fake counts 3 per ns, whatever the host's speed
    assert "pmu_unavailable" not in by_id["rate.switches_per_s"].extra


def test_no_pmu_still_measures_and_restores_affinity_and_fds(monkeypatch):
    monkeypatch.setattr(pmu, "open_counters", lambda: "perf_event_open: ENOENT, none")
    before_cpus, before_fds = os.sched_getaffinity(0), set(os.listdir("/proc/self/fd"))
    steps: list[int] = []
    m = measure_switch_rate(SMALL, steps.append)
    assert os.sched_getaffinity(0) == before_cpus
    assert set(os.listdir("/proc/self/fd")) == before_fds
    assert sum(steps) == SMALL.steps()
    assert m.data["pmu"] == {"available": False, "reason": "perf_event_open: ENOENT, none"}
    assert [w for w in m.warnings if "hardware counters" in w] == [
        "no hardware counters (perf_event_open: ENOENT, none): cycles come from the CPU's "
        "clock, instructions uncounted"
    ]
    ids = {r.id for r in m.results}
    assert {"rate.switches_per_s", "rate.switches_per_s.pingpong"} <= ids
    assert not any(i.endswith(".instructions") for i in ids)
    assert "rate.instructions_per_s" not in ids
    rate = next(r for r in m.results if r.id == "rate.switches_per_s")
    assert rate.extra["pmu_unavailable"] == "perf_event_open: ENOENT, none"


def test_the_ping_pong_runs_on_the_cpu_asked_for():
    cpu = min(os.sched_getaffinity(0))
    m = measure_switch_rate(RateConfig(duration_s=0.1, windows=2, cpu=cpu))
    for result in m.results:
        if result.id.startswith("switch."):
            assert result.extra["cpus"] == [cpu, cpu]
