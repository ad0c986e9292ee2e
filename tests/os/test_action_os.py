"""The GitHub Action (action.yml) and the one script it runs (action/run.sh), without GitHub.

action.yml must hand the script every input it reads and publish every output it writes, and
each of its `run:` steps must be the script. The script then runs here as the action's step
would: inputs as INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY as files, RUNNER_TEMP
a temporary folder; OSTOOLKIT points it at this venv's ostoolkit, except in the one test that
installs ostoolkit from a copy of the sources into a fresh venv, as the action does on a runner.
(actionlint, where installed, checks the example workflow's use of the action:
tests/os/test_examples.py.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness.paths import ENTRY, REPO, source_copy

from ostoolkit.loader import load_report

ACTION = REPO / "action.yml"
SCRIPT = REPO / "action" / "run.sh"
WORKFLOW = REPO / "examples" / "github-workflow.yml"
SECTIONS = "switch"  # the quickest section: a quick report of it takes about 3 s


# A reader for the little YAML that action.yml and the example workflow use (PyYAML is not a
# dependency): block mappings and sequences by indentation, plain and quoted scalars, folded
# (>-) and literal (|) blocks, comments. Anything else is an error, not a guess.


def _scalar(text: str) -> Any:
    text = text.strip()
    if text[:1] in "\"'":
        end = text.find(text[0], 1)
        if end < 0 or (text[end + 1 :].strip() and not text[end + 1 :].strip().startswith("#")):
            raise ValueError(f"the tiny YAML reader cannot read {text!r}")
        return text[1:end]
    text = re.sub(r"\s+#.*$", "", text)
    if text.startswith("[") and text.endswith("]") and not re.search(r"[\[\]{}'\"]", text[1:-1]):
        return [item.strip() for item in text[1:-1].split(",") if item.strip()]
    if text[:1] in "[]{}&*!|>%@`":
        raise ValueError(f"the tiny YAML reader cannot read {text!r}")
    return text


def parse_yaml(text: str) -> Any:
    lines = [
        (len(line) - len(line.lstrip(" ")), line.strip())
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]

    def block_scalar(start_indent: int, style: str, pos: int) -> tuple[str, int]:
        parts = []
        while pos < len(lines) and lines[pos][0] > start_indent:
            parts.append(lines[pos][1])
            pos += 1
        return (" " if style.startswith(">") else "\n").join(parts), pos

    def node(pos: int, indent: int) -> tuple[Any, int]:
        if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
            items = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("-"):
                rest = lines[pos][1][1:].lstrip()
                inner = indent + (len(lines[pos][1]) - len(rest))
                lines[pos] = (inner, rest)  # the item's first key sits where its text starts
                if ":" in rest and not rest.startswith(("'", '"')):
                    item, pos = mapping(pos, inner)
                else:
                    item, pos = _scalar(rest), pos + 1
                items.append(item)
            return items, pos
        return mapping(pos, indent)

    def mapping(pos: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("-"):
            key, sep, value = lines[pos][1].partition(":")
            if not sep:
                raise ValueError(f"the tiny YAML reader expected 'key: value': {lines[pos][1]!r}")
            key, value = key.strip(), value.strip()
            if value[:1] in (">", "|"):
                out[key], pos = block_scalar(indent, value, pos + 1)
            elif value and not value.startswith("#"):
                out[key], pos = _scalar(value), pos + 1
            elif pos + 1 < len(lines) and lines[pos + 1][0] > indent:
                out[key], pos = node(pos + 1, lines[pos + 1][0])
            elif pos + 1 < len(lines) and lines[pos + 1][1].startswith("- "):
                out[key], pos = node(pos + 1, lines[pos + 1][0])  # a sequence at the key's indent
            else:
                out[key], pos = None, pos + 1
        return out, pos

    value, end = node(0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"the tiny YAML reader stopped at {lines[end][1]!r}")
    return value


def test_the_tiny_yaml_reader():
    text = """
# a comment
a: 1
b: "two # not a comment"  # a comment
l: [x, y]
c:
  - x
  - d: 3  # a comment
    e: >-
      folded
      text
  - f:
      g: h
