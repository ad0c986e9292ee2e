"""Every example script runs and does what its header says."""

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.paths import ENTRY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_script_has_a_test():
    scripts = {p.name for p in EXAMPLES.glob("*.sh")}
    assert scripts == {"ci-switch-summary.sh", "compare-hosts.sh"}, "add a test for each script"


def test_ci_switch_summary(tmp_path):
    out = tmp_path / "switch.json"
    env = {**os.environ, "OSTOOLKIT": str(ENTRY)}
    done = subprocess.run(
        ["bash", EXAMPLES / "ci-switch-summary.sh", out],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("### ostoolkit measure-switch")
    assert json.loads(out.read_text())["schema"] == "ostoolkit/1"


def test_sample_report_loads():
    from ostoolkit.loader import load_report

    report = load_report(EXAMPLES / "sample-measure-switch.json")
    assert report.result("switch.process.same_core") is not None


def test_compare_hosts_example():
    env = {**os.environ, "OSTOOLKIT": str(ENTRY)}
    done = subprocess.run(
        ["bash", EXAMPLES / "compare-hosts.sh", "--format", "markdown"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "| CPUs allowed |" in done.stdout
    assert "| process switch, same core (net) |" in done.stdout
    assert "vm, cpuset 1 vs vm, 2 CPUs:" in done.stdout
    assert "xychart-beta" in done.stdout


def test_workflow_passes_actionlint():
    import shutil

    import pytest

    actionlint = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(actionlint).exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is missing (the test extra installs it)")
        pytest.skip("actionlint is not installed")
    done = subprocess.run(
        [actionlint, EXAMPLES / "github-workflow.yml"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
