"""The installed entry point, run as a real process: JSON shape, signals, nothing left behind."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import psutil
import pytest
from harness.paths import ENTRY
from harness.waiting import wait_until

TWO_CPUS = len(os.sched_getaffinity(0)) >= 2
RESULT_KEYS = {
    "id",
    "label",
    "unit",
    "median",
    "p10",
    "p90",
    "samples",
    "n",
    "status",
    "notes",
    "extra",
    "claim",
    "verdict",
    "runs",
    "exact",
    "resolution",
}
TOP_KEYS = {
    "schema",
    "tool",
    "command",
    "argv",
    "started_at",
    "duration_s",
    "host",
    "results",
    "findings",
    "warnings",
    "data",
}


def test_entry_point_is_installed_and_versioned():
    done = subprocess.run([ENTRY, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("ostoolkit, version ")
    module = subprocess.run(
        [sys.executable, "-m", "ostoolkit", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.stdout == done.stdout


def test_bash_completion_script_as_the_readme_says():
    env = {**os.environ, "_OSTOOLKIT_COMPLETE": "bash_source"}
    done = subprocess.run([ENTRY], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "_ostoolkit_completion()" in done.stdout
    env["_OSTOOLKIT_COMPLETE"] = "bash_complete"
    env.update(COMP_WORDS="ostoolkit measure-s", COMP_CWORD="1")
    done = subprocess.run([ENTRY], env=env, capture_output=True, text=True, timeout=30)
    assert "plain,measure-switch" in done.stdout.splitlines()


def test_quick_json_matches_the_documented_shape():
    done = subprocess.run(
        [ENTRY, "measure-switch", "--quick", "--repeat", "3", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == TOP_KEYS
    assert data["schema"] == "ostoolkit/1"
    assert data["tool"]["name"] == "ostoolkit"
    assert data["command"] == "measure-switch"
    assert data["started_at"].endswith("Z")
    ids = {r["id"] for r in data["results"]}
    expected = {
        f"switch.{m}.{p}" for m in ("process", "thread") for p in ("same_core", "cross_core")
    }
    if not TWO_CPUS:
        expected = {i for i in expected if i.endswith("same_core")}
    assert expected <= ids
    assert {i.replace("switch.", "roundtrip.", 1) for i in expected} <= ids
    for result in data["results"]:
        assert set(result) == RESULT_KEYS
        if result["id"].startswith("trace."):  # the kernel's counts, where it permits them
            assert result["unit"] == "number"
            continue
        assert result["unit"] == "us"
        assert result["n"] == len(result["samples"]) == 3
        assert sum(result["runs"]) == result["n"]  # each block a run of its own partner
        assert result["exact"] is False
    assert "figure" in done.stderr  # the table went to stderr


def test_bad_value_is_exit_2_without_traceback():
    done = subprocess.run(
        [ENTRY, "measure-switch", "--iterations", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--iterations" in done.stderr
    assert "Traceback" not in done.stderr


def wait_for_children(proc: psutil.Process, count: int, timeout: float) -> list[psutil.Process]:
    """Poll under a deadline until ``proc`` has ``count`` descendants."""

    def enough() -> list[psutil.Process]:
        kids = proc.children(recursive=True)
        return kids if len(kids) >= count else []

    return wait_until(enough, timeout, f"{proc.pid} never had {count} children")


def wait_for_threads(proc: psutil.Process, count: int, timeout: float) -> None:
    """Poll under a deadline until ``proc`` runs ``count`` threads."""
    wait_until(
        lambda: proc.num_threads() >= count, timeout, f"{proc.pid} never had {count} threads"
    )


@pytest.mark.parametrize("model", ["process", "thread"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_leaves_nothing_behind(model, sig, code):
    argv = [
        ENTRY,
        "measure-switch",
        "--model",
        model,
        "--placement",
        "same-core",
        "--repeat",
        "1000",
        "--iterations",
        "2000",
    ]
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc = psutil.Process(popen.pid)
        if model == "process":
            kids = wait_for_children(proc, 1, timeout=30)
        else:
            wait_for_threads(proc, 2, timeout=30)
            kids = []
        popen.send_signal(sig)
        _, err = popen.communicate(timeout=30)
        assert popen.returncode == code, err
        assert "Traceback" not in err
        _gone, alive = psutil.wait_procs(kids, timeout=10)
        assert not alive, f"left behind: {alive}"
    finally:
        popen.kill()
        popen.communicate()


def test_states_report_through_the_entry_point():
    done = subprocess.run(
        [ENTRY, "states", "--duration", "0.2", "--windows", "2", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    states = [step["article_state"] for step in data["data"]["timeline"]]
    assert states == ["running", "ready", "waiting", "stopped", "zombie", "killed"]
    ids = {r["id"] for r in data["results"]}
    assert {"sched.timeslice", "sched.runqueue_wait", "sched.involuntary_per_s"} <= ids
    assert "what happened" in done.stderr


def test_measure_spawn_through_the_entry_point():
    done = subprocess.run(
        [
            ENTRY,
            "measure-spawn",
            "--method",
            "fork",
            "--method",
            "thread",
            "--repeat",
            "3",
            "--parent-rss",
            "8",
            "--json",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    ids = {r["id"] for r in data["results"]}
    assert ids == {"spawn.fork", "spawn.thread", "spawn.fork_rss_8mb"}
    fork = next(r for r in data["results"] if r["id"] == "spawn.fork")
    assert fork["extra"]["ratio_to_thread"] > 0
    assert fork["extra"]["parent_mappings"] > 0


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_measure_memory_interrupted_leaves_nothing(sig, code):
    argv = [ENTRY, "measure-memory", "--model", "process", "--workers", "1,300"]
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc = psutil.Process(popen.pid)
        wait_for_children(proc, 20, timeout=60)  # a leader and its workers are up
        kids = proc.children(recursive=True)
        popen.send_signal(sig)
        _, err = popen.communicate(timeout=60)
        assert popen.returncode == code, err
        _gone, alive = psutil.wait_procs(kids, timeout=20)
        assert not alive, f"left behind: {alive}"
    finally:
        popen.kill()
        popen.communicate()


def test_report_sections_and_step_summary(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    done = subprocess.run(
        [ENTRY, "report", "--only", "switch,states", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    ids = {r["id"] for r in data["results"]}
    assert "switch.process.same_core" in ids
    assert "sched.timeslice" in ids
    assert {"switch", "states", "table"} <= set(data["data"])
    claims = {row["claim"] for row in data["data"]["table"]["rows"]}
    assert {"context switch", "thread switch", "time slice"} <= claims
    text = summary.read_text()
    assert text.startswith("# earlier step\n### ostoolkit report")
    assert "| context switch" in text


def test_report_bad_section_is_exit_2():
    done = subprocess.run(
        [ENTRY, "report", "--only", "disk"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--only" in done.stderr


AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def tmpdir_lines(tmpdir: str, as_user: tuple[str, ...] = ()) -> list[str]:
    """Run a command that makes its run directory with TMPDIR=``tmpdir``: lines naming TMPDIR."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEMP", "TMP")} | {"TMPDIR": tmpdir}
    argv = [*as_user, ENTRY, "measure-spawn", "--method", "thread", "--repeat", "3"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd="/", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return [line for line in (done.stdout + done.stderr).splitlines() if "TMPDIR" in line]


def fallback(tmpdir: object) -> list[str]:
    return [f"warning: TMPDIR={tmpdir} is not a writable folder: using /tmp"]


def test_a_missing_tmpdir_is_said_once(tmp_path):
    missing = tmp_path / "missing"
    assert tmpdir_lines(str(missing)) == fallback(missing)
    assert not missing.exists()


def test_a_tmpdir_under_a_file_is_said_once(tmp_path):
    """Even root cannot make a folder under a file (ENOTDIR)."""
    (tmp_path / "file").write_text("")
    assert tmpdir_lines(str(tmp_path / "file" / "x")) == fallback(tmp_path / "file" / "x")


def test_a_read_only_tmpdir_is_said_once():
    """0555: read-only for anyone but root, so root runs the command as the user nobody."""
    as_user = AS_NOBODY if os.geteuid() == 0 else ()
    probe = subprocess.run([*as_user, ENTRY, "--version"], capture_output=True, cwd="/", timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"the user nobody cannot run {ENTRY}: {probe.stderr.decode()[-200:]}")
    folder = tempfile.mkdtemp(dir="/tmp")  # the user nobody can reach it, unlike tmp_path
    try:
        os.chmod(folder, 0o555)
        assert tmpdir_lines(folder, as_user) == fallback(folder)
        assert os.listdir(folder) == []
    finally:
        os.rmdir(folder)


def test_a_writable_tmpdir_is_not_mentioned(tmp_path):
    assert tmpdir_lines(str(tmp_path)) == []
