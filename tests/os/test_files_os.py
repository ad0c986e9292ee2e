"""The one safe writer and the one bounded reader, on real files, devices, FIFOs and links."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness.paths import ENTRY

from ostoolkit import files
from ostoolkit.cli import cli
from ostoolkit.errors import InvalidRequest, LimitExceeded, OstoolkitError, describe_os_error

TEXT = '{"schema": "ostoolkit/1"}\n'


def test_new_file_is_written_with_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    files.write_text(str(target), TEXT, "--json")
    assert target.read_text() == TEXT
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["new.json"], "no temporary file left"


def test_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "old.json"
    target.write_text("old contents, longer than the new ones\n")
    target.chmod(0o640)
    inode = target.stat().st_ino
    files.write_text(str(target), TEXT, "--json")
    assert target.read_text() == TEXT
    assert target.stat().st_ino != inode, "a new inode: renamed over, never half-written"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_symlink_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("x")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    files.write_text(str(link), TEXT, "--json")
    assert link.is_symlink()
    assert real.read_text() == TEXT


def test_character_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    files.write_text(str(node), TEXT, "--json")
    assert stat.S_ISCHR(node.stat().st_mode)


def test_dev_full_reports_enospc_in_one_line() -> None:
    with pytest.raises(files.OutputError, match="cannot write --json /dev/full: No space left"):
        files.write_text("/dev/full", TEXT, "--json")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_fifo_with_a_reader_gets_the_text_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader in place, as `cat fifo` is
    try:
        files.write_text(str(fifo), TEXT, "--json")  # small: it fits the pipe's buffer
        assert os.read(reader, 1 << 16) == TEXT.encode()
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_fifo_without_a_reader_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(files.OutputError, match="no process is reading the FIFO"):
        files.write_text(str(fifo), TEXT, "--json")


def test_append_adds_to_a_regular_file(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    files.write_text(str(summary), "after\n", "GITHUB_STEP_SUMMARY", append=True)
    assert summary.read_text() == "before\nafter\n"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "is empty"),
        ("/nonexistent-ostoolkit/x.json", "directory /nonexistent-ostoolkit does not exist"),
        ("/", "is a directory"),
    ],
)
def test_unusable_output_paths_are_refused_before_work(path: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        files.check_output_path(path, "--json")


def test_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(OstoolkitError, match=f"is {kind}, not a regular file"):
            files.read_regular_bytes(path)
    with pytest.raises(OstoolkitError, match="is a directory"):
        files.read_regular_bytes(tmp_path)


def test_reader_caps_the_size(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as out:
        out.truncate(1000)
    assert len(files.read_regular_bytes(big, limit=1000)) == 1000
    with pytest.raises(OstoolkitError, match="reports are read up to 999"):
        files.read_regular_bytes(big, limit=999)


def test_json_option_writes_a_report_and_leaves_a_device_alone(tmp_path: Path) -> None:
    target = tmp_path / "host.json"
    result = CliRunner().invoke(cli, ["host", "--json", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["command"] == "host"
    result = CliRunner().invoke(cli, ["host", "--json", "/dev/null"])
    assert result.exit_code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fork_failing_with_eagain_is_one_line_naming_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    result = CliRunner().invoke(
        cli, ["measure-switch", "--model", "process", "--quick", "--placement", "same-core"]
    )
    assert result.exit_code == 2, result.output
    assert "fork failed: Resource temporarily unavailable (EAGAIN)" in result.output
    assert "lower the counts" in result.output
    assert "Traceback" not in result.output


# Enough open files for the interpreter to start (it needs 5), too few for the pipes of a
# process switch measurement (it needs about 10).
FEW_OPEN_FILES = 7


def _run_entry(*args: str, open_files: int | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``ostoolkit ARGS``, with at most ``open_files`` open files if given."""

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    return subprocess.run(
        [str(ENTRY), *args], capture_output=True, text=True, timeout=60, preexec_fn=limit
    )


def test_an_os_error_exits_2_for_a_limit_and_1_otherwise_in_one_line() -> None:
    """Through the entry point: EMFILE mid-measurement (a limit the user can raise) exits 2,
    ENOSPC writing --json exits 1; each is one line on stderr, never a traceback."""
    switch = ["measure-switch", "--model", "process", "--quick", "--placement", "same-core"]
    limited = _run_entry(*switch, open_files=FEW_OPEN_FILES)
    assert limited.returncode == 2, limited.stderr
    [line] = limited.stderr.splitlines()
    assert line.startswith("Error: ostoolkit failed: Too many open files (EMFILE)"), line
    assert "(ulimit -n)" in line
    full = _run_entry("host", "--json", "/dev/full")
    assert full.returncode == 1, full.stderr
    assert full.stderr.splitlines() == [
        "Error: cannot write --json /dev/full: No space left on device"
    ]


def test_describe_os_error_names_the_errno_and_what_to_do() -> None:
    emfile = describe_os_error(OSError(24, "Too many open files"), "pipe")
    assert isinstance(emfile, LimitExceeded)  # exit 2, as the entry point shows above
    assert "ulimit -n" in str(emfile)
    other = describe_os_error(OSError(5, "Input/output error"), "read")
    assert not isinstance(other, InvalidRequest)  # exit 1
    assert str(other) == "read failed: Input/output error (EIO)"
