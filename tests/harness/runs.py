"""Running the installed entry point as a real process with a marker (run_marked) and reading
what it wrote: its stderr's message lines and error dumps, tails for failure messages.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.leftovers import MARKER_VAR, MarkerWatch, Proc
from harness.paths import REPO
from harness.waiting import POLL_S

# What an error dump looks like on stderr, wherever it is.
ERROR_DUMP = re.compile(
    r"Traceback|Aborted!|Exception ignored|"
    r'^\s*File ".*", line \d+|KeyboardInterrupt|BrokenPipeError|Fatal Python error|'
    r"Segmentation fault|core dumped|resource_tracker|leaked (semaphore|shared_memory)|"
    r"UserWarning|RuntimeWarning",
    re.MULTILINE,
)
# click's usage block around an "Error:" line; only the "Error:" line counts as the message.
CLICK_USAGE_LINE = re.compile(r"^Usage: |^Try '.*(-h|--help)' for help\.?$")


def marked_env(**extra: str) -> tuple[str, dict[str, str]]:
    """A fresh marker and the environment that carries it (plus ``extra`` variables)."""
    marker = str(uuid.uuid4())
    return marker, {**os.environ, MARKER_VAR: marker, **extra}


@dataclass
class Run:
    """What one run of the entry point did."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool
    children: list[Proc]
    leftovers: list[Proc]
    shm_seen: set[str]

    def describe(self) -> str:
        kids = ", ".join(p.describe() for p in self.children[:5]) or "none seen"
        left = "; ".join(p.describe() for p in self.leftovers) or "none"
        return (
            f"argv={self.argv!r}\nexit={self.returncode} after {self.elapsed:.2f} s"
            f"{' (TIMED OUT, killed)' if self.timed_out else ''}\n"
            f"children seen: {kids}\nleft behind: {left}\n"
            f"stderr ({len(self.stderr)} chars):\n{tail(self.stderr)}"
        )


def tail(text: str, lines: int = 15, width: int = 300) -> str:
    """The last lines of ``text``, each cut to ``width`` characters, for a failure message."""
    kept = text.splitlines()[-lines:]
    return "\n".join(f"  | {line[:width]}{'…' if len(line) > width else ''}" for line in kept)


def read_back(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", errors="replace")


def run_marked(
    args: list[str],
    *,
    env: Mapping[str, str],
    marker: str,
    timeout: float = 20.0,
    stdout: int | IO[Any] | None = None,
    cwd: Path | str | None = None,
    preexec_fn: Callable[[], None] | None = None,
    settle: float = 1.0,
) -> Run:
    """Run ``args`` in a new session with stdin /dev/null, polling its marked processes.

    stdout and stderr go to anonymous files unless ``stdout`` is given (a pipe end, /dev/full,
    ...). On timeout the whole session and every marked process are killed. After the exit,
    marked processes are polled for up to ``settle`` seconds; those left are reported in
    ``Run.leftovers`` and then killed, so one failing case cannot spoil the next.
    """
    watch = MarkerWatch(marker)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out if stdout is None else stdout,
            stderr=err,
            env=dict(env),
            cwd=cwd if cwd is not None else REPO,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        timed_out = False
        try:
            deadline = start + timeout
            while popen.poll() is None:
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                watch.poll()
                time.sleep(POLL_S)
        finally:
            elapsed = time.monotonic() - start
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
            leftovers = watch.wait_gone(settle)
            watch.kill_all()
        return Run(
            argv=[str(a) for a in args],
            returncode=popen.returncode,
            stdout=read_back(out) if stdout is None else "",
            stderr=read_back(err),
            elapsed=elapsed,
            timed_out=timed_out,
            children=watch.children_seen(popen.pid),
            leftovers=leftovers,
            shm_seen=watch.shm_seen,
        )


def message_lines(stderr: str) -> list[str]:
    """The non-empty stderr lines that are the message: click's usage block left out.

    For a click usage error (``Usage: ...`` / ``Try 'ostoolkit ... --help' for help`` /
    ``Error: ...``) only the ``Error:`` line counts; everything else counts as written.
    """
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [line for line in lines if not CLICK_USAGE_LINE.search(line)]
