"""compare: the data shape, verdict words, the gate, labels, refusals, and the exit codes."""

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit.cli import run as cli_run
from ostoolkit.compare import engine as compare_module
from ostoolkit.compare.engine import (
    HEADLINES,
    SECTION_ORDER,
    SECTIONS,
    collect_paths,
    compare_reports,
    load_all,
    section_of,
)
from ostoolkit.compare.hosts import host_differences, host_label
from ostoolkit.errors import InvalidRequest
from ostoolkit.files import write_text
from ostoolkit.render import render
from ostoolkit.report import METHODS, Measurement, Result, build_report

ROOT = Path(__file__).resolve().parents[2]
HOST = {
    "hostname": "a",
    "cpu_model": "Intel(R) Xeon(R) Gold 6338",
    "kernel": "6.1.0-13-amd64",
    "virtualization": {"hypervisor": True, "container": "none"},
    "clocksource": "tsc",
}
# Ten samples spread evenly ±2 % around 1: a tight figure whose interval is narrow.
SHAPE = [0.98 + 0.04 * i / 9 for i in range(10)]


def result(id, median, unit="us", n=10, status="ok", extra=None, runs=None, exact=False):
    """A figure of n samples around ``median``, in two runs unless ``runs`` says otherwise."""
    samples = tuple(median * s for s in SHAPE[:n]) if n > 1 else (median,)
    if runs is None:
        runs = (n // 2, n - n // 2) if n > 1 else (1,)
    return Result(
        id,
        f"label of {id}",
        unit,
        median,
        min(samples),
        max(samples),
        samples,
        len(samples),
        status=status,
        extra=extra or {},
        runs=runs,
        exact=exact,
    )


def report(results, **host):
    return build_report("measure-switch", [], Measurement(tuple(results)), {**HOST, **host}, "t", 1)


def items(measurement, host=None):
    """The comparison objects by id (of one host when given)."""
    return {
        c["id"]: c for c in measurement.data["comparisons"] if host is None or c["host"] == host
    }


def write(folder, name, rep):
    path = folder / name
    write_text(str(path), rep.to_json(), "--json")  # as the CLI writes --json
    return str(path)


# -- the data ------------------------------------------------------------------------------


def test_verdict_words_follow_the_unit():
    figures = [
        ("t", "us"),
        ("m", "ms"),
        ("b", "bytes"),
        ("c", "count"),
        ("q", "per_s"),
        ("r", "ratio"),
    ]
    a = report([result(i, 100.0, unit) for i, unit in figures])
    up = report([result(i, 200.0, unit) for i, unit in figures], hostname="b")
    down = report([result(i, 50.0, unit) for i, unit in figures], hostname="c")
    m = compare_reports([a, up, down], ["a", "up", "down"])
    words = {(c["id"], c["host"]): c["verdict"] for c in m.data["comparisons"]}
    assert [words[(i, "up")] for i, _ in figures] == [
        "slower",
        "slower",
        "more",
        "more",
        "higher",
        "higher",
    ]
    assert [words[(i, "down")] for i, _ in figures] == [
        "faster",
        "faster",
        "less",
        "less",
        "lower",
        "lower",
    ]
    assert {words[(i, "a")] for i, _ in figures} == {"baseline"}
    regressed = {(c["id"], c["host"]) for c in m.data["comparisons"] if c["regressed"]}
    # worse: up for times, memory and counts, down for per_s; ratio has no worse direction
    assert regressed == {("t", "up"), ("m", "up"), ("b", "up"), ("c", "up"), ("q", "down")}


def test_a_comparison_object_holds_numbers_and_fixed_words():
    a = report([result("switch.process.same_core", 2.0, extra={"other_cpu_share": 0.2})])
    context = {"other_cpu_share": 0.01, "steal_share": 0.0}
    b = report([result("switch.process.same_core", 2.6, "us", 10, "noisy", context)], hostname="b")
    m = compare_reports([a, b], ["a", "b"])
    item = items(m, "b")["switch.process.same_core"]
    assert item == {
        "id": "switch.process.same_core",
        "label": "label of switch.process.same_core",
        "unit": "us",
        "section": "switch",
        "headline": True,
        "host": "b",
        "baseline": "a",
        "method": METHODS["switch"],
        "median": pytest.approx(2.6),
        "p10": pytest.approx(2.6 * 0.984),
        "p90": pytest.approx(2.6 * 1.016),
        "n": 10,
        "runs": 2,
        "exact": False,
        "resolution": None,
        "spread": pytest.approx(0.032),
        "status": "noisy",
        "other_cpu_share": 0.01,
        "steal_share": 0.0,
        "reference_us": None,
        "strip": item["strip"],
        "ratio": 1.3,
        "ci_low": item["ci_low"],
        "ci_high": item["ci_high"],
        "p_value": item["p_value"],
        "verdict": "slower",
        "reason": "interval outside the band",
        "regressed": True,
        "host_ratio": None,
        "host_ci_low": None,
        "host_ci_high": None,
    }
    assert 1.25 < item["ci_low"] <= 1.3 <= item["ci_high"] < 1.35
    assert item["p_value"] == 0.001  # every resampled ratio above 1: the least p of 1,000 draws
    assert len(item["strip"]) == 8
    assert sum(item["strip"]) == 10
    base = items(m, "a")["switch.process.same_core"]
    assert (base["verdict"], base["reason"], base["ratio"], base["p_value"]) == (
        "baseline",
        "baseline",
        None,
        None,
    )
    assert (base["other_cpu_share"], base["steal_share"]) == (0.2, None)


REFS = [1.13 + 0.002 * i for i in range(10)]  # a host's speed reference samples, tight
SLOW = [1.6 / 1.13 * r for r in REFS]  # the same host 1.42x slower at it


def test_the_host_speed_reference_qualifies_times_and_rates_only():
    """Each figure's own references give its host move: r for times, 1 / r for rates."""
    figures = [("t", "us", 7.5, 10.2), ("q", "per_s", 1000.0, 740.0), ("b", "bytes", 10.0, 13.6)]
    a = report(
        [result(i, x, unit, extra={"reference_samples_us": REFS}) for i, unit, x, _ in figures]
    )
    b = report(
        [result(i, y, unit, extra={"reference_samples_us": SLOW}) for i, unit, _, y in figures]
    )
    m = compare_reports([a, b], ["a", "b"])
    assert m.data["same_host"] == {"a": True, "b": True}
    got = items(m, "b")
    assert got["t"]["host_ratio"] == pytest.approx(1.6 / 1.13, rel=1e-3)
    assert got["t"]["host_ci_low"] < got["t"]["host_ratio"] < got["t"]["host_ci_high"]
    assert (got["t"]["verdict"], got["t"]["reason"]) == ("unclear", "host moved as far")
    assert got["q"]["host_ratio"] == pytest.approx(1.13 / 1.6, rel=1e-3)
    assert (got["q"]["verdict"], got["q"]["reason"]) == ("unclear", "host moved as far")
    assert (got["b"]["host_ratio"], got["b"]["verdict"]) == (None, "more")  # memory: no speed
    assert items(m, "a")["t"]["host_ratio"] is None
    # no usable reference on one side: the plain verdict
    for bad in ({"reference_us": 0.0}, {"reference_us": "1.6"}, {}):
        c = report([result("t", 10.2, extra=bad)])
        plain = items(compare_reports([a, c], ["a", "c"]), "c")["t"]
        assert (plain["host_ratio"], plain["verdict"]) == (None, "slower")


def test_a_reference_without_an_interval_is_context_only():
    """A window's two samples, one before and one after, cannot show that the host moved."""
    a = report(
        [result("t", 7.5, extra={"reference_us": 1.13, "reference_samples_us": [1.1, 1.16]})]
    )
    b = report([result("t", 10.2, extra={"reference_us": 1.6})])
    got = items(compare_reports([a, b], ["a", "b"]), "b")["t"]
    assert got["host_ratio"] == pytest.approx(1.6 / 1.13, rel=1e-4)
    assert got["host_ci_low"] == got["host_ci_high"] == got["host_ratio"]
    assert (got["verdict"], got["reason"]) == ("slower", "interval outside the band")


@pytest.mark.parametrize(
    "change",
    [
        {"hostname": "b"},
        {"kernel": "6.12.0"},
        {"mitigations": {"spectre_v2": "off"}},
        {"python": "CPython 3.13.0"},
    ],
)
def test_another_host_or_setup_shows_the_move_but_keeps_the_verdict(change):
    """Between hosts, how fast each runs system calls is part of what is compared."""
    a = report([result("t", 7.5, extra={"reference_samples_us": REFS})])
    b = report([result("t", 10.2, extra={"reference_samples_us": SLOW})], **change)
    m = compare_reports([a, b], ["a", "b"])
    got = items(m, "b")["t"]
    assert (got["verdict"], got["reason"]) == ("slower", "interval outside the band")
    assert got["host_ratio"] == pytest.approx(1.6 / 1.13, rel=1e-3)
    assert m.data["same_host"] == {"a": True, "b": False}


def test_a_cpuset_or_the_load_average_is_still_the_same_host():
    a = report(
        [result("t", 7.5, extra={"reference_samples_us": REFS})],
        cpus_allowed=[0, 1],
        loadavg=[0.1, 0.2, 0.3],
    )
    b = report(
        [result("t", 10.2, extra={"reference_samples_us": SLOW})],
        cpus_allowed=[1],
        loadavg=[5.0, 2.0, 1.0],
    )
    got = items(compare_reports([a, b], ["a", "b"]), "b")["t"]
    assert (got["verdict"], got["reason"]) == ("unclear", "host moved as far")


def test_reference_samples_give_the_host_move_an_interval():
    """A host that moved 1.20x with samples of it: a 1.35x figure is slower, 1.22x unclear."""
    refs = [1.0 + 0.002 * i for i in range(15)]
    a = report([result("t", 10.0, extra={"reference_samples_us": refs, "reference_us": 1.014})])
    moved = [1.2 * r for r in refs]
    for figure, verdict in ((13.5, "slower"), (12.2, "unclear")):
        b = report([result("t", figure, extra={"reference_samples_us": moved})])
        got = items(compare_reports([a, b], ["a", "b"]), "b")["t"]
        assert got["verdict"] == verdict, got
        assert got["host_ratio"] == pytest.approx(1.2, rel=1e-3)
        assert got["host_ci_low"] < 1.2 < got["host_ci_high"] < 1.22
    # a sample that is not a number: the median, if any, is used alone
    c = report(
        [result("t", 12.2, extra={"reference_samples_us": [1.2, None], "reference_us": 1.2})]
    )
    got = items(compare_reports([a, c], ["a", "c"]), "c")["t"]
    assert got["host_ci_low"] == got["host_ci_high"] == got["host_ratio"]


def test_the_data_carries_no_text_with_numbers_and_no_table():
    a = report([result("x", 2.0), result("y", 1.0, n=1), result("z", 1.0, n=3)])
    b = report([result("x", 3.0), result("y", 1.1, n=1), result("z", 1.0, n=3)], hostname="b")
    m = compare_reports([a, b], ["host one", "host two"])
    assert "table" not in m.data
    assert m.findings == ()
    assert m.warnings == ()
    reasons = {c["reason"] for c in m.data["comparisons"]}
    assert reasons == {"baseline", "interval outside the band", "few samples"}
    for c in m.data["comparisons"]:
        for key in ("verdict", "reason", "section", "status"):
            assert not re.search(r"\d", c[key] or ""), (key, c[key])


def test_the_json_shape_is_the_documented_one():
    """docs/results.md lists every key of compare's data; both must name the same keys."""
    a = report([result("x", 2.0), result("only.a", 1.0)])
    b = report([result("x", 4.0), result("only.b", 1.0)], hostname="b")
    m = compare_reports([a, b], ["a", "b"], fail_above=1.2)
    documented = documented_keys()
    assert set(m.data) == documented["data"]
    for item in m.data["comparisons"]:
        assert set(item) == documented["data.comparisons[]"]
    assert m.data["regressions"]
    for item in m.data["regressions"]:
        assert set(item) == documented["data.regressions[]"]
    for item in m.data["host_differences"]:
        assert set(item) == documented["data.host_differences[]"]
    json.dumps(m.data, allow_nan=False)  # numbers are finite, everything is JSON


def documented_keys():
    """The keys docs/results.md lists under each "### `data...`" heading of the compare part."""
    text = (ROOT / "docs/results.md").read_text()
    sections = re.split(r"^### `(data[^`]*)`.*$", text, flags=re.MULTILINE)
    keys = {}
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        bullets = re.findall(r"^- ([^:]*):", body, flags=re.MULTILINE)  # up to the first colon
        keys[name] = {key for bullet in bullets for key in re.findall(r"`(\w+)`", bullet)}
    return keys


def test_summary_regressions_and_the_order_of_figures():
    ids = [
        "conn.thread.100.qps",
        "spawn.fork",
        "switch.thread.cross_core",
        "switch.process.same_core",
        "mystery.figure",
    ]
    a = report([result(i, 10.0, "per_s" if i.endswith("qps") else "us") for i in ids])
    b = report(
        [
            result(i, 10.0 * f, "per_s" if i.endswith("qps") else "us")
            for i, f in zip(ids, [0.5, 1.0, 2.0, 1.01, 3.0], strict=True)
        ],
        hostname="b",
    )
    m = compare_reports([a, b], ["a", "b"], fail_above=1.5)
    order = list(dict.fromkeys(c["id"] for c in m.data["comparisons"]))
    assert order == [
        "switch.process.same_core",
        "switch.thread.cross_core",
        "spawn.fork",
        "conn.thread.100.qps",
        "mystery.figure",
    ]
    assert m.data["summary"] == {"b": {"same": 2, "slower": 2, "lower": 1}}
    assert [(r["id"], r["host"], r["verdict"]) for r in m.data["regressions"]] == [
        ("switch.thread.cross_core", "b", "slower"),
        ("conn.thread.100.qps", "b", "lower"),
        ("mystery.figure", "b", "slower"),
    ]
    gate = compare_reports([a, b], ["a", "b"], fail_above=2.5)
    assert [r["id"] for r in gate.data["regressions"]] == ["mystery.figure"]
    assert gate.data["fail_above"] == 2.5


def test_sections_and_headlines_live_in_one_table_each():
    assert section_of("roundtrip.thread.same_core") == "switch"
    assert section_of("sched.timeslice") == "states"
    assert section_of("conn.postgres.mem_per_conn") == "connections"
    assert section_of("clone.fork.shares.vm") == "clone"
    assert section_of("something.else") == "other"
    assert {section_of(i) for i in HEADLINES} <= set(SECTION_ORDER)
    assert len(HEADLINES) <= 10


def test_missing_figures_on_either_side():
    a = report([result("x", 2.0), result("only.a", 1.0)])
    b = report([result("x", 2.0), result("only.b", 1.0)], hostname="b")
    m = compare_reports([a, b], ["a", "b"])
    words = {(c["id"], c["host"]): (c["verdict"], c["reason"]) for c in m.data["comparisons"]}
    assert words[("only.a", "b")] == ("missing", "missing here")
    assert words[("only.b", "a")] == ("missing", "missing here")
    assert words[("only.b", "b")] == ("missing", "missing in the baseline")
    gone = items(m, "b")["only.a"]
    assert (gone["median"], gone["n"], gone["strip"], gone["status"]) == (None, 0, None, None)


def test_baseline_by_label_and_the_results_stand_alone():
    a = report([result("x", 2.0)])
    b = report([result("x", 4.0)], hostname="b")
    c = report([result("x", 3.0)], hostname="c")
    m = compare_reports([a, b], ["a", "b"], baseline="b")
    assert items(m, "a")["x"]["verdict"] == "faster"
    assert items(m, "b")["x"]["verdict"] == "baseline"
    assert m.data["baseline"] == "b"
    # a host's verdict depends on its samples and label only, not on who else is compared
    alone = items(compare_reports([a, b], ["a", "b"]), "b")["x"]
    crowd = items(compare_reports([a, c, b], ["a", "c", "b"]), "b")["x"]
    assert {k: v for k, v in alone.items() if k != "strip"} == {
        k: v for k, v in crowd.items() if k != "strip"
    }
    assert compare_reports([a, b], ["a", "b"]).data == compare_reports([a, b], ["a", "b"]).data


def test_labels_and_host_differences():
    a = report([result("x", 2.0)])
    b = report(
        [result("x", 2.0)],
        hostname="b",
        kernel="6.8.0-1-generic",
        virtualization={"hypervisor": False, "container": "none"},
    )
    assert host_label(a) == "a (Intel Xeon Gold, 6.1.0)"
    assert host_differences([a, b]) == [
        {"key": "hostname", "field": "hostname", "values": ["a", "b"]},
        {"key": "kernel", "field": "kernel", "values": ["6.1.0-13-amd64", "6.8.0-1-generic"]},
        {
            "key": "virtualization.hypervisor",
            "field": "virtualization: hypervisor",
            "values": [True, False],
        },
    ]
    c = report([result("x", 2.0)], cpus_allowed=[1])
    assert host_differences([a, c]) == [
        {"key": "cpus_allowed", "field": "CPUs allowed", "values": [None, [1]]}
    ]
    same = compare_reports([a, report([result("x", 2.0)])])
    assert same.data["hosts"] == ["a (Intel Xeon Gold, 6.1.0) #1", "a (Intel Xeon Gold, 6.1.0) #2"]


def test_refusals():
    a = report([result("x", 2.0)])
    with pytest.raises(InvalidRequest, match="no result id in common"):
        compare_reports([a, report([result("y", 1.0)])])
    with pytest.raises(InvalidRequest, match="--baseline 'z' is none of the labels"):
        compare_reports([a, a], ["p", "q"], baseline="z")
    with pytest.raises(InvalidRequest, match="--label was given 1 times for 2 reports"):
        compare_reports([a, a], ["p"])
    with pytest.raises(InvalidRequest, match="every report has the label 'p'"):
        compare_reports([a, a], ["p", "p"])
    with pytest.raises(InvalidRequest, match="--label is empty"):
        compare_reports([a, a], ["p", " "])
    empty = report([Result("x", "x", "us", 1.0, 1.0, 1.0, (), 0)])
    with pytest.raises(InvalidRequest, match=r"q: results\[0\] \(x\) has no samples"):
        compare_reports([a, empty], ["p", "q"])
    with pytest.raises(InvalidRequest, match="needs at least two reports"):
        compare_reports([a])


# -- the command line ----------------------------------------------------------------------


def test_cli_json_gate_and_exit_codes(tmp_path, monkeypatch):
    def no_host():
        raise AssertionError("compare measured this host")

    monkeypatch.setattr(cli_run, "collect_host", no_host)
    a = write(tmp_path, "a.json", report([result("x", 2.0)]))
    b = write(tmp_path, "b.json", report([result("x", 4.0)], hostname="b"))
    runner = CliRunner()
    ok = runner.invoke(
        cli_module.cli, ["compare", a, b, "--format", "json", "--label", "p", "--label", "q"]
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["host"] == {"compared": ["p", "q"]}
    assert data["results"] == []
    assert data["data"]["threshold"] == 0.05
    assert data["data"]["changed_only"] is False
    assert data["data"]["fail_above"] is None
    assert data["data"]["regressions"][0]["id"] == "x"  # listed, but no gate: exit 0
    gate = runner.invoke(cli_module.cli, ["compare", a, b, "--fail-above", "1.5"])
    assert gate.exit_code == 1, gate.output
    passed = runner.invoke(cli_module.cli, ["compare", a, b, "--fail-above", "2.5"])
    assert passed.exit_code == 0, passed.output
    changed = runner.invoke(
        cli_module.cli, ["compare", a, b, "--changed", "--threshold", "60", "--json", "-"]
    )
    assert changed.exit_code == 0, changed.output
    changed_data = json.loads(changed.stdout)["data"]
    assert changed_data["changed_only"] is True
    assert changed_data["threshold"] == 0.6
    assert changed_data["comparisons"][1]["verdict"] == "slower"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "0"], "--threshold"),
        (["--threshold", "100.5"], "--threshold"),
        (["--threshold", "nan"], "--threshold"),
        (["--threshold", "inf"], "--threshold"),
        (["--fail-above", "1"], "--fail-above"),
        (["--fail-above", "inf"], "--fail-above"),
        (["--fail-above", "nan"], "--fail-above"),
        (["--fail-above", "0.5"], "--fail-above"),
        (["--label", "same", "--label", "same"], "every report has the label 'same'"),
    ],
)
def test_cli_bad_options_exit_2(tmp_path, args, message):
    a = write(tmp_path, "a.json", report([result("x", 2.0)]))
    b = write(tmp_path, "b.json", report([result("x", 4.0)], hostname="b"))
    done = CliRunner().invoke(cli_module.cli, ["compare", a, b, *args])
    assert done.exit_code == 2, done.output
    assert message in done.stderr