empty:
"""
    assert parse_yaml(text) == {
        "a": "1",
        "b": "two # not a comment",
        "l": ["x", "y"],
        "c": ["x", {"d": "3", "e": "folded text"}, {"f": {"g": "h"}}],
        "empty": None,
    }
    with pytest.raises(ValueError, match="cannot read"):
        parse_yaml("a: {b: 1}")


# action.yml against the script.


def action() -> dict[str, Any]:
    return parse_yaml(ACTION.read_text())


def env_name(input_name: str) -> str:
    return "INPUT_" + input_name.upper().replace("-", "_")


def test_action_yml_declares_what_the_script_reads_and_writes():
    spec = action()
    assert spec["name"] == "ostoolkit"
    assert spec["description"]
    assert set(spec["inputs"]) == {
        "sections",
        "preset",
        "baseline",
        "fail-above",
        "version",
        "artifact-name",
    }
    assert spec["inputs"]["preset"]["default"] == "quick"
    assert all(value["description"] for value in spec["inputs"].values())
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    (run_step,) = [step for step in steps if "run" in step]
    # Every input reaches the script as its INPUT_* variable, and the script reads no other.
    expected = {env_name(name): f"${{{{ inputs.{name} }}}}" for name in spec["inputs"]}
    assert run_step["env"] == expected
    script = SCRIPT.read_text()
    assert set(re.findall(r"\bINPUT_[A-Z_]+\b", script)) == set(expected)
    # Every output is one the script writes to GITHUB_OUTPUT, and the other way round.
    written = set(re.findall(r'echo "([a-z-]+)=', script))
    assert written == set(spec["outputs"]) == {"report", "compare-exit"}
    for name, output in spec["outputs"].items():
        assert output["value"] == f"${{{{ steps.{run_step['id']}.outputs.{name} }}}}"
        assert output["description"]
    # The report is uploaded, after a failed comparison too (not after a cancel).
    (upload,) = [step for step in steps if "uses" in step]
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == "${{ steps.run.outputs.report }}"
    assert "!cancelled()" in upload["if"]


def test_every_run_step_calls_the_script():
    run_steps = [step for step in action()["runs"]["steps"] if "run" in step]
    assert run_steps
    for step in run_steps:
        assert step["shell"] == "bash"
        assert step["run"] == 'bash "$GITHUB_ACTION_PATH/action/run.sh"'
    assert os.access(SCRIPT, os.X_OK)


def test_the_example_workflow_uses_the_action_with_its_inputs():
    workflow = parse_yaml(WORKFLOW.read_text())
    uses = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses") == "./"
    ]
    assert uses, "the example workflow should use the action"
    inputs = set(action()["inputs"])
    for step in uses:
        assert set(step.get("with", {})) <= inputs
    # The gate: a baseline and a ratio compare accepts.
    (gate,) = [step["with"] for step in uses if "fail-above" in step.get("with", {})]
    assert float(gate["fail-above"]) > 1
    assert gate["baseline"]


# The script, run as the action's step would run it.


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


def run_action(tmp: Path, install: bool = False, script: Path = SCRIPT, **inputs: str) -> Run:
    """Run the script with the given inputs (fail_above= for fail-above), in a fresh
    GITHUB_OUTPUT and GITHUB_STEP_SUMMARY under tmp; RUNNER_TEMP is tmp."""
    output, summary = tmp / "github-output", tmp / "step-summary"
    output.write_text("")
    summary.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.pop("OSTOOLKIT", None)
    env.update({env_name(name.replace("_", "-")): value for name, value in inputs.items()})
    env.update(RUNNER_TEMP=str(tmp), GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    if not install:
        env["OSTOOLKIT"] = str(ENTRY)
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp, timeout=100
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return Run(done.returncode, done.stdout, done.stderr, outputs, summary.read_text())


def check_report(run: Run, tmp: Path, name: str = "report") -> Path:
    assert run.returncode == 0, run.stderr[-3000:]
    report = Path(run.outputs["report"])
    assert report == tmp / "ostoolkit" / f"{name}.json"
    loaded = load_report(report)
    assert loaded.result("switch.process.same_core") is not None
    argv = json.loads(report.read_text())["argv"]
    assert argv[:4] == ["report", "--quick", "--only", SECTIONS], argv
    assert run.summary.startswith("### ostoolkit report")
    assert "| process switch, same core (net) |" in run.summary
    return report


def test_the_action_measures_and_writes_its_outputs_and_summary(tmp_path):
    run = run_action(tmp_path, sections=SECTIONS, preset="quick")
    check_report(run, tmp_path)
    assert run.outputs["compare-exit"] == ""  # no baseline, no comparison


@pytest.mark.timeout(180)
def test_the_action_installs_ostoolkit_from_its_own_checkout(tmp_path):
    """No OSTOOLKIT and no version: a venv under RUNNER_TEMP, and pip installs the action's
    checkout (here a copy of the sources: pip writes build/ and *.egg-info beside them)."""
    source = tmp_path / "action-checkout"
    source_copy(source)
    work = tmp_path / "runner-temp"
    work.mkdir()
    run = run_action(work, install=True, script=source / "action" / "run.sh", sections=SECTIONS)
    check_report(run, work)
    assert (work / "ostoolkit" / "venv" / "bin" / "ostoolkit").exists()


@pytest.fixture(scope="module")
def first_report(tmp_path_factory) -> Path:
    """A quick switch report through the action, to compare others with."""
    tmp = tmp_path_factory.mktemp("first")
    return check_report(run_action(tmp, sections=SECTIONS, artifact_name="first"), tmp, "first")


def compare_directly(baseline: Path, report: Path, fail_above: str) -> int:
    argv = [ENTRY, "compare", baseline, report, "-l", "saved", "-l", "this run"]
    done = subprocess.run(
        [*map(str, argv), "--fail-above", fail_above, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode


def test_the_gate_exits_as_compare_does(tmp_path, first_report):
    """A second report against the first, by a glob, with the example workflow's ratio."""
    ratio = next(
        step["with"]["fail-above"]
        for job in parse_yaml(WORKFLOW.read_text())["jobs"].values()
        for step in job["steps"]
        if "fail-above" in step.get("with", {})
    )
    baseline = str(first_report.parent / "fir*.json")
    run = run_action(tmp_path, sections=SECTIONS, baseline=baseline, fail_above=ratio)
    report = Path(run.outputs["report"])
    expected = compare_directly(first_report, report, ratio)
    assert expected in (0, 1)  # no regression on an unchanged host, as a rule; never an error
    assert run.returncode == expected, run.stderr[-3000:]
    assert run.outputs["compare-exit"] == str(expected)
    # The report's markdown, then compare's, with the script's column labels.
    compared = run.summary[run.summary.index("### ostoolkit report") + 1 :]
    assert re.search(r"^\|.*\bsaved\b.*\|.*\bthis run\b.*\|$", compared, re.MULTILINE)


