"""The Ansible example (examples/ansible/playbook.yml) measures a fleet of two hosts.

ansible-core goes into a venv of its own under tmp (not into the test tools); the inventory's
two hosts, fleet-a and fleet-b, both use the local connection, each with its own remote
folder under tmp. As on a fleet, the playbook builds a wheel of the repository (here a copy
of the sources: a build writes build/ and *.egg-info beside them), installs it into a venv on
each host, measures, fetches the reports and compares them with this venv's ostoolkit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dbservers import skip_or_fail
from harness.paths import ENTRY, source_copy

from ostoolkit.loader import load_report

SECTIONS = "switch"  # the quickest section: a quick report of it takes about 3 s
HOSTS = ("fleet-a", "fleet-b")


def ansible_venv(tmp: Path) -> Path:
    """ansible-playbook from a fresh venv; skip (fail under CI) when pip cannot install it."""
    venv = tmp / "ansible-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "ansible-core"]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        skip_or_fail(f"pip cannot install ansible-core: {done.stderr.strip()[-300:]}")
    return venv / "bin" / "ansible-playbook"


@pytest.mark.timeout(150)
def test_the_playbook_measures_two_hosts_fetches_and_compares(tmp_path: Path) -> None:
    playbook_cmd = ansible_venv(tmp_path)
    source = tmp_path / "source"
    source_copy(source)
    playbook = source / "examples" / "ansible" / "playbook.yml"
    remote = {host: tmp_path / "remote" / host for host in HOSTS}
    for folder in remote.values():
        folder.mkdir(parents=True)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "".join(
            f"{host} ansible_connection=local ansible_python_interpreter={sys.executable}"
            f" ostoolkit_python={sys.executable} ostoolkit_remote_tmp={remote[host]}\n"
            for host in HOSTS
        )
    )
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "GITHUB_"))}
    env.update(
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        PYTHONWARNINGS="ignore",
        TMPDIR=str(tmp_path / "tmp"),  # where the controller's wheel folder goes
    )
    (tmp_path / "tmp").mkdir()
    base = [str(playbook_cmd), "-i", str(inventory), str(playbook)]

    check = subprocess.run(
        [*base, "--syntax-check"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr

    extra = {
        "ostoolkit_preset": "quick",
        "ostoolkit_sections": SECTIONS,
        "reports_dir": str(reports),
        "ostoolkit_command": str(ENTRY),
    }
    argv = [*base, *(arg for name, value in extra.items() for arg in ("-e", f"{name}={value}"))]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    # One report per host, flat, named by inventory_hostname, and the comparison beside them.
    assert sorted(path.name for path in reports.iterdir()) == [
        "compare.md",
        "fleet-a.json",
        "fleet-b.json",
    ]
    for host in HOSTS:
        report = reports / f"{host}.json"
        assert load_report(report).result("switch.process.same_core") is not None
        argv = json.loads(report.read_text())["argv"]
        assert argv[:4] == ["report", "--quick", "--only", SECTIONS], argv
    compared = (reports / "compare.md").read_text()
    assert compared.startswith("### ostoolkit compare")
    assert "| figure | fleet-a (baseline) | fleet-b |" in compared
    assert f"{reports}/compare.md (2 hosts)" in done.stdout
    # Nothing left on the hosts (the venv, the wheel, the report) nor the controller's wheel.
    for folder in remote.values():
        assert list(folder.iterdir()) == []
    assert not list((tmp_path / "tmp").glob("ostoolkit-wheel.*"))

    # A failure (ostoolkit refuses a section) still removes the host's folder. ostoolkit_source
    # is a path on the host: pip builds the sources there (one host only: two builds in one
    # source folder at once would share its build/).
    shutil.rmtree(reports)
    extra.update(ostoolkit_sections="nope", ostoolkit_source=str(source))
    argv = [*base, "--limit", "fleet-a"]
    argv += [arg for name, value in extra.items() for arg in ("-e", f"{name}={value}")]
    failed = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert failed.returncode != 0
    assert "Measure the host" in failed.stdout
    assert "nope" in failed.stdout, failed.stdout[-4000:]
    assert "Remove the run's folder from the host" in failed.stdout
    assert list(remote["fleet-a"].iterdir()) == []
    assert list(reports.iterdir()) == []  # nothing fetched, nothing compared
    assert re.search(r"^fleet-a\s*:.*\bfailed=1\b", failed.stdout, re.MULTILINE), failed.stdout
