"""The signal harness's view into the run's own interpreter: a sitecustomize written at run time.

Start-up: the signal harness's start-up moment is timed from the end of the interpreter's own
start-up. The hook (put on PYTHONPATH from a temporary folder) writes one byte to an inherited
pipe once site has run, just before the entry script starts. A signal before that meets the
bare interpreter (a SIGINT in site's imports is CPython's "Fatal Python error:
init_import_site"; a SIGTERM kills it): no Python program can act there.

The end: ostoolkit blocks SIGINT and SIGTERM for good once its exit status is decided
(``ostoolkit.entry``), so a signal that lands after that changes nothing and the run exits 0
with its output whole. To tell that from a signal ignored mid-work, the hook wraps
``signal.pthread_sigmask`` in that process and writes ``B<monotonic ns>`` on the pipe each time
both are blocked and ``U`` each time they are unblocked; the last event says whether, and
since when, they stayed blocked.
"""

from __future__ import annotations

import os
from pathlib import Path

SITE_FD_VAR = "OSTOOLKIT_TEST_SITE_FD"
SITE_HOOK = f"""\"\"\"ostoolkit test hook (tests/sitehook.py): say that site has run, then report
when this process blocks and unblocks SIGINT and SIGTERM together.\"\"\"
import os

_fd = os.environ.pop("{SITE_FD_VAR}", None)
if _fd is not None:
    try:
        _fd = int(_fd)
        os.write(_fd, b".")
        os.set_inheritable(_fd, False)
    except (OSError, ValueError):
        _fd = None
if _fd is not None:
    import signal
    import time

    _pid, _real, _ends = os.getpid(), signal.pthread_sigmask, {{signal.SIGINT, signal.SIGTERM}}

    def _reporting_sigmask(how, mask):
        old = _real(how, mask)
        if os.getpid() == _pid and _ends <= set(mask):  # not in forked children
            event = b"B%d\\n" % time.monotonic_ns() if how == signal.SIG_BLOCK else b"U\\n"
            try:
                os.write(_fd, event)
            except OSError:
                pass
        return old

    signal.pthread_sigmask = _reporting_sigmask
"""


def write_site_hook(folder: Path) -> Path:
    """Write the sitecustomize hook into ``folder`` and return the folder."""
    (folder / "sitecustomize.py").write_text(SITE_HOOK)
    return folder


def site_hook_env(hook: Path, fd: int) -> dict[str, str]:
    """The variables that make the run's interpreter report on ``fd`` (see the module)."""
    path = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": f"{hook}{os.pathsep}{path}" if path else str(hook),
        SITE_FD_VAR: str(fd),
    }


def drain(fd: int) -> bytes:
    """Everything left on the hook's pipe, without waiting for its writers to close it."""
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def blocked_since_ns(events: bytes) -> int | None:
    """When SIGINT and SIGTERM were blocked for the last time and not unblocked after, or None."""
    last = [line for line in events.split(b"\n") if line.startswith((b"B", b"U"))][-1:]
    return int(last[0][1:]) if last and last[0].startswith(b"B") else None
