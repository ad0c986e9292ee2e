"""The C harness of --cross-check (measure/cref.py): its output parsed, each failure one warning."""

import subprocess

import pytest

from ostoolkit.measure import cref, perfbench
from ostoolkit.report import Measurement, make_result

GOOD = """\
rt_ns=3000.000 base_ns=1000.000
rt_ns=3200.000 base_ns=1000.000
rt_ns=2800.000 base_ns=900.000
net_us_median=0.500000 gross_us_median=1.500000
"""


def test_parse_gives_net_gross_and_base_per_repetition():
    parsed = cref.parse_output(GOOD)
    assert parsed["gross_us"] == pytest.approx([1.5, 1.6, 1.4])
    assert parsed["net_us"] == pytest.approx([0.5, 0.6, 0.5])
    assert parsed["base_us"] == pytest.approx([1.0, 1.0, 0.9])
    assert parsed["net_us_median"] == 0.5
    assert parsed["gross_us_median"] == 1.5


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (GOOD + "lat_pipe: something else\n", "unexpected line in lat_pipe output"),
        ("rt_ns=abc base_ns=1.0\n", "unparseable number"),
        ("rt_ns=nan base_ns=1.0\n", "non-finite number"),
        ("rt_ns=3000.0 base_ns=1000.0\n", "no summary line"),
        ("net_us_median=0.5 gross_us_median=1.5\n", "no repetition line"),
        ("", "no repetition line"),
    ],
    ids=["bad-line", "bad-number", "nan", "no-summary", "no-repetition", "empty"],
)
def test_parse_refuses_bad_or_incomplete_output_in_one_line(stdout, message):
    with pytest.raises(cref.HarnessError, match=message) as raised:
        cref.parse_output(stdout)
    assert "\n" not in str(raised.value)


def test_without_a_compiler_one_warning_and_no_results(monkeypatch, tmp_path):
    monkeypatch.setattr(cref.shutil, "which", lambda name: None)
    m = cref.cross_check_c(0, 200, 3, tmp_path)
    assert m.results == ()
    assert m.warnings == (
        "--cross-check: no C compiler (gcc or cc) found; the C harness was skipped (Debian: gcc)",
    )
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


def test_a_compile_failure_is_one_warning_with_its_error_line(monkeypatch, tmp_path):
    stderr = (
        "lat_pipe.c: In function 'main':\n"
        "lat_pipe.c:3:1: error: expected ';' before '}' token\n"
        "    3 | }\n      | ^\n"
    )
    run, calls = fake_program(returncode=1, stderr=stderr)
    monkeypatch.setattr(cref.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(cref, "run_program", run)
    m = cref.cross_check_c(0, 200, 3, tmp_path)
    assert m.results == ()
    assert m.warnings == (
        "--cross-check: the C harness was skipped: compiling lat_pipe.c failed: "
        "lat_pipe.c:3:1: error: expected ';' before '}' token",
    )
    env, tmpdir, compiler, first_flag = calls[0][:4]
    assert (env, compiler, first_flag) == ("env", "/usr/bin/gcc", cref.CFLAGS[0])
    assert tmpdir.startswith(f"TMPDIR={tmp_path}/lat_pipe-")  # gcc's own temporary files too
    assert calls[0][-1] == str(cref.SOURCE)
    assert list(tmp_path.iterdir()) == [], "the build folder outlived the run"


def test_a_compiler_timeout_is_one_warning(monkeypatch, tmp_path):
    run, _ = fake_program(raises=subprocess.TimeoutExpired(["gcc"], 60))
    monkeypatch.setattr(cref.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(cref, "run_program", run)
    (warning,) = cref.cross_check_c(0, 200, 3, tmp_path).warnings
    assert (
        warning
        == "--cross-check: the C harness was skipped: compiling lat_pipe.c timed out after 60 s"
    )


def test_a_failing_run_names_its_last_stderr_line(monkeypatch, tmp_path):
    run, _ = fake_program(returncode=1, stderr="lat_pipe: sched_setaffinity(CPU_A=7): Invalid\n")
    monkeypatch.setattr(cref, "run_program", run)
    with pytest.raises(cref.HarnessError) as raised:
        cref.run_harness(tmp_path / "lat_pipe", "process", (7, 7), 200, 3)
    assert (
        str(raised.value)
        == "lat_pipe process failed: lat_pipe: sched_setaffinity(CPU_A=7): Invalid"
    )


def test_findings_set_the_c_harness_beside_ours():
    ours = make_result("switch.thread.same_core", "t", "us", [1.1], extra={"gross_us": 2.0})
    c_ref = make_result("ref.lat_pipe.thread.same_core", "C", "us", [1.0])
    (finding,) = perfbench.add_perf_findings(Measurement((ours, c_ref))).findings
    assert finding.startswith(
        "thread, same core: the C harness (same method, same CPU) 1.00 µs net, "
        "ostoolkit 1.10 µs (1.10×); the difference is the Python path's own cost"
    )


def test_cross_check_runs_both_on_the_same_core_cpu_in_a_removed_scratch_dir(monkeypatch):
    calls = {}

    def fake_perf(cpu, loops, runs):
        calls["perf"] = (cpu, loops, runs)
        return Measurement((), warnings=("perf skipped",))

    def fake_c(cpu, iterations, repeat, folder):
        calls["c"] = (cpu, iterations, repeat, folder)
        assert folder.is_dir()
        return Measurement((make_result("ref.lat_pipe.process.same_core", "C", "us", [1.0]),))

    monkeypatch.setattr(perfbench, "cross_check_perf", fake_perf)
    monkeypatch.setattr(perfbench, "cross_check_c", fake_c)
    ours = make_result(
        "switch.process.same_core", "p", "us", [1.2], extra={"cpus": [1, 1], "gross_us": 2.0}
    )
    m = perfbench.cross_check(Measurement((ours,)), quick=True)
    assert calls["perf"] == (1, perfbench.PERF_LOOPS[True], perfbench.PERF_RUNS[True])
    assert calls["c"][:3] == (1, perfbench.C_ITERATIONS[True], perfbench.C_REPEAT[True])
    assert not calls["c"][3].exists(), "the scratch dir outlived the cross-check"
    assert [r.id for r in m.results] == [ours.id, "ref.lat_pipe.process.same_core"]
    assert m.warnings == ("perf skipped",)
    assert len(m.findings) == 1
    assert "1.00 µs net, ostoolkit 1.20 µs (1.20×)" in m.findings[0]
