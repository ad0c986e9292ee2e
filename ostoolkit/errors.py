"""Every exception type of the project; the CLI turns them into exit codes in one place.

An ``InvalidRequest`` (the user asked for something that cannot be done as asked) exits 2;
any other ``OstoolkitError`` exits 1.
"""

import errno as errno_names
import os
import signal

# The exit status of a run ended by Ctrl-C or SIGTERM, as a shell reports a killed program's.
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


class OstoolkitError(Exception):
    """A measurement could not be done; the message says what failed, why and what to do."""


class InvalidRequest(OstoolkitError):
    """The user asked for something that cannot be done as asked (exit status 2)."""


class LimitExceeded(InvalidRequest):
    """A request would exceed a process, thread or memory limit; refused before forking."""


class TreeTooLarge(LimitExceeded):
    """The requested fork tree is larger than --max-procs."""


class NoSuchPid(InvalidRequest):
    """--pid names no live, readable process."""


class ReportError(OstoolkitError):
    """A saved report cannot be read: unreadable, not JSON, another schema or a wrong field."""


class OutputError(OstoolkitError):
    """A result could not be written (exit status 1): the message names where and why."""


class BrokenOutput(Exception):
    """Standard output's reader went away; the entry point exits as SIGPIPE would."""


class ProcUnreadable(Exception):
    """A /proc file is missing or not in the format proc(5) describes."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that cleanup runs as it does for Ctrl-C."""


# What to do about an OS error when ostoolkit starts tasks or opens files, by errno name.
OS_ERROR_ADVICE = {
    "EAGAIN": "the process or thread limit is reached (ulimit -u, kernel.threads-max, "
    "kernel.pid_max, or a cgroup's pids.max): lower the counts asked for",
    "ENOMEM": "not enough memory for another task: lower the counts or sizes asked for",
    "EMFILE": "this process's open-file limit is reached (ulimit -n): raise it or lower the "
    "counts asked for",
    "ENFILE": "the system's open-file limit is reached (fs.file-max): lower the counts",
    "ENOSPC": "no space left on the device",
    "EADDRNOTAVAIL": "no free loopback port: wait for sockets in TIME_WAIT, or lower the counts",
    "ENOENT": "a file or folder it needs is missing (was the working directory removed?)",
}


def describe_os_error(err: OSError, doing: str) -> OstoolkitError:
    """Turn an OS error raised while ``doing`` something into the project's one-line error. The one
    boundary for fork/exec/pipe/socket/open failures (errno(3)): the message says what failed, the
    errno and what to lower or raise. Limits are user-fixable (exit 2)."""
    name = errno_names.errorcode.get(err.errno or 0, "")
    reason = err.strerror or os.strerror(err.errno or 0)
    advice = OS_ERROR_ADVICE.get(name)
    text = f"{doing} failed: {reason} ({name})" if name else f"{doing} failed: {reason}"
    if advice:
        text += f": {advice}"
    cls = LimitExceeded if name in ("EAGAIN", "EMFILE", "ENFILE", "ENOMEM") else OstoolkitError
    return cls(text)
