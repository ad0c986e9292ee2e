"""ostoolkit installed from its wheel into a fresh venv, as pipx would: the entry point, the
package data (the spawn launcher, the report schema, the C harness) and a run that needs them."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from harness.paths import source_copy

import ostoolkit

PACKAGE_DATA = (
    "ostoolkit/spawn-launcher",
    "ostoolkit/schema/ostoolkit-1.schema.json",
    "ostoolkit/measure/lat_pipe.c",
)


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv}: {done.stderr[-2000:]}"
    return done


def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    # Built from a copy: a build writes build/ and *.egg-info beside the sources it builds.
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    source_copy(source)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels)]
    run([*pip_wheel, str(source)])
    (wheel,) = wheels.glob("ostoolkit-*.whl")
    assert wheel.name.startswith(f"ostoolkit-{ostoolkit.__version__}-")
    assert set(PACKAGE_DATA) <= set(zipfile.ZipFile(wheel).namelist())
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
    entry = str(venv / "bin" / "ostoolkit")
    assert run([entry, "--version"]).stdout.strip() == f"ostoolkit, version {ostoolkit.__version__}"
    # 'spawn' workers start through the packaged launcher, which must have kept its mode 0755.
    report = tmp_path / "memory.json"
    run([entry, "measure-memory", "--model", "mp_spawn", "--workers", "1,2", "--json", str(report)])
    ids = {result["id"] for result in json.loads(report.read_text())["results"]}
    assert "memory.mp_spawn.pss_per_worker" in ids