def test_cli_threshold_of_100_is_allowed(tmp_path):
    a = write(tmp_path, "a.json", report([result("x", 2.0)]))
    b = write(tmp_path, "b.json", report([result("x", 4.0)], hostname="b"))
    done = CliRunner().invoke(cli_module.cli, ["compare", a, b, "--threshold", "100"])
    assert done.exit_code == 0, done.output


def test_cli_refuses_a_report_given_twice(tmp_path):
    folder = folder_with(tmp_path)
    a = str(folder / "a.json")
    for args in ([a, a], [a, str(folder / "." / "a.json")], [str(folder), a]):
        done = CliRunner().invoke(cli_module.cli, ["compare", *args])
        assert done.exit_code == 2, done.output
        assert "is given twice" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["results"][0].update(samples=[], n=0),
            r"results\[0\] \(x\) has no samples; compare draws its verdicts from them",
        ),
        (
            lambda r: r["results"][0].update(n=7),
            r"results\[0\] \(x\): n is 7 but it holds 10 samples",
        ),
        (
            lambda r: r.update(results=[*r["results"], r["results"][0]]),
            r"results\[1\] \(x\): the id is given twice in the report",
        ),
    ],
    ids=["no-samples", "n-mismatch", "duplicate-id"],
)
def test_cli_reports_that_cannot_be_compared_are_refused_by_name(tmp_path, change, message):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    data = report([result("x", 2.0)]).to_dict()
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    done = CliRunner().invoke(cli_module.cli, ["compare", good, str(bad)])
    assert done.exit_code == 2, done.output
    assert re.search(re.escape(str(bad)) + ": " + message, done.stderr), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_appends_markdown_to_the_step_summary(tmp_path):
    a = write(tmp_path, "a.json", report([result("x", 2.0)]))
    b = write(tmp_path, "b.json", report([result("x", 4.0)], hostname="b"))
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    runner = CliRunner()
    done = runner.invoke(
        cli_module.cli, ["compare", a, b], env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert done.exit_code == 0, done.output
    appended = summary.read_text().removeprefix("before\n")
    assert "compare" in appended
    assert appended != done.stdout  # markdown there, the table on stdout
    refused = runner.invoke(
        cli_module.cli, ["compare", a, b], env={"GITHUB_STEP_SUMMARY": str(tmp_path)}
    )
    assert refused.exit_code == 2
    assert "GITHUB_STEP_SUMMARY" in refused.stderr


def test_the_sample_reports_compare():
    """The two sample reports: one VM with both CPUs, then with a cpuset of one."""
    reports = load_all([ROOT / "examples/reports"])
    m = compare_reports(reports, ["2 CPUs", "cpuset 1"])
    mine = items(m, "cpuset 1")
    # a same-core switch does not care how many CPUs the host has: 25 runs a side agree
    assert mine["switch.thread.same_core"]["verdict"] == "same"
    assert mine["switch.thread.same_core"]["runs"] == 25
    assert mine["switch.process.cross_core"]["verdict"] == "missing"  # one CPU: no cross core
    assert mine["forktree.processes"]["reason"] == "exact"
    assert mine["forktree.processes"]["verdict"] == "same"
    assert mine["conn.pooled.10.mem_per_conn"]["reason"] == "below resolution"
    # a tree forking on one CPU waits its turn: slower, in every run
    assert mine["forktree.fork"]["verdict"] == "slower"
    assert mine["forktree.fork"]["ci_low"] > 1.5


# -- reading files (the loader's rules, through compare) --------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "bad.json is not JSON"),
        ('{"schema": "ostoolkit/0"}', 'bad.json: schema is "ostoolkit/0", expected "ostoolkit/1"'),
        ('{"schema": "ostoolkit/1"}', "bad.json: tool is missing"),
        ("[1, 2]", "bad.json is not an ostoolkit report"),
        ("", "bad.json is empty"),
        (
            '{"schema": "ostoolkit/1", "duration_s": NaN}',
            "bad.json: duration_s is NaN, expected a finite",
        ),
    ],
)
def test_cli_bad_files_are_one_line_exit_2(tmp_path, content, message):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result_ = CliRunner().invoke(cli_module.cli, ["compare", good, str(bad)])
    assert result_.exit_code == 2
    assert message in result_.stderr
    assert result_.stderr.count("bad.json") == 1  # named once, not "bad.json: bad.json ..."
    assert len(result_.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result_.output


def test_cli_wrong_field_type_names_the_json_path(tmp_path):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    data = report([result("y", 1.0), result("x", 2.0)]).to_dict()
    data["results"][1]["median"] = "2.0"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result_ = CliRunner().invoke(cli_module.cli, ["compare", good, str(bad)])
    assert result_.exit_code == 2
    assert f"{bad}: results[1].median is a string, expected a number" in result_.stderr


def folder_with(tmp_path):
    """A folder holding two good reports, a.json and b.json."""
    folder = tmp_path / "reports"
    folder.mkdir()
    write(folder, "a.json", report([result("x", 2.0)]))
    write(folder, "b.json", report([result("x", 4.0)], hostname="b"))
    (folder / "notes.txt").write_text("not a report")
    return folder


def test_collect_paths_lists_json_entries_sorted_and_keeps_files(tmp_path):
    folder = folder_with(tmp_path)
    given = tmp_path / "given.report"
    assert collect_paths([given, folder]) == [given, folder / "a.json", folder / "b.json"]
    assert len(load_all([folder])) == 2


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (os.mkfifo, "is a FIFO, not a regular file"),
        (os.mkdir, "is a directory, not a regular file"),
        (lambda path: os.symlink("/dev/zero", path), "is a character device"),
        (lambda path: os.symlink(path + ".gone", path), "No such file or directory"),
    ],
    ids=["fifo", "directory", "link-to-dev-zero", "broken-link"],
)
def test_folder_entry_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path, make, kind):
    folder = folder_with(tmp_path)
    entry = folder / "c.json"
    make(str(entry))
    with pytest.raises(InvalidRequest) as err:
        load_all([folder])
    message = str(err.value)
    assert str(entry) in message
    assert kind in message
    assert "\n" not in message


