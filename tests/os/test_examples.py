"""Every example script runs and does what its header says."""

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_script_has_a_test():
    scripts = {p.name for p in EXAMPLES.glob("*.sh")}
    assert scripts == {"ci-switch-summary.sh"}, "add a test for each new example script"


def test_ci_switch_summary(tmp_path):
    out = tmp_path / "switch.json"
    env = {**os.environ, "OSTOOLKIT": str(Path(sys.executable).with_name("ostoolkit"))}
    done = subprocess.run(
        ["bash", EXAMPLES / "ci-switch-summary.sh", out],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("### ostoolkit measure-switch")
    assert json.loads(out.read_text())["schema"] == "ostoolkit/1"


def test_sample_report_loads():
    from ostoolkit.report import load_report

    report = load_report(EXAMPLES / "sample-measure-switch.json")
    assert report.result("switch.process.same_core") is not None
