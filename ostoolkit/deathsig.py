"""Dying with the parent: prctl(2)'s PR_SET_PDEATHSIG, and the process's name.

Standard library only (ctypes, os, signal), so that the lean interpreter that builds
fork-tree's tree (``measure/treenode.py``) can arm it in every process it forks without
importing the rest of ostoolkit; ``children`` arms it through here too.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PR_SET_NAME = 15
# prctl(2) from the C library, looked up once at import so that every forked child inherits
# it instead of looking it up again (0.2 ms and about 60 page faults a child, in a tree).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def arm_parent_death(parent_pid: int) -> bool:
    """In a fresh child: get SIGKILL when the thread that forked it exits (prctl(2)); whether
    ``parent_pid`` is still the parent (one that died first sends none: end yourself)."""
    if _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return os.getppid() == parent_pid


def set_name(name: str) -> None:
    """This thread's name as ps and /proc/PID/comm show it (15 bytes at most; best effort)."""
    _PRCTL(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