@pytest.mark.timeout(10)
@pytest.mark.parametrize("make", ["fifo", "dev-zero"])
def test_cli_refuses_a_fifo_or_dev_zero_given_directly(tmp_path, make):
    good = write(tmp_path, "good.json", report([result("x", 2.0)]))
    if make == "fifo":
        bad = str(tmp_path / "pipe.json")
        os.mkfifo(bad)
    else:
        bad = "/dev/zero"
    result_ = CliRunner().invoke(cli_module.cli, ["compare", good, bad])
    assert result_.exit_code == 2
    assert result_.stderr.strip().splitlines() == [
        f"Error: {bad} is {'a FIFO' if make == 'fifo' else 'a character device'}, "
        "not a regular file"
    ]


def test_folder_without_reports_is_refused_by_name(tmp_path):
    empty = tmp_path / "void"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    with pytest.raises(InvalidRequest, match=r"^the folder .*void holds no \*\.json report$"):
        collect_paths([empty])


def test_unlistable_folder_is_refused(tmp_path, monkeypatch):
    folder = folder_with(tmp_path)

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(compare_module.os, "scandir", refuse)
    with pytest.raises(
        InvalidRequest, match=r"cannot list the folder .*reports: Permission denied"
    ):
        collect_paths([folder])


def test_extreme_figures_still_give_json():
    a = report([result("x", 1e-300), result("y", -1e308, n=1)])
    b = report([result("x", 1e300), result("y", 1e308, n=1)], hostname="b")
    m = compare_reports([a, b], ["a", "b"])
    json.dumps(m.data, allow_nan=False)
    assert items(m, "b")["x"]["reason"] == "ratio out of range"
    assert items(m, "b")["y"]["reason"] == "not positive"


