"""The console entry point: import and run the CLI inside one signal and exit-code boundary.

It is kept tiny on purpose: the console script imports this module before anything else, so
a Ctrl-C or SIGTERM that lands while click, psutil and the measurements are still being
imported (the first ~0.3 s) ends the run with one line and the conventional status
(130, 143) instead of a traceback. A broken stdout pipe ends it as SIGPIPE would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

from ostoolkit.errors import Terminated

EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM becomes an exception, so cleanup (finally, context managers) runs first."""
    raise Terminated(signum)


def _say(line: str) -> None:
    """One line on stderr, ignoring a stderr that is closed or broken."""
    with contextlib.suppress(OSError):
        os.write(2, f"{line}\n".encode())


def _die_of_sigpipe() -> None:
    """End the process by SIGPIPE, as `yes | head -1` ends `yes`: status 141 in a shell."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # not reached unless SIGPIPE is blocked


def main() -> None:
    """Console-script entry point: run the CLI and exit with its status."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        from ostoolkit.cli import run_cli
        from ostoolkit.files import BrokenOutput

        try:
            code = run_cli(sys.argv[1:])
        except BrokenOutput:
            _die_of_sigpipe()
            code = 1
    except KeyboardInterrupt:
        _say("interrupted")
        code = EXIT_SIGINT
    except Terminated:
        _say("terminated")
        code = EXIT_SIGTERM
    sys.exit(code)
