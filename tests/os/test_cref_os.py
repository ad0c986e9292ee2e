"""The C harness of --cross-check, built and run for real: both figures, nothing left behind."""

import os

import pytest
from harness.result_docs import documented_ids

from ostoolkit.measure import cref

CPU = max(os.sched_getaffinity(0))


@pytest.fixture
def compiler():
    found = cref.find_compiler()
    if found is None:
        pytest.skip("no C compiler (gcc or cc) on PATH")
    return found


def test_both_models_measured_and_the_build_folder_removed(compiler, tmp_path):
    before = os.sched_getaffinity(0)
    m = cref.cross_check_c(CPU, 200, 3, tmp_path)
    assert m.warnings == ()
    assert [r.id for r in m.results] == [
        "ref.lat_pipe.process.same_core",
        "ref.lat_pipe.thread.same_core",
    ]
    rows = documented_ids()
    for result in m.results:
        assert result.unit == "us"
        assert result.n == 3
        assert result.median > 0, result
        assert result.extra["cpus"] == [CPU, CPU]
        assert result.extra["iterations"] == 200
        assert 0 < result.extra["baseline_us"] < result.extra["gross_us"]
        assert any(regex.match(result.id) and unit == "us" for regex, unit in rows)
    assert list(tmp_path.iterdir()) == [], "the build folder or binary outlived the run"
    assert os.sched_getaffinity(0) == before


def test_a_compiler_that_fails_is_one_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(cref, "find_compiler", lambda: "false")
    m = cref.cross_check_c(CPU, 200, 3, tmp_path)
    assert m.results == ()
    assert m.warnings == (
        "--cross-check: the C harness was skipped: compiling lat_pipe.c failed: exit status 1",
    )
    assert list(tmp_path.iterdir()) == []