# -- runs, pooling and exact figures -----------------------------------------------------------


def test_reports_sharing_a_label_are_pooled_as_more_runs():
    """One run a side is never given a direction; two reports a side, pooled, are."""
    a1, a2 = (report([result("spawn.fork", 100.0 * f, runs=(10,))]) for f in (1.0, 1.01))
    b1, b2 = (report([result("spawn.fork", 150.0 * f, runs=(10,))]) for f in (1.0, 1.01))
    alone = items(compare_reports([a1, b1], ["a", "b"]), "b")["spawn.fork"]
    assert (alone["verdict"], alone["reason"], alone["runs"]) == ("unclear", "one run", 1)
    m = compare_reports([a1, a2, b1, b2], ["a", "a", "b", "b"])
    assert m.data["hosts"] == ["a", "b"]
    assert m.data["reports"] == {"a": 2, "b": 2}
    pooled = items(m, "b")["spawn.fork"]
    assert (pooled["verdict"], pooled["runs"], pooled["n"]) == ("slower", 2, 20)
    assert pooled["ci_low"] > 1.4


def test_exact_figures_are_judged_on_their_values():
    a = report([result("conn.process.10.procs", 11.0, "count", n=1, exact=True)])
    b = report([result("conn.process.10.procs", 101.0, "count", n=1, exact=True)], hostname="b")
    same = report([result("conn.process.10.procs", 11.0, "count", n=1, exact=True)])
    m = compare_reports([a, b], ["a", "b"], fail_above=1.5)
    item = items(m, "b")["conn.process.10.procs"]
    assert (item["verdict"], item["reason"], item["exact"]) == ("more", "exact", True)
    assert item["regressed"]
    assert item["ci_low"] == item["ratio"]
    equal = items(compare_reports([a, same], ["a", "c"]), "c")["conn.process.10.procs"]
    assert (equal["verdict"], equal["reason"]) == ("same", "exact")


