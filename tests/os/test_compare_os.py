"""compare on real measurements: a working set beyond L2 is slower; the same settings are not.

Two small ``measure-switch --model process --placement same-core --quick`` runs through the
installed entry point (about a second each), made once for the module: one with no working
set, one whose tasks each read a buffer several times the L2 cache before every hop. compare
must call the round trip of the big working set ``slower`` (each hop then refills the cache),
and never call a figure ``slower`` or ``faster`` between samples of the same settings.

Two *runs* of the same settings are a harder case: on the 2-CPU VM this was written on, the
host itself runs at one of two speeds for seconds at a time (the same-core round trip at
about 7.5 or 10.5 µs), each run tight with no other task on its CPU and no steal measured.
Every sample carries the host's speed reference beside it, and compare does not call a figure
slower or faster when the host's reference moved as far; so two same-core runs must never
be called slower or faster. Measured before writing this test: 0 of 160 same-core
comparisons in 40 pairs of quick runs (judged sample by sample, without the reference and
with each figure sampled in one stretch: 39 of 160). Cross-core wake-ups are left out: they
depend on where the hypervisor has put the two vCPUs, which no single-task reference sees
(10 of 160 in the same pairs; docs/method.md says so).
The claim is about a quiet host: when the interference meter saw other tasks take more than
OTHER_CPU_LIMIT of the measured CPU (a busy CI runner, tests in parallel), the test skips and
says how much; it failed once here that way, under five other test runs at once.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest
from harness.paths import ENTRY

from ostoolkit.measure.switch import MAX_WORKING_SET_KB
from ostoolkit.stats import OTHER_CPU_LIMIT

CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
L2_TIMES = 4  # the big working set, in L2 sizes
L2_FALLBACK_KB = 1024  # when sysfs does not say (a container may hide it)
ROUND_TRIP = "roundtrip.process.same_core"
SWITCH = ("measure-switch", "--model", "process", "--placement", "same-core", "--quick")
MOVED = ("slower", "faster")


def l2_kb() -> int:
    """The L2 cache size of CPU 0 in KiB, from sysfs (cache/index*/level, type and size)."""
    for index in sorted(CACHE.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if level == "2" and kind in ("Unified", "Data") and size[:-1].isdigit():
            scale = {"K": 1, "M": 1024}.get(size[-1])
            if scale:
                return int(size[:-1]) * scale
    return L2_FALLBACK_KB


def measure(path: Path, working_set_kb: int) -> Path:
    """One quick process switch run writing its JSON report to ``path``."""
    args = [ENTRY, *SWITCH, "--working-set", str(working_set_kb), "--json", str(path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return path


def compare(*paths: Path, labels: tuple[str, ...]) -> dict:
    """compare's JSON report of the given reports, labelled."""
    args = [ENTRY, "compare", *map(str, paths), "--json", "-"]
    for label in labels:
        args += ["--label", label]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def moved(report: dict) -> list[tuple]:
    """The comparisons that say slower or faster, with their ratio and interval."""
    return [
        (c["id"], c["verdict"], c["ratio"], c["ci_low"], c["ci_high"])
        for c in report["data"]["comparisons"]
        if c["verdict"] in MOVED
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The two runs: none, and a working set of L2_TIMES the L2 (in KiB)."""
    folder = tmp_path_factory.mktemp("switch")
    big_kb = min(L2_TIMES * l2_kb(), MAX_WORKING_SET_KB)
    return {
        "none": measure(folder / "a.json", 0),
        "big": measure(folder / "big.json", big_kb),
        "big_kb": big_kb,
    }


@pytest.mark.timeout(60)
def test_a_working_set_beyond_l2_makes_the_round_trip_slower(runs):
    label = f"{runs['big_kb']} KiB"
    report = compare(runs["none"], runs["big"], labels=("none", label))
    assert report["host"] == {"compared": ["none", label]}
    rows = {(c["id"], c["host"]): c for c in report["data"]["comparisons"]}
    round_trip = rows[(ROUND_TRIP, label)]
    assert round_trip["verdict"] == "slower", round_trip
    assert round_trip["ci_low"] > 1.05


@pytest.mark.timeout(60)
def test_two_runs_of_the_same_settings_are_never_slower_or_faster(runs, tmp_path):
    again = measure(tmp_path / "again.json", 0)
    report = compare(runs["none"], again, labels=("first", "second"))
    busy = [
        c for c in report["data"]["comparisons"] if (c["other_cpu_share"] or 0) > OTHER_CPU_LIMIT
    ]
    if busy:  # the claim is about a quiet host; other tasks on the CPU are another experiment
        pytest.skip(f"other tasks took {busy[0]['other_cpu_share']:.0%} of the measured CPU")
    judged = [c for c in report["data"]["comparisons"] if c["host"] == "second"]
    timed = [c for c in judged if not c["id"].startswith("trace.")]  # counts, where permitted
    assert {c["id"] for c in timed} == {ROUND_TRIP, "switch.process.same_core"}
    assert all(c["host_ratio"] is not None for c in timed), timed
    assert not moved(report), moved(report)  # the kernel's counts per hop included


@pytest.mark.timeout(60)
def test_one_run_split_in_two_is_never_slower_or_faster(runs, tmp_path):
    """Alternate samples of one real run: the same settings, host state and distribution."""
    data = json.loads(runs["none"].read_text())
    halves = []
    for part in (0, 1):
        results = []
        for r in data["results"]:  # every run split in two, so each half keeps its runs
            bounds = [sum(r["runs"][:i]) for i in range(len(r["runs"]) + 1)]
            split = [r["samples"][a:b][part::2] for a, b in itertools.pairwise(bounds)]
            samples = [value for run in split for value in run]
            runs_kept = [len(run) for run in split if run]
            results.append({**r, "samples": samples, "n": len(samples), "runs": runs_kept})
        halves.append(tmp_path / f"half{part}.json")
        halves[-1].write_text(json.dumps({**data, "results": results}))
    report = compare(*halves, labels=("even", "odd"))
    assert not moved(report), moved(report)


WORKFLOW = Path(__file__).resolve().parents[2] / "examples/github-workflow.yml"
GATE_SECTIONS = "spawn,forktree,memory"  # the sections a gate can afford to run twice here


def gate_ratio() -> str:
    """The example workflow's gate: the action's fail-above input, as the workflow gives it."""
    text = WORKFLOW.read_text()
    step = text[text.index("- uses: ./") :]
    value = step[step.index("fail-above:") + len("fail-above:") :].splitlines()[0]
    return value.strip().strip("'\"")


@pytest.mark.timeout(180)
def test_the_example_gate_passes_on_two_reports_of_one_unchanged_host(tmp_path):
    """Two quick reports of this host, one after the other: the workflow's gate exits 0."""
    paths = []
    for name in ("baseline", "this-run"):
        path = tmp_path / f"{name}.json"
        args = [ENTRY, "report", "--quick", "--only", GATE_SECTIONS, "--json", str(path)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        paths.append(path)
    # The action runs: compare BASELINE... REPORT --fail-above RATIO (action/run.sh).
    args = [ENTRY, "compare", *map(str, paths), "--fail-above", gate_ratio(), "--json", "-"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    report = json.loads(done.stdout)
    assert done.returncode == 0, report["data"]["regressions"]
    assert report["data"]["fail_above"] == 1.5
    judged = [c for c in report["data"]["comparisons"] if c["host"] == "this-run"]
    assert all(c["runs"] >= 3 or c["exact"] for c in judged if c["verdict"] != "missing")
