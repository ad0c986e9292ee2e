"""Read and write the files a user points ostoolkit at, without ever destroying one.

Writes are atomic for regular files and write-through for devices and FIFOs; reads take
regular files only, capped in size, so nothing can hang or exhaust ostoolkit; a broken stdout
ends as SIGPIPE; what an output's encoding cannot carry becomes ASCII (``fit_encoding``).
The promises: docs/guarantees.md ("safe writes", "bad input").
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, TextIO, cast

from ostoolkit.errors import BrokenOutput, InvalidRequest, OstoolkitError, OutputError

# Saved reports are a few MiB at most (the largest example is 0.1 MiB); 64 MiB is generous.
MAX_REPORT_BYTES = 64 * 2**20
# /proc/PID/fd links (/dev/stdout, /dev/fd/N) name an open file, not a path to replace.
FD_LINK_PREFIXES = ("/proc/self/fd/", "/proc/thread-self/fd/", "/dev/fd/", "/dev/std")
# Every character beyond ASCII that ostoolkit writes, as ASCII for an output that cannot carry
# it. One character where it can sit in a table column (so the columns stay aligned), the
# usual spelling in sentences; anything else is _char_to_ascii's last resort (é -> e, else "?").
ASCII_FALLBACK = {
    "µ": "u",  # micro sign: 2.3 us
    "μ": "u",  # Greek mu, the micro sign's compatibility form
    "×": "x",
    "±": "+-",
    "≤": "<=",
    "≥": ">=",
    "≈": "~",
    "−": "-",  # minus sign
    "–": "-",  # en dash: 5-50, [0.98-1.01]
    "—": "-",  # em dash: a host without the figure
    "…": "...",
    "\u00a0": " ",  # no-break space: markdown keeps a number with its unit (units.join_units)
    "→": "->",
    "·": "-",
    "²": "2",  # compare's mark of a bimodal figure
    "↕": "^",  # compare's mark of a host whose own speed moved
    "⚠": "!",
    "\ufe0f": "",  # the emoji presentation selector after ⚠
    "✗": "x",
    **dict(zip("─│├└", "-||`", strict=True)),  # trees and charts: "`- ", "|- ", "|  "
    **dict(zip("▁▂▃▄▅▆▇█", "_.:-=+*#", strict=True)),  # strips and bars, lowest to highest
}


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
    """Refuse, before any work, an output path that can never be written (exit status 2). ``what``
    names the option or variable in the message, e.g. "--json"."""
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
    if stat.S_ISDIR(info.st_mode) or stat.S_ISSOCK(info.st_mode):
        raise InvalidRequest(f"{what} {path} is {_kind(info.st_mode)}: give a file path")
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
    """Write into an existing non-regular file in place (device, FIFO, open-fd link). O_NONBLOCK
    makes opening a FIFO without a reader fail (ENXIO) instead of hanging; it is cleared again so
    that the write itself waits for a slow reader."""
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
    """Write ``data`` to a temporary file beside ``target`` and rename it over ``target``. An
    existing file keeps its permission bits (and owner, when we may set it); a new one gets 0666
    less the umask, as open(2) would give it."""
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
    Errors become ``OutputError`` naming ``what`` and the reason in one line."""
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


def _char_to_ascii(char: str) -> str:
    """One non-ASCII character in ASCII: ASCII_FALLBACK's spelling, else the ASCII left of its
    compatibility decomposition (é -> e, ™ -> TM), else "?". Never raises."""
    if char in ASCII_FALLBACK:
        return ASCII_FALLBACK[char]
    folded = "".join(c for c in unicodedata.normalize("NFKD", char) if c.isascii())
    return folded or "?"


def _encodes(text: str, encoding: str) -> bool:
    """Whether ``encoding`` can carry ``text`` (an unknown encoding carries nothing)."""
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _is_json(text: str) -> bool:
    """Whether ``text`` is a JSON document (a report on stdout: --format json, --json -)."""
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_escape(char: str) -> str:
    """One character as a JSON string escape: µ -> \\u00b5 (a surrogate pair beyond the BMP)."""
    return json.dumps(char)[1:-1]


def fit_encoding(text: str, encoding: str | None) -> str:
    """``text`` as a stream in ``encoding`` can write it: unchanged when it can carry it all, else
    only the characters it lacks change: to ASCII (_char_to_ascii), or in a JSON document to
    ``\\u`` escapes, which a JSON reader decodes back. A stream without an encoding takes all."""
    if not encoding or _encodes(text, encoding):
        return text
    if not _encodes("", encoding):
        encoding = "ascii"  # a name Python does not know
    spell = _json_escape if _is_json(text) else _char_to_ascii
    lacking = {char for char in set(text) if not _encodes(char, encoding)}
    return text.translate({ord(char): spell(char) for char in lacking})


class FallbackStream:
    """A text stream that writes through to ``stream`` what its encoding can carry (fit_encoding).
    It has no ``buffer`` on purpose: click, given an ASCII stream with one, would write UTF-8 bytes
    around it; without one, click writes here."""

    # What the stream written to answers for this one (its encoding, fileno, isatty, ...).
    PASSED = frozenset({"encoding", "errors", "closed", "flush", "fileno", "isatty"})

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __getattr__(self, name: str) -> Any:
        if name not in self.PASSED:
            raise AttributeError(name)
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        """Write ``text`` as the stream can carry it; bytes are refused, as by any text stream."""
        if not isinstance(text, str):  # click probes with b"" for a binary stream
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.stream.write(fit_encoding(text, self.stream.encoding))
        return len(text)

    def writable(self) -> bool:
        """A text stream for writing."""
        return True


def fallback_stream(stream: TextIO | None) -> TextIO | None:
    """``stream`` itself when its encoding carries every character ostoolkit writes (UTF-8),
    else a FallbackStream around it; None (a closed stdout or stderr) stays None."""
    if stream is None or isinstance(stream, FallbackStream):
        return stream
    if not stream.encoding or _encodes("".join(ASCII_FALLBACK), stream.encoding):
        return stream
    return cast("TextIO", FallbackStream(stream))


def write_stdout(text: str) -> None:
    """Write the result to stdout and flush it, reporting what went wrong in one line. What stdout's
    encoding cannot carry is written as ASCII (fit_encoding), never an error."""
    stream = sys.stdout
    if stream is None:
        raise OutputError("stdout is closed: the result could not be written")
    try:
        stream.write(fit_encoding(text, stream.encoding))
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
    """Read a whole regular file of at most ``limit`` bytes; refuse anything else. Opened with
    O_NONBLOCK so that a FIFO cannot block the open; its type is checked on the open descriptor (no
    race with a rename), and the read stops one byte past the cap."""
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
        with open(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    except OSError as err:
        raise OstoolkitError(f"cannot read {path}: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OstoolkitError(f"{path} grew past {limit} bytes while being read")
    return data
