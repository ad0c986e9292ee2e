from ostoolkit.measure import perfbench
from ostoolkit.report import Measurement, make_result

PERF_OUTPUT = """\
# Running 'sched/pipe' benchmark:
# Executed 20000 pipe operations between two processes

     Total time: 0.143 [sec]

       7.187150 usecs/op
         139137 ops/sec
"""


def testparse_usecs_per_op():
    assert perfbench.parse_usecs_per_op(PERF_OUTPUT) == 7.18715
    assert perfbench.parse_usecs_per_op("garbage") is None


def test_without_perf_one_line_warning(monkeypatch):
    monkeypatch.setattr(perfbench.shutil, "which", lambda name: None)
    m = perfbench.cross_check_perf(0, 100, 1)
    assert m.results == ()
    assert m.warnings == ("--cross-check: perf is not installed; skipped (Debian: linux-perf)",)


def test_findings_set_perf_beside_ours():
    ours = make_result("switch.process.same_core", "p", "us", [2.0], extra={"gross_us": 3.5})
    perf = make_result("perf.sched_pipe.process.same_core", "perf", "us", [3.1])
    m = perfbench.add_perf_findings(Measurement((ours, perf)))
    assert m.findings == (
        "process, same core: perf bench sched pipe 3.10 µs per hop (gross), ostoolkit 3.50 µs "
        "gross, 2.00 µs net; the gross gap is Python's own cost per hop, which net subtracts",
    )
