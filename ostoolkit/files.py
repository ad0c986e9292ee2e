"""Read and write the files a user points ostoolkit at, without ever destroying one.

Writing (``--json PATH``, ``GITHUB_STEP_SUMMARY``): a new path or an existing regular file is
written atomically (a uniquely named temporary file in the same directory, then rename(2)), so
a reader never sees half a report; a symlink is followed and its target written, the link
itself stays; anything else that exists (a character device such as /dev/null, a FIFO,
/dev/stdout) is written through in place, as ``cat > PATH`` would, and an error such as ENOSPC
from /dev/full is reported. A directory is refused. Nothing is ever replaced that is not a
regular file.

Reading (saved reports): regular files only, opened without blocking and capped in size, so
a FIFO, /dev/zero or a huge file can neither hang ostoolkit nor exhaust its memory.

Standard output: ``write_stdout`` reports a closed stdout or a full disk in one line and turns
a broken pipe into ``BrokenOutput``, which the entry point ends with SIGPIPE like any Unix
filter (``ostoolkit host | head -1``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

from ostoolkit.errors import BrokenOutput, InvalidRequest, OstoolkitError, OutputError

# Saved reports are a few MiB at most (the largest example is 0.1 MiB); 64 MiB is generous.
MAX_REPORT_BYTES = 64 * 2**20
# /proc/PID/fd links (/dev/stdout, /dev/fd/N) name an open file, not a path to replace.
FD_LINK_PREFIXES = ("/proc/self/fd/", "/proc/thread-self/fd/", "/dev/fd/", "/dev/std")


def _kind(mode: int) -> str:
    """Name a file type for a message: 'a directory', 'a FIFO', ..."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_output_path(path: str, what: str) -> None:
    """Refuse, before any work, an output path that can never be written (exit status 2).

    ``what`` names the option or variable in the message, e.g. "--json".
    """
    if not path:
        raise InvalidRequest(f"{what} is empty: give a file path, or '-' for stdout")
    if "\0" in path:
        raise InvalidRequest(f"{what} {path!r} contains a NUL byte")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.realpath(path)) or "."
        if not os.path.isdir(parent):
            raise InvalidRequest(f"{what} {path}: directory {parent} does not exist") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InvalidRequest(f"{what} {path}: directory {parent} is not writable") from None
        return
    except OSError as err:
        raise InvalidRequest(f"{what} {path}: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidRequest(f"{what} {path} is a directory: give a file path")
    if stat.S_ISSOCK(info.st_mode):
        raise InvalidRequest(f"{what} {path} is a socket: give a file path")
    if not os.access(path, os.W_OK):
        raise InvalidRequest(f"{what} {path} is not writable")


def _through_fd_link(path: str) -> bool:
    """Whether ``path`` names an already open file (/dev/stdout, /dev/fd/1, /proc/self/fd/1)."""
    absolute = os.path.abspath(path)
    if absolute.startswith(FD_LINK_PREFIXES):
        return True
    real = os.path.realpath(path)
    return real.startswith("/proc/") and "/fd/" in real


def _write_through(path: str, data: bytes, append: bool) -> None:
    """Write into an existing non-regular file in place (device, FIFO, open-fd link).

    O_NONBLOCK makes opening a FIFO without a reader fail (ENXIO) instead of hanging; it is
    cleared again so that the write itself waits for a slow reader.
    """
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
    if append:
        flags |= os.O_APPEND
    fd = os.open(path, flags)
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def _replace_atomically(target: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it over ``target``.

    An existing file keeps its permission bits (and owner, when we may set it); a new one
    gets 0666 less the umask, as open(2) would give it.
    """
    folder, name = os.path.split(target)
    try:
        before: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        before = None
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            if before is not None:
                os.fchmod(out.fileno(), stat.S_IMODE(before.st_mode))
                with contextlib.suppress(OSError):
                    os.fchown(out.fileno(), before.st_uid, before.st_gid)
            else:
                umask = os.umask(0o022)
                os.umask(umask)
                os.fchmod(out.fileno(), 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str, what: str, append: bool = False) -> None:
    """Write (or append) ``text`` to ``path`` without ever replacing what is not a regular file.

    Errors become ``OutputError`` naming ``what`` and the reason in one line.
    """
    data = text.encode("utf-8")
    try:
        try:
            info: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(f"cannot write {what} {path}: it is a directory")
        if info is not None and (not stat.S_ISREG(info.st_mode) or _through_fd_link(path)):
            _write_through(path, data, append)
        elif append and info is not None:
            with open(path, "ab") as out:
                out.write(data)
        else:
            _replace_atomically(os.path.realpath(path), data)
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno == 6 and info is not None and stat.S_ISFIFO(info.st_mode):  # ENXIO
            reason = "no process is reading the FIFO"
        raise OutputError(f"cannot write {what} {path}: {reason}") from err


def write_stdout(text: str) -> None:
    """Write the result to stdout and flush it, reporting what went wrong in one line."""
    stream = sys.stdout
    if stream is None:
        raise OutputError("stdout is closed: the result could not be written")
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise BrokenOutput() from None
    except OSError as err:
        _silence_stdout()
        raise OutputError(f"cannot write the result to stdout: {err.strerror}") from err


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def read_regular_bytes(path: Path, limit: int = MAX_REPORT_BYTES) -> bytes:
    """Read a whole regular file of at most ``limit`` bytes; refuse anything else.

    Opened with O_NONBLOCK so that a FIFO cannot block the open; its type is checked on the
    open descriptor (no race with a rename), and the read stops one byte past the cap.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise OstoolkitError(f"cannot read {path}: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OstoolkitError(f"{path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise OstoolkitError(f"{path} is {info.st_size} bytes; reports are read up to {limit}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise OstoolkitError(f"{path} grew past {limit} bytes while being read")
        return b"".join(chunks)
    except OSError as err:
        raise OstoolkitError(f"cannot read {path}: {err.strerror}") from None
    finally:
        os.close(fd)