def test_a_figure_below_its_resolution_is_unclear_and_shown_below_it():
    def pss(values):
        return Result(
            "conn.pooled.10.mem_per_conn",
            "PSS per connection",
            "bytes",
            sorted(values)[2],
            min(values),
            max(values),
            tuple(values),
            5,
            runs=(1,) * 5,
            resolution=4096.0,
        )

    a = report([pss([-3000.0, 200.0, 1000.0, 1200.0, 2000.0])])
    b = report([pss([5000.0, 6000.0, 7000.0, 8000.0, 9000.0])], hostname="b")
    m = compare_reports([a, b], ["a", "b"])
    item = items(m, "b")["conn.pooled.10.mem_per_conn"]
    assert (item["verdict"], item["reason"], item["resolution"]) == (
        "unclear",
        "below resolution",
        4096.0,
    )
    text = render(build_report("compare", [], m, {"compared": ["a", "b"]}, "t", 1), "table")
    assert "< 4.0 KiB" in text


def test_the_gate_fails_only_on_a_conclusive_regression(tmp_path):
    """1.6x slower in one run a side: unclear, exit 0; in two runs a side: slower, exit 1."""
    one = [result("spawn.fork", 100.0, runs=(10,)), result("spawn.thread", 10.0, runs=(10,))]
    slow = [result("spawn.fork", 160.0, runs=(10,)), result("spawn.thread", 10.0, runs=(10,))]
    a = write(tmp_path, "a.json", report(one))
    b = write(tmp_path, "b.json", report(slow, hostname="b"))
    runner = CliRunner()
    done = runner.invoke(cli_module.cli, ["compare", a, b, "--fail-above", "1.5"])
    assert done.exit_code == 0, done.output
    runs = [result("spawn.fork", 100.0), result("spawn.thread", 10.0)]
    slower = [result("spawn.fork", 160.0), result("spawn.thread", 10.0)]
    c = write(tmp_path, "c.json", report(runs))
    d = write(tmp_path, "d.json", report(slower, hostname="b"))
    failed = runner.invoke(cli_module.cli, ["compare", c, d, "--fail-above", "1.5", "--json", "-"])
    assert failed.exit_code == 1, failed.output
    gate = runner.invoke(cli_module.cli, ["compare", c, d, "--fail-above", "1.7"])
    assert gate.exit_code == 0  # conclusive, but its interval's near end is below 1.7


