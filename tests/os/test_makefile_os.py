"""The Makefile's two set-up commands: `make run` installs only what running needs, `make test`
adds the test tools. Read from make's own plan (-n), so nothing is installed here."""

import shutil
import subprocess

import pytest
from harness.paths import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def plan(target: str, venv: str) -> list[str]:
    """The commands make would run for ``target`` with a .venv that does not exist yet."""
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def installs(lines: list[str]) -> list[str]:
    return [line.split("pip install", 1)[1].split()[-1] for line in lines if "pip install" in line]


def test_make_run_installs_ostoolkit_without_the_test_tools(tmp_path):
    lines = plan("run", str(tmp_path / "venv"))
    assert installs(lines) == ["pip", "."]
    assert any(line.endswith("/bin/ostoolkit measure-switch") for line in lines)


def test_make_test_adds_the_test_tools_to_the_same_venv(tmp_path):
    lines = plan("test", str(tmp_path / "venv"))
    assert installs(lines) == ["pip", ".", "'.[test]'"]
    assert any("-m pytest" in line for line in lines)
