"""The installed entry point on a terminal that cannot carry µ or ×: ASCII out, nothing lost.

Each run sets the output encoding the way a user's environment does (PYTHONIOENCODING, or the
C locale with Python's UTF-8 fallbacks off) and checks that the command ends normally with
pure ASCII on stdout and stderr, and that a JSON report keeps every value (as \\u escapes).
"""

import json
import os
import subprocess

import pytest
from harness.paths import ENTRY, REPO
from harness.runs import ERROR_DUMP

REPORTS = [str(REPO / "examples" / "reports" / f) for f in ("a-vm-2cpus.json", "b-vm-cpuset1.json")]
ASCII_ENVS = {
    "PYTHONIOENCODING": {"PYTHONIOENCODING": "ascii"},
    "C locale": {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"},
}
# A measurement of about half a second: one model, one placement, 3 short samples.
QUICK_SWITCH = [
    *("measure-switch", "--quick", "--repeat", "3", "--iterations", "200"),
    *("--model", "process", "--placement", "same-core"),
]


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the entry point with ``env`` over a locale-neutral environment; output as bytes."""
    base = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LANG", "PYTHONUTF8")}
    return subprocess.run([ENTRY, *argv], capture_output=True, env={**base, **env}, timeout=120)


def assert_ascii_run(done: subprocess.CompletedProcess) -> None:
    """Exit 0, both streams pure ASCII, no traceback."""
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, err
    assert not ERROR_DUMP.search(err), err
    assert done.stdout.isascii(), [ln for ln in done.stdout.splitlines() if not ln.isascii()][:3]
    assert done.stderr.isascii(), [ln for ln in done.stderr.splitlines() if not ln.isascii()][:3]


@pytest.mark.parametrize("env", ASCII_ENVS.values(), ids=ASCII_ENVS.keys())
def test_compare_on_an_ascii_terminal(env):
    done = run(["compare", *REPORTS], env)
    assert_ascii_run(done)
    text = done.stdout.decode()
    assert " us " in text  # 1.83 us 0.99x [0.98-1.01]
    assert "x [" in text


def test_measure_switch_quick_on_an_ascii_terminal():
    done = run(QUICK_SWITCH, ASCII_ENVS["C locale"])
    assert_ascii_run(done)
    assert "process switch, same core (net)" in done.stdout.decode()


def test_json_on_an_ascii_stdout_keeps_every_value():
    """--json -: the JSON on stdout keeps µ and × as \\u escapes, the table on stderr is ASCII."""
    done = run([*QUICK_SWITCH, "--json", "-"], ASCII_ENVS["PYTHONIOENCODING"])
    assert_ascii_run(done)
    assert b"\\u00b5" in done.stdout
    claims = {r["id"]: r["claim"] for r in json.loads(done.stdout)["results"]}
    assert claims["switch.process.same_core"] == "~5 µs"  # the article's, as in a UTF-8 run
    assert "process switch, same core (net)" in done.stderr.decode()


def test_help_and_errors_on_an_ascii_terminal(tmp_path):
    """click's own output (--help) and a one-line error naming a non-ASCII path."""
    assert_ascii_run(run(["compare", "--help"], ASCII_ENVS["PYTHONIOENCODING"]))
    missing = str(tmp_path / "µ×.json")
    done = run(["compare", missing, REPORTS[0]], ASCII_ENVS["PYTHONIOENCODING"])
    assert done.returncode == 2, done.stderr  # a path that does not exist: refused
    assert done.stderr.isascii(), done.stderr
    assert b"ux.json" in done.stderr
    assert b"Traceback" not in done.stderr
