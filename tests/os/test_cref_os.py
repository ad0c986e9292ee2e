"""The C harness beside measure-switch, built and run for real: its blocks served in turn with
ours, Python's share, one line where no compiler is found, and nothing left behind."""

import json
import os
import subprocess
import tempfile
from dataclasses import replace

import pytest
from harness.paths import ENTRY
from harness.result_docs import documented_ids

from ostoolkit.measure import cref
from ostoolkit.measure.switch import SwitchConfig, measure_switch

CPU = max(os.sched_getaffinity(0))


@pytest.fixture
def compiler():
    found = cref.find_compiler()
    if found is None:
        pytest.skip("no C compiler (gcc or cc) on PATH")
    return found


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder set to a private one, to see that the build folder is removed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("model", cref.MODELS)
def test_a_served_pair_times_blocks_on_command_and_counts_its_switches(compiler, tmp_path, model):
    with cref.built_harness(tmp_path) as binary, cref.served_pair(binary, model, CPU, 0) as t:
        before = t.switches()
        rounds = t.rounds(200)
        after = t.switches()
        baseline = t.baseline(200)
    assert rounds > baseline > 0
    hops = 2 * 200
    assert 0.8 * hops <= sum(after) - sum(before) <= 1.5 * hops  # about one switch a hop
    assert list(tmp_path.iterdir()) == [], "the build folder outlived the run"


def test_measure_switch_alternates_the_c_harness_and_gives_python_s_share(compiler, private_tmp):
    config = replace(
        SwitchConfig.quick(),
        placements=("same_core",),
        repeat=4,
        blocks=2,
        cpus=(CPU,),
        c_harness=True,
    )
    m = measure_switch(config)
    by_id = {r.id: r for r in m.results}
    rows = documented_ids()
    for model in cref.MODELS:
        c_ref = by_id[f"ref.lat_pipe.{model}.same_core"]
        share = by_id[f"switch.{model}.python_share"]
        # both blocks, or (a busy host) one left out with its note
        assert c_ref.n == sum(c_ref.runs) in (2, 4)
        assert c_ref.n == 4 or c_ref.notes
        assert c_ref.extra["cpus"] == [CPU, CPU]
        assert 0 < c_ref.extra["baseline_us"] < c_ref.extra["gross_us"]
        assert 0.8 <= c_ref.extra["switches_per_hop"] <= 1.5
        assert share.n <= 2
        low, high = share.extra["ci_us"]
        assert low <= share.median <= high
        for result in (c_ref, share):
            assert any(regex.match(result.id) and unit == "us" for regex, unit in rows)
    assert any(f.startswith("Python's share (ostoolkit − C") for f in m.findings)
    assert not any("C harness was skipped" in w for w in m.warnings)
    assert list(private_tmp.iterdir()) == [], "the build folder outlived the run"


def test_without_a_compiler_one_line_says_why_and_there_is_no_share(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    argv = [str(ENTRY), "measure-switch", "--placement", "same-core", "--repeat", "2"]
    argv += ["--iterations", "200", "--json", "-"]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": str(empty)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ids = {r["id"] for r in report["results"]}
    assert "switch.process.same_core" in ids
    assert not any(i.startswith("ref.lat_pipe.") or i.endswith(".python_share") for i in ids)
    skipped = [w for w in report["warnings"] if "C harness" in w]
    assert skipped == ["the C harness was skipped: no C compiler (gcc or cc) found (Debian: gcc)"]
