"""A real CFS quota (cgroup): the fingerprint shows it, the throttled figures say so, carry
no claim verdict and no negative cost. Needs root to make a group; skips in one line without."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.paths import ENTRY

QUOTA_US, PERIOD_US = 20_000, 100_000  # a fifth of a CPU: docker --cpus=0.2


def _v1_group(name: str) -> Path | None:
    root = Path("/sys/fs/cgroup/cpu")
    if not (root / "cpu.cfs_quota_us").exists():
        return None
    group = root / name
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
    (group / "cpu.cfs_quota_us").write_text(f"{QUOTA_US}\n")
    return group


def _v2_group(name: str) -> Path | None:
    root = Path("/sys/fs/cgroup")
    if not (root / "cgroup.controllers").exists():
        return None
    if "cpu" not in (root / "cgroup.subtree_control").read_text().split():
        (root / "cgroup.subtree_control").write_text("+cpu\n")
    group = root / name
    group.mkdir()
    (group / "cpu.max").write_text(f"{QUOTA_US} {PERIOD_US}\n")
    return group


@pytest.fixture
def quota_group() -> Iterator[Path]:
    """A fresh cgroup with a CPU quota of 0.2 CPUs, removed afterwards."""
    name = f"ostoolkit-test-quota-{os.getpid()}"
    try:
        group = _v1_group(name) or _v2_group(name)
    except OSError as err:
        pytest.skip(f"cannot make a cgroup with a CPU quota here: {err.strerror}")
    if group is None:
        pytest.skip("no cgroup CPU controller is mounted here")
    try:
        yield group
    finally:
        group.rmdir()


def run_in(group: Path, *argv: str) -> dict:
    """Run the entry point inside ``group`` and return its JSON report."""
    shell = f'echo $$ > "{group}/cgroup.procs" && exec "$@"'
    done = subprocess.run(
        ["sh", "-c", shell, "sh", ENTRY, *argv, "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_cpu_quota_is_seen_and_its_figures_are_not_judged(quota_group):
    report = run_in(quota_group, "measure-switch", "--quick", "--placement", "same-core")
    assert report["host"]["cpu_quota"]["cpus"] == pytest.approx(0.2)
    assert report["host"]["cpu_quota"]["cgroup"] == str(quota_group)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert "throttled" in statuses.values(), statuses
    for result in report["results"]:
        assert min(result["samples"]) >= 0, result["id"]
        if result["status"] == "throttled":
            assert result["extra"]["throttled_periods"] > 0
            assert any("CPU quota (0.20 CPUs)" in note for note in result["notes"])
            # no verdict on a throttled figure: "not judged" where a claim covers it
            expected = "not judged: throttled" if result["claim"] else None
            assert result["verdict"] == expected, result["id"]


def test_without_a_quota_nothing_is_throttled():
    argv = [ENTRY, "measure-switch", "--quick", "--placement", "same-core", "--repeat", "3"]
    done = subprocess.run([*argv, "--json", "-"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    if report["host"]["cpu_quota"] != "none":
        pytest.skip(f"this test itself runs under a CPU quota: {report['host']['cpu_quota']}")
    assert all(r["status"] != "throttled" for r in report["results"])
    assert all("throttled_periods" not in r["extra"] for r in report["results"])
