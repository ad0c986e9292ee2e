"""One marked run signalled at a moment a test chooses (memory, spawn, clone, real tests), and
the checks that SIGKILL, SIGINT or SIGTERM then leave nothing behind and dump nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from harness.leftovers import (
    MARKER_VAR,
    Proc,
    kill_marked,
    marked_processes,
    run_dirs,
    shm_ours,
    wait_gone,
)
from harness.paths import ENTRY
from harness.runs import ERROR_DUMP
from harness.waiting import wait_until

GONE_WITHIN_S = 1.0  # after SIGKILL of ostoolkit, every process of the run is gone by then
# Anything but silence on stderr after SIGKILL, or besides the exit line after SIGINT/SIGTERM.
RUN_DUMP = re.compile(ERROR_DUMP.pattern + r"|Error:|Warning:", re.MULTILINE)
EXIT_CODE = {signal.SIGINT: 130, signal.SIGTERM: 143}
MP_WORKER = "--multiprocessing-fork"  # in a 'spawn' worker's argv from the launcher on


class MarkedRun:
    """The installed entry point run in a new session with a marker and a private TMPDIR.

    pytest's tmp_path is deep: multiprocessing's sockets may not fit in a path in it (unix(7):
    107 bytes), when ostoolkit puts its temp dir in a second run directory in /tmp.
    """

    def __init__(self, args: list[str], tmpdir: Path, out: IO[bytes], err: IO[bytes]) -> None:
        self.marker = str(uuid.uuid4())
        self.tmpdir = tmpdir
        self.tmpdir.mkdir()
        self.env = {**os.environ, MARKER_VAR: self.marker, "TMPDIR": str(self.tmpdir)}
        self.out, self.err = out, err
        self.shm_before = shm_ours()
        self.popen = subprocess.Popen(
            [str(ENTRY), *args],
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=self.err,
            env=self.env,
            start_new_session=True,
        )

    def procs(self) -> list[Proc]:
        """The run's live processes, ostoolkit itself included."""
        return list(marked_processes(self.marker).values())

    def wait_for(self, ready: Callable[[MarkedRun], bool], timeout: float = 60) -> None:
        """Poll under a deadline until ``ready`` says the moment came, while the run lasts."""

        def came() -> bool:
            if ready(self):
                return True
            assert self.popen.poll() is None, f"ended before the moment: {self.stderr()}"
            return False

        wait_until(came, timeout, "the moment never came")

    def alive(self) -> list[Proc]:
        """The run's processes still alive, ostoolkit itself left out (its zombie is ours)."""
        return [p for p in marked_processes(self.marker).values() if p.pid != self.popen.pid]

    def wait_gone(self, timeout: float) -> list[Proc]:
        """Poll until none of the run's processes is alive, or ``timeout``; return those left."""
        return wait_gone(self.marker, timeout, self.popen.pid)

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def close(self) -> None:
        """Kill whatever of the run is left (after a failed check) and reap ostoolkit."""
        kill_marked(self.marker)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


@contextlib.contextmanager
def marked_run(args: list[str], tmp_path: Path) -> Iterator[MarkedRun]:
    """Run the entry point (see MarkedRun); whatever happens, end all of it after the block."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        run = MarkedRun(args, tmp_path / "tmp", out, err)
        try:
            yield run
        finally:
            run.close()


def check_killed(run: MarkedRun) -> None:
    """SIGKILL ostoolkit now: within 1 s nothing of the run is alive; the next run sweeps."""
    os.kill(run.popen.pid, signal.SIGKILL)
    left = run.wait_gone(GONE_WITHIN_S)
    assert not left, f"alive {GONE_WITHIN_S} s after SIGKILL: {left}"
    assert run.popen.wait(timeout=10) == -signal.SIGKILL
    assert RUN_DUMP.search(run.stderr()) is None, run.stderr()
    stale = run_dirs(run.tmpdir)
    assert len(stale) == 1, stale
    assert stale[0].startswith(f"ostoolkit-{run.popen.pid}-")
    host = subprocess.run(
        [str(ENTRY), "host"], env=run.env, capture_output=True, text=True, timeout=60
    )
    assert host.returncode == 0, host.stderr
    assert list(run.tmpdir.iterdir()) == [], "the next run did not sweep the killed one's dir"
    assert not list(Path("/tmp").glob(f"ostoolkit-{run.popen.pid}-*"))  # nor its /tmp one
    assert shm_ours() - run.shm_before == set()


def check_interrupted(run: MarkedRun, sig: signal.Signals) -> None:
    """SIGINT/SIGTERM ostoolkit now: its exit code, no dump, nothing left anywhere."""
    os.kill(run.popen.pid, sig)
    assert run.popen.wait(timeout=30) == EXIT_CODE[sig], run.stderr()
    assert RUN_DUMP.search(run.stderr()) is None, run.stderr()
    left = run.wait_gone(GONE_WITHIN_S)
    assert not left, f"alive after exit: {left}"
    assert shm_ours() - run.shm_before == set()
    assert list(run.tmpdir.iterdir()) == []


def signal_name(value: object) -> str:
    """A readable test id for a signal parameter (SIGKILL rather than 9)."""
    return value.name if isinstance(value, signal.Signals) else str(value)


def workers_starting(count: int) -> Callable[[MarkedRun], bool]:
    """The moment at least ``count`` 'spawn' workers exist (launcher or interpreter alike)."""
    return lambda run: sum(MP_WORKER in p.cmdline for p in run.procs()) >= count