def test_a_regression_fails_the_action(tmp_path, first_report):
    """Against a saved report five times faster than this host, every switch is slower."""
    data = json.loads(first_report.read_text())
    for result in data["results"]:
        result["samples"] = [value / 5 for value in result["samples"]]
    faster = tmp_path / "saved" / "faster.json"
    faster.parent.mkdir()
    faster.write_text(json.dumps(data))
    # A folder gives its reports, several lines are several baselines, a miss is a warning.
    baseline = f"{faster.parent}\n  {tmp_path}/no-such-*.json\n"
    run = run_action(tmp_path, sections=SECTIONS, baseline=baseline, fail_above="1.5")
    assert run.returncode == 1, run.stderr[-3000:]
    assert run.outputs["compare-exit"] == "1"
    assert load_report(Path(run.outputs["report"])).results  # the report is there to upload
    assert "slower" in run.summary
    assert "::warning title=ostoolkit::no saved report matches the baseline" in run.stderr
    assert "no-such-*.json" in run.stderr


def test_an_unreadable_baseline_is_exit_2(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    run = run_action(tmp_path, sections=SECTIONS, baseline=str(broken))
    assert run.returncode == 2
    assert run.outputs["compare-exit"] == "2"
    assert "broken.json" in run.stderr


def test_no_matching_baseline_measures_and_warns(tmp_path):
    run = run_action(tmp_path, sections=SECTIONS, baseline="baselines/nothing-*.json")
    check_report(run, tmp_path)
    assert run.outputs["compare-exit"] == ""
    assert "no baseline: this report is compared with nothing" in run.stderr


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"preset": "fast"}, "preset must be quick, default or full, not 'fast'"),
        ({"artifact_name": "a/b"}, "artifact-name must not hold"),
    ],
)
def test_a_bad_input_is_refused_before_any_work(tmp_path, inputs, message):
    run = run_action(tmp_path, sections=SECTIONS, **inputs)
    assert run.returncode == 2
    assert f"::error title=ostoolkit::{message}" in run.stderr
    assert run.outputs == {}
    assert not (tmp_path / "ostoolkit").exists()


def test_a_bad_section_is_ostoolkits_refusal(tmp_path):
    run = run_action(tmp_path, sections="switch, nope")
    assert run.returncode == 2
    assert "nope" in run.stderr
    assert "report" not in run.outputs
