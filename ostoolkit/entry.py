"""The console entry point: import and run the CLI inside one signal and exit-code boundary.

Importing it makes SIGINT and SIGTERM end the process at once (130, 143), so a Ctrl-C during
the first imports prints no traceback; ``main`` then turns them into exceptions so that every
command cleans up, and blocks them once the exit status is decided. A broken stdout ends as
SIGPIPE; stdout and stderr write ASCII where needed (files.fallback_stream).
"""

from __future__ import annotations

# The C module, loaded by the interpreter itself: importing it opens no window for a signal.
import _signal  # type: ignore[import-not-found]
import os
import sys


def _exit_at_once(signum: int, frame: object) -> None:
    """Before the CLI is imported nothing needs cleaning up: say so in one line and exit."""
    with_line = b"interrupted\n" if signum == _signal.SIGINT else b"terminated\n"
    try:
        os.write(2, with_line)
    finally:
        os._exit(128 + signum)


# Only in the process this module starts: multiprocessing's 'spawn' and forkserver processes
# import the console script again, as __mp_main__ (runpy puts it in sys.modules while it runs,
# and sys.argv is the parent's by then), and must keep the handlers multiprocessing gives them.
if "__mp_main__" not in sys.modules and sys.argv[:1] != ["-c"]:
    _signal.signal(_signal.SIGINT, _exit_at_once)
    _signal.signal(_signal.SIGTERM, _exit_at_once)

import contextlib  # noqa: E402 - after the handlers, on purpose
import signal  # noqa: E402

from ostoolkit.errors import EXIT_SIGINT, EXIT_SIGTERM, Terminated  # noqa: E402


def _say(line: str) -> None:
    """One line on stderr, ignoring a stderr that is closed or broken."""
    with contextlib.suppress(OSError):
        os.write(2, f"{line}\n".encode())


def _die_of_sigpipe() -> None:
    """End the process by SIGPIPE, as `yes | head -1` ends `yes`: status 141 in a shell."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPIPE})
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # not reached


def _signal_behind(err: RuntimeError) -> BaseException:
    """The interrupt a RuntimeError wraps, else the error itself.

    Python 3.11 wraps what is raised inside ``__set_name__`` (a dataclass field's, while a
    module is imported lazily, numpy's or a driver's) in a RuntimeError; a Ctrl-C landing
    there must still end as an interrupt, not as a traceback.
    """
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            return cause
        cause = cause.__cause__
    return err


def main() -> None:
    """Console-script entry point: run the CLI and exit with its status."""
    # Here, not at the top: a 'spawn' worker imports this module again, and should not pay for
    # the CLI's imports (psutil) in every start measure-spawn times. While they run, a signal
    # still ends the process at once: importing creates nothing to clean up.
    from ostoolkit.children import raise_terminated
    from ostoolkit.cli import run_cli
    from ostoolkit.errors import BrokenOutput
    from ostoolkit.files import fallback_stream

    try:
        signal.signal(signal.SIGTERM, raise_terminated)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stdout, sys.stderr = fallback_stream(sys.stdout), fallback_stream(sys.stderr)
        try:
            code = run_cli(sys.argv[1:])
        except BrokenOutput:
            _die_of_sigpipe()
            code = 1
        except RuntimeError as err:
            behind = _signal_behind(err)
            if behind is err:
                raise
            raise behind from None
    except KeyboardInterrupt:
        _say("interrupted")
        code = EXIT_SIGINT
    except Terminated:
        _say("terminated")
        code = EXIT_SIGTERM
    # The status is decided and every child is gone: a signal from now on changes nothing,
    # and must not kill the interpreter halfway through its shutdown (it restores SIG_DFL).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(code)
