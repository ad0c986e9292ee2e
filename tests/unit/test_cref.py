"""The C harness beside measure-switch (measure/cref.py): its output parsed, each failure one
line, and Python's share computed block by block."""

import subprocess

import pytest

from ostoolkit.measure import cref, perfbench
from ostoolkit.measure.blocks import Gathered
from ostoolkit.measure.netcost import block_medians
from ostoolkit.measure.placement import Pair
from ostoolkit.measure.switch import c_findings, c_results
from ostoolkit.report import Measurement, make_result


def test_without_a_compiler_the_build_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(cref.shutil, "which", lambda name: None)
    with pytest.raises(cref.HarnessError) as raised, cref.built_harness(tmp_path):
        pass
    assert str(raised.value) == "no C compiler (gcc or cc) found (Debian: gcc)"
    assert list(tmp_path.iterdir()) == []


def fake_program(returncode=0, stdout="", stderr="", raises=None):
    """A stand-in for children.run_program that records the argv it was given."""
    calls = []

    def run(argv, timeout):
        calls.append(argv)
        if raises is not None:
            raise raises
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)

    return run, calls


def test_a_compile_failure_names_its_error_line_and_leaves_no_folder(monkeypatch, tmp_path):
    stderr = (
        "lat_pipe.c: In function 'main':\n"
        "lat_pipe.c:3:1: error: expected ';' before '}' token\n"
        "    3 | }\n      | ^\n"
    )
    run, calls = fake_program(returncode=1, stderr=stderr)
    monkeypatch.setattr(cref.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(cref, "run_program", run)
    with pytest.raises(cref.HarnessError) as raised, cref.built_harness(tmp_path):
        pass
    assert str(raised.value) == (
        "compiling lat_pipe.c failed: lat_pipe.c:3:1: error: expected ';' before '}' token"
    )
    env, tmpdir, compiler, first_flag = calls[0][:4]
    assert (env, compiler, first_flag) == ("env", "/usr/bin/gcc", cref.CFLAGS[0])
    assert tmpdir.startswith(f"TMPDIR={tmp_path}/lat_pipe-")  # gcc's own temporary files too
    assert calls[0][-1] == str(cref.SOURCE)
    assert list(tmp_path.iterdir()) == [], "the build folder outlived the run"


def test_a_compiler_timeout_is_one_line(monkeypatch, tmp_path):
    run, _ = fake_program(raises=subprocess.TimeoutExpired(["gcc"], 60))
    monkeypatch.setattr(cref.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(cref, "run_program", run)
    with pytest.raises(cref.HarnessError) as raised, cref.built_harness(tmp_path):
        pass
    assert str(raised.value) == "compiling lat_pipe.c timed out after 60 s"


def test_perf_findings_set_perf_beside_ours():
    ours = make_result("switch.thread.same_core", "t", "us", [1.1], extra={"gross_us": 2.0})
    perf = make_result("perf.sched_pipe.thread.same_core", "perf", "us", [1.8])
    (finding,) = perfbench.add_perf_findings(Measurement((ours, perf))).findings
    assert finding.startswith(
        "thread, same core: perf bench sched pipe 1.80 µs per hop (gross), ostoolkit 2.00 µs"
    )


def test_cross_check_runs_perf_on_the_same_core_cpu(monkeypatch):
    calls = {}

    def fake_perf(cpu, loops, runs):
        calls["perf"] = (cpu, loops, runs)
        return Measurement((), warnings=("perf skipped",))

    monkeypatch.setattr(perfbench, "cross_check_perf", fake_perf)
    ours = make_result(
        "switch.process.same_core", "p", "us", [1.2], extra={"cpus": [1, 1], "gross_us": 2.0}
    )
    m = perfbench.cross_check(Measurement((ours,)), quick=True)
    assert calls["perf"] == (1, perfbench.PERF_LOOPS[True], perfbench.PERF_RUNS[True])
    assert [r.id for r in m.results] == [ours.id]
    assert m.warnings == ("perf skipped",)


def test_block_medians_pair_blocks_and_leave_out_negative_ones():
    net = [1.0, 2.0, 3.0, -0.5, 2.0, 4.0, 4.0]
    assert block_medians(net, [3, 2, 2]) == [2.0, None, 4.0]
    assert block_medians([], []) == []


def test_python_share_is_ours_minus_c_block_by_block():
    pair = Pair("same_core", 1, 1)

    def gathered(nets):
        g = Gathered(rounds=100)
        for block in nets:
            g.block_sizes.append(len(block))
            for net in block:  # round trip = 2 × (net + baseline), baseline 1 µs
                g.round_us.append(2 * (net + 1.0))
                g.baseline_us.append(1.0)
        return g

    ours = gathered([[2.0, 2.2], [2.1, 2.1], [-1.0, 2.0], [2.4, 2.4]])
    c = gathered([[1.5, 1.5], [1.6, 1.6], [1.5, 1.5], [2.5, 2.5]])
    reference, share = c_results("process", pair, ours, c, None)
    assert reference.id == "ref.lat_pipe.process.same_core"
    assert reference.median == 1.55
    assert share.id == "switch.process.python_share"
    # block 3 of ours has a negative net sample: that pair of blocks is left out
    assert share.samples == pytest.approx((0.6, 0.5, -0.1))
    assert share.runs == (1, 1, 1)
    low, high = share.extra["ci_us"]
    assert low <= share.median <= high
    findings = c_findings(
        {
            r.id: r
            for r in (reference, share, make_result("switch.process.same_core", "p", "us", [2.1]))
        }
    )
    assert findings[0].endswith("processes 1.55 µs per switch (net)")
    assert (
        findings[1] == "what a Python program pays per switch (ostoolkit, net): processes 2.10 µs"
    )
    assert findings[2].startswith(
        "Python's share (ostoolkit − C, block by block, 95 % interval): processes 0.50 µs ["
    )
