"""The kernel's switch counts for real, against a known workload: a pinned ping-pong of two
processes changes address space on every hop, one of two threads never; and without the
permission, one line says why. Skipped, in one line, where tracepoints may not be counted."""

import contextlib
import os
from dataclasses import replace

import pytest
from harness.result_docs import documented_ids

from ostoolkit.measure import trace
from ostoolkit.measure.placement import Pair
from ostoolkit.measure.switch import SwitchConfig, _pair_timing, measure_switch

CPU = max(os.sched_getaffinity(0))
ROUNDS = 2_000  # 4,000 hops a window: a few ms
NOBODY = 65534


@pytest.fixture(scope="module")
def ids():
    try:
        found, skipped = trace.probe(CPU)
    except trace.TraceUnavailable as why:
        pytest.skip(f"tracepoints cannot be counted here: {why}")
    if skipped:
        pytest.skip(f"tracepoints cannot all be counted here: {'; '.join(skipped)}")
    return found


def count(model, ids):
    with _pair_timing(model, Pair("same_core", CPU, CPU), 0) as timing:
        assert len(timing.tasks) == 2
        assert len(set(timing.tasks)) == 2
        with contextlib.closing(trace.open_events(CPU, timing.tasks, ids)) as events:
            counted = trace.count_windows(timing, events, ROUNDS, windows=2)
    return {name: max(values) for name, values in counted.per_hop.items()}, counted


def test_a_process_pair_changes_address_space_on_every_hop(ids):
    per_hop, counted = count("process", ids)
    assert 0.9 <= per_hop[trace.SWITCHED] <= 1.1
    assert 0.9 <= per_hop[trace.KEPT] + per_hop[trace.FLUSHED] <= 1.1
    assert counted.hops == 2 * 2 * ROUNDS


def test_a_thread_pair_never_changes_address_space(ids):
    per_hop, _ = count("thread", ids)
    assert 0.9 <= per_hop[trace.SWITCHED] <= 1.1
    assert per_hop[trace.KEPT] + per_hop[trace.FLUSHED] < 0.05


def test_measure_switch_gives_the_counts_and_quotes_them(ids):
    config = replace(
        SwitchConfig.quick(), placements=("same_core",), repeat=2, blocks=1, iterations=500
    )
    measurement = measure_switch(config)
    by_id = {r.id: r for r in measurement.results}
    documented = documented_ids()
    for result_id in by_id:
        assert any(regex.match(result_id) for regex, _ in documented), result_id
    assert 0.9 <= by_id["trace.process.mm_switches_per_hop"].median <= 1.1
    assert by_id["trace.thread.mm_switches_per_hop"].median < 0.05
    assert by_id["switch.process.same_core"].extra["switch_counts"] == "tracepoints"
    (why,) = [f for f in measurement.findings if f.startswith("why")]
    assert why.startswith("why, counted by the kernel")
    assert not [w for w in measurement.warnings if "switch counts" in w]


def as_nobody(work):
    """``work()``'s string, computed in a child that dropped root for nobody (no groups, no
    capabilities), or in this process when it is not root already."""
    if os.geteuid() != 0:
        return work()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(wfd, work().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as pipe:
        said = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return said


def probe_says():
    try:
        trace.probe(CPU)
    except trace.TraceUnavailable as why:
        return str(why)
    return "counted"


def test_without_permission_one_line_says_why():
    said = as_nobody(probe_says)
    if said == "counted":
        pytest.skip("this user may count tracepoints (CAP_PERFMON, or a low perf_event_paranoid)")
    assert "\n" not in said
    assert "not permitted" in said or "EACCES" in said, said


def switch_says():
    config = replace(
        SwitchConfig.quick(), placements=("same_core",), repeat=2, blocks=1, iterations=200
    )
    measurement = measure_switch(config)
    traced = [r.id for r in measurement.results if r.id.startswith("trace.")]
    lines = [w for w in measurement.warnings if "switch counts" in w]
    return "\n".join([*traced, *lines])


def test_measure_switch_without_permission_says_so_in_one_line():
    if probe_says() != "counted" and os.geteuid() == 0:
        pytest.skip("root may not count tracepoints here either")
    said = as_nobody(switch_says).splitlines()
    if said and said[0].startswith("trace."):
        pytest.skip("this user may count tracepoints (CAP_PERFMON, or a low perf_event_paranoid)")
    assert len(said) == 1
    assert said[0].startswith(
        "the kernel's switch counts (address-space changes, TLB flushes) were skipped: "
    )


@pytest.fixture(scope="module")
def timed(ids):
    try:
        found = trace.timed_ids()
        with contextlib.closing(trace.open_ring(CPU, (os.getpid(),), found)):
            pass
    except trace.TraceUnavailable as why:
        pytest.skip(f"tracepoints cannot be sampled here: {why}")
    return found


@pytest.mark.parametrize("model", ["process", "thread"])
def test_a_traced_window_decomposes_hops(timed, model):
    with _pair_timing(model, Pair("same_core", CPU, CPU), 0) as timing:
        traced = trace.trace_windows(timing, CPU, timed, rounds=200, windows=1)
    assert traced.lost == 0
    assert traced.hops >= 100  # a woken task's turn in most round trips
    (kernel,), (user,), (path,) = traced.kernel, traced.user, traced.switch_path
    assert kernel > 0
    assert user > 0
    assert path > 0
    assert 0 < traced.kernel_share()[0] < 1


def test_measure_switch_trace_gives_the_decomposition_and_its_overhead(timed):
    config = replace(
        SwitchConfig.quick(),
        placements=("same_core",),
        models=("thread",),
        repeat=2,
        blocks=1,
        iterations=300,
        trace_timing=True,
    )
    measurement = measure_switch(config)
    by_id = {r.id: r for r in measurement.results}
    documented = documented_ids()
    for result_id in by_id:
        assert any(regex.match(result_id) for regex, _ in documented), result_id
    for name in ("wake_to_run", "switch_path", "in_kernel", "in_user", "kernel_share"):
        assert f"trace.thread.{name}" in by_id
    extra = by_id["trace.thread.in_kernel"].extra
    assert extra["roundtrip_traced_us"] > 0
    assert extra["roundtrip_us"] > 0
    (said,) = [f for f in measurement.findings if f.startswith("where a thread switch's hop")]
    assert "tracing slowed a round trip" in said
