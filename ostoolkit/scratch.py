"""One run's scratch directory, ``$TMPDIR/ostoolkit-<pid>-<random>/`` (run_tempdir), flock(2)ed
while in use, and the sweep of those that killed runs left behind (docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import multiprocessing.process
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from ostoolkit.children import signals_held
from ostoolkit.procfs import read_sysv_shm

# $TMPDIR/ostoolkit-<pid>-<random>: one run's scratch directory (run_tempdir).
RUN_DIR_PREFIX = "ostoolkit-"
_RUN_DIR_NAME = re.compile(r"ostoolkit-([0-9]+)-[A-Za-z0-9_]+")
# psutil's start times come from whole-second boot times: compare them with this much slack.
START_TIME_SLACK_S = 1.0
# A unix socket path holds at most 107 bytes (unix(7)); multiprocessing names its listening
# sockets "listener-XXXXXXXX" inside its temp dir (connection.arbitrary_address).
UNIX_PATH_MAX = 107
MP_LISTENER_NAME = len("/listener-XXXXXXXX")
# Where multiprocessing's sockets go when $TMPDIR is too deep for them (tempfile's own
# fallbacks; CPython 3.13's multiprocessing does the same): these are swept too.
SHORT_TEMP_BASES = ("/tmp", "/var/tmp", "/usr/tmp")
_RUN_DIR: dict[str, Path] = {}  # this process's active run directory (or its forking parent's)
_ABSENT = object()
# A run directory may list, one "key shmid" per line, the System V shared-memory segments
# its servers made (PostgreSQL's interlock segment): removing the directory releases them.
SYSV_SHM_LIST = ".sysv-shm"
IPC_RMID = 0  # <sys/ipc.h>


def note_sysv_segment(run_dir: Path, key: int, shmid: int | None = None) -> None:
    """Record a segment a server of this run made (or, without ``shmid``, any segment it may
    make under ``key``), so that removing the run directory releases it too."""
    with open(run_dir / SYSV_SHM_LIST, "a", encoding="ascii") as listing:
        listing.write(f"{key & 0xFFFFFFFF} {'*' if shmid is None else shmid}\n")


def _release_sysv_segments(run_dir: Path) -> None:
    """Mark for removal (shmctl(2) IPC_RMID: it goes with the last detach) each listed segment
    still there under its key: one listed by id if that id still has the key, one listed by key
    only once nothing has it attached."""
    try:
        listed = (run_dir / SYSV_SHM_LIST).read_text(encoding="ascii").split("\n")
    except OSError:
        return
    present = read_sysv_shm()
    libc = ctypes.CDLL(None, use_errno=True)
    for line in listed:
        with contextlib.suppress(ValueError):
            key_text, id_text = line.split()
            key = int(key_text)
            for shmid, (present_key, attached) in present.items():
                if present_key & 0xFFFFFFFF != key:
                    continue
                if (id_text == "*" and attached == 0) or id_text == str(shmid):
                    libc.shmctl(shmid, IPC_RMID, None)


def remove_run_dir(path: Path) -> None:
    """Remove a run directory and release the shared-memory segments it lists."""
    _release_sysv_segments(path)
    shutil.rmtree(path, ignore_errors=True)


def _new_run_dir(base: str | None = None) -> tuple[Path, int]:
    """Make ``<base>/ostoolkit-<pid>-<random>`` (0700, mkdtemp) and flock it; its path and lock."""
    path = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-", dir=base))
    lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # no flock here (some network file systems): pid only
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return path, lock


def _fits_sockets(path: Path) -> bool:
    """Whether multiprocessing's listening sockets fit in a unix socket path inside ``path``."""
    return len(os.fsencode(path)) + MP_LISTENER_NAME <= UNIX_PATH_MAX


def _short_base() -> str | None:
    """The first of SHORT_TEMP_BASES that is a writable directory, or None."""
    writable = (b for b in SHORT_TEMP_BASES if os.path.isdir(b) and os.access(b, os.W_OK | os.X_OK))
    return next(writable, None)


def tmpdir_warnings() -> list[str]:
    """A warning when $TMPDIR is set but tempfile did not take it (not a writable folder) and
    fell back (to /tmp); else none."""
    asked = os.environ.get("TMPDIR")
    if not asked:
        return []
    with signals_held():  # its first call probes each candidate with a file it then removes
        used = tempfile.gettempdir()
    if used == os.path.abspath(asked):
        return []
    return [f"TMPDIR={asked} is not a writable folder: using {used}"]


@contextlib.contextmanager
def run_tempdir() -> Iterator[Path]:
    """This run's scratch directory, ``$TMPDIR/ostoolkit-<pid>-<random>/`` (0700), removed after
    by the outermost block of the process that made it; multiprocessing's too (in a second one
    under a short base when $TMPDIR is too deep for its sockets)."""
    active = _RUN_DIR.get("path")
    if active is not None and active.is_dir():
        yield active
        return
    made = [_new_run_dir()]
    path = made[0][0]
    try:
        base = None if _fits_sockets(path) else _short_base()
        if base is not None and _fits_sockets(Path(base, path.name)):
            with contextlib.suppress(OSError):  # then multiprocessing is left as it is
                made.append(_new_run_dir(base))
        mp_dir = made[-1][0] if _fits_sockets(made[-1][0]) else None
        # multiprocessing's per-process settings, where util.get_temp_dir keeps its 'tempdir'
        config = getattr(multiprocessing.process.current_process(), "_config", None)
        pinned = config if mp_dir is not None and isinstance(config, dict) else None
        saved_mp = pinned.get("tempdir", _ABSENT) if pinned is not None else _ABSENT
        if pinned is not None:
            pinned["tempdir"] = str(mp_dir)
        _RUN_DIR["path"] = path
        try:
            yield path
        finally:
            _RUN_DIR.pop("path", None)
            if pinned is not None and pinned.get("tempdir") == str(mp_dir):
                if saved_mp is _ABSENT:
                    pinned.pop("tempdir", None)
                else:
                    pinned["tempdir"] = saved_mp
    finally:
        for folder, lock in made:
            remove_run_dir(folder)
            os.close(lock)


def _owner_may_run(pid: int, changed: float) -> bool:
    """Whether ``pid`` may still be the maker of a run directory last changed then: not if it
    is gone, a zombie, or started after that (reused); when in doubt (no permission), it may."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.create_time() <= changed + START_TIME_SLACK_S
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):
        return True


def _stale_run_dir(path: Path, pid: int) -> bool:
    """Whether a run directory is ours to remove: our uid's real directory (not followed as a
    symlink), whose flock nobody holds (its owner and forks died) and whose maker is gone."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        if _owner_may_run(pid, info.st_mtime):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a process that inherited the lock still runs
        except OSError:
            pass  # no flock on this file system: the pid alone decides
        return True
    finally:
        os.close(fd)


def sweep_stale_tempdirs() -> list[Path]:
    """Remove the run directories that killed ostoolkit processes left behind (_stale_run_dir)
    and return them. Never raises: a sweep must not stop a command."""
    removed: list[Path] = []
    entries: list[os.DirEntry[str]] = []
    with signals_held():  # its first call probes each candidate with a file it then removes
        temp = tempfile.gettempdir()
    for base in dict.fromkeys([temp, *SHORT_TEMP_BASES]):
        with contextlib.suppress(OSError):
            entries.extend(os.scandir(base))
    for entry in entries:
        match = _RUN_DIR_NAME.fullmatch(entry.name)
        if match is None:
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False) and _stale_run_dir(path, int(match[1])):
                remove_run_dir(path)
                removed.append(path)
        except OSError:
            continue
    return removed