# -- ostoolkit and method versions -----------------------------------------------------------


def versioned(results, methods, version="0.2.0", **host):
    """A report as ostoolkit ``version`` wrote it, with these method versions (None: before 0.2.0,
    none recorded)."""
    tool = {"name": "ostoolkit", "version": version}
    if methods is not None:
        tool["methods"] = methods
    return replace(report(results, **host), tool=tool)


FIGURES = [("switch.process.same_core", 2.0), ("ring.thread.4", 3.0), ("spawn.fork", 100.0)]


def test_the_method_table_is_keyed_by_compare_sections():
    assert set(METHODS) == set(SECTIONS)
    assert all(isinstance(v, int) and v >= 1 for v in METHODS.values())
    assert report([result("x", 1.0)]).methods == METHODS  # every report carries all of it


def test_a_changed_method_leaves_its_section_unjudged_and_the_others_judged():
    a = versioned([result(i, m) for i, m in FIGURES], {**METHODS, "switch": 1})
    b = versioned(
        [result(i, m * 2) for i, m in FIGURES],
        {**METHODS, "switch": 2},
        "0.3.0",
        hostname="b",
    )
    m = compare_reports([a, b], ["a", "b"], fail_above=1.5)
    got = items(m, "b")
    for switch in ("switch.process.same_core", "ring.thread.4"):  # ring.* is in switch
        item = got[switch]
        assert (item["verdict"], item["reason"], item["method"]) == (
            "not judged",
            "method changed",
            2,
        )
        assert (item["ratio"], item["ci_low"], item["regressed"]) == (None, None, False)
        assert (item["n"], item["runs"]) == (10, 2)  # its own figures are still shown
        assert items(m, "a")[switch]["method"] == 1
    assert (got["spawn.fork"]["verdict"], got["spawn.fork"]["method"]) == ("slower", 1)
    assert m.data["summary"] == {"b": {"not judged": 2, "slower": 1}}
    assert [r["id"] for r in m.data["regressions"]] == ["spawn.fork"]
    differences = {row["key"]: row for row in m.data["host_differences"]}
    assert differences["tool.version"] == {
        "key": "tool.version",
        "field": "ostoolkit version",
        "values": ["0.2.0", "0.3.0"],
    }
    assert differences["tool.methods.switch"]["values"] == [1, 2]
    assert "tool.methods.spawn" not in differences
    rendered = build_report("compare", [], m, {"compared": ["a", "b"]}, "t", 1)
    table = render(rendered, "table")
    assert "method changed: switch 1 -> 2" in table
    assert re.search(r"ostoolkit version +0\.2\.0 +0\.3\.0", table), table
    assert "b vs a: 1 slower, 2 not judged (method changed: switch)" in table
    markdown = render(rendered, "markdown")
    assert "**not judged** (method changed: switch 1 -> 2)" in markdown


def test_a_report_without_method_versions_is_judged_as_before_and_said_unknown():
    old = versioned([result(i, m) for i, m in FIGURES], None, "0.1.0")
    new = versioned([result(i, m * 2) for i, m in FIGURES], {**METHODS, "switch": 5}, hostname="b")
    m = compare_reports([old, new], ["old", "new"])
    got = items(m, "new")
    assert {got[i]["verdict"] for i, _ in FIGURES} == {"slower"}
    assert items(m, "old")["spawn.fork"]["method"] is None
    differences = {row["key"]: row["values"] for row in m.data["host_differences"]}
    assert differences["tool.version"] == ["0.1.0", "0.2.0"]
    assert differences["tool.methods.switch"] == [None, 5]
    table = render(build_report("compare", [], m, {"compared": ["old", "new"]}, "t", 1), "table")
    assert re.search(r"method: switch +unknown +5", table), table
    # same versions: no row
    same = compare_reports([new, replace(new, host={**HOST, "hostname": "c"})], ["a", "c"])
    assert not [row for row in same.data["host_differences"] if row["key"].startswith("tool.")]


def test_reports_pooled_under_one_label_share_their_method_versions():
    runs = [result("spawn.fork", 100.0, runs=(10,))]
    first, second = versioned(runs, METHODS), versioned(runs, {**METHODS, "spawn": 2})
    other = versioned(runs, METHODS, hostname="b")
    with pytest.raises(InvalidRequest, match=r"labelled 'a' measured spawn by different methods"):
        compare_reports([first, second, other], ["a", "a", "b"])
    # a report without method versions pools with any: the known ones stand for the pool
    m = compare_reports([versioned(runs, None), second, other], ["a", "a", "b"])
    assert items(m, "a")["spawn.fork"]["method"] == 2
    assert items(m, "b")["spawn.fork"]["verdict"] == "not judged"
