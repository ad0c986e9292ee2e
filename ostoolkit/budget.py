"""What the host's limits leave for a run, checked before any work: tasks, memory, open files,
and the address space that many threads reserve.

Every check refuses a request that cannot fit with one line (``LimitExceeded``, exit 2) that
names the limit and what would fit. Where a limit does not bind this process (RLIMIT_NPROC
for root), ``nproc_note`` says so in one line instead of staying silent.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil

from ostoolkit.errors import LimitExceeded
from ostoolkit.procfs import parse_file

# File descriptors kept free beyond what a measurement asks for (stdio, pipes, libraries).
FD_MARGIN = 64
# Descriptors any measurement needs (stdio, its pipes, psutil's /proc reads, libraries).
MIN_OPEN_FILES = 32
# What one forked Python process costs at the most, for budgets before forking many of them
# (its page tables, stack and the pages it writes after fork; measured: 0.5-4 MiB here).
BYTES_PER_FORKED_PROCESS = 4 * 2**20
# Capability bits of capabilities(7) that let fork(2) pass RLIMIT_NPROC (kernel/fork.c).
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24
# The uid_map of the initial user namespace: only there do root and capabilities bypass it.
INITIAL_UID_MAP = ["0", "0", "4294967295"]
# glibc's malloc gives each new thread an arena of its own, up to 8 per CPU on 64-bit hosts
# (2 on 32-bit; mallopt(3) M_ARENA_MAX), and reserves HEAP_MAX_SIZE of address space for
# each: 64 MiB on 64-bit hosts (1 MiB on 32-bit). Only the pages it uses count as data.
WORD_64 = ctypes.sizeof(ctypes.c_long) == 8
ARENA_BYTES = 64 * 2**20 if WORD_64 else 2**20
ARENAS_PER_CPU = 8 if WORD_64 else 2
# What a Python thread needs besides its stack: its thread state, frames and malloc chunks.
THREAD_OVERHEAD = 64 * 2**10
# Address space a process grows by before its threads start (pipes, imports, pymalloc).
SPACE_MARGIN = 16 * 2**20
# glibc's default thread stack when RLIMIT_STACK is unlimited is per architecture (2 MiB on
# x86-64); this fallback, for a libc without pthread_getattr_default_np, errs high.
FALLBACK_STACK = 8 * 2**20
# The two memory limits threads' stacks count against: (resource, ulimit flag, description).
SPACE_LIMITS = (
    (resource.RLIMIT_AS, "-v", "the address-space limit"),
    (resource.RLIMIT_DATA, "-d", "the data-segment limit"),
)


def nproc_exemption(uid: int, effective_caps: int, initial_namespace: bool) -> str | None:
    """Who RLIMIT_NPROC does not bind, or None when it binds: the kernel lets root and any
    task with CAP_SYS_RESOURCE or CAP_SYS_ADMIN start tasks beyond it (copy_process in
    kernel/fork.c), but only in the initial user namespace (root in a container is bound)."""
    if not initial_namespace:
        return None
    if uid == 0:
        return "root"
    for bit, name in ((CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
        if effective_caps >> bit & 1:
            return f"a process with {name}"
    return None


def nproc_exemption_here() -> str | None:
    """``nproc_exemption`` for this process, from /proc/self (proc(5), user_namespaces(7))."""
    caps, initial = 0, False
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
        initial = Path("/proc/self/uid_map").read_text().split() == INITIAL_UID_MAP
    return nproc_exemption(os.getuid(), caps, initial)


def _user_tasks(uid: int) -> int:
    """Every task (process or thread) whose real user id is ``uid``: what RLIMIT_NPROC counts."""
    return sum(
        proc.info["num_threads"] or 1
        for proc in psutil.process_iter(["uids", "num_threads"])
        if proc.info["uids"] is not None and proc.info["uids"].real == uid
    )


def task_headroom() -> tuple[int | None, str]:
    """How many more tasks (processes or threads) this user may start, and the binding limit.
    RLIMIT_NPROC (unless ``nproc_exemption``), kernel.threads-max and kernel.pid_max (proc(5)); None
    means no limit was found."""
    candidates: list[tuple[int, str]] = []
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and nproc_exemption_here() is None:
        candidates.append((soft - _user_tasks(os.getuid()), f"RLIMIT_NPROC={soft} (ulimit -u)"))
    total_tasks = sum((p.info["num_threads"] or 1) for p in psutil.process_iter(["num_threads"]))
    for name in ("threads-max", "pid_max"):
        limit = parse_file(f"/proc/sys/kernel/{name}", int)
        if limit is not None:
            candidates.append((limit - total_tasks, f"kernel.{name}={limit}"))
    if not candidates:
        return None, "no limit found"
    return min(candidates)


def check_task_budget(tasks: int, bytes_per_task: int, option: str) -> None:
    """Refuse, before any fork, a request for more tasks or memory than the host can give. Leaves
    half the headroom and half the available memory free: a measurement must never be what pushes a
    host into its limits."""
    headroom, limit = task_headroom()
    if headroom is not None and tasks > headroom // 2:
        raise LimitExceeded(
            f"{option} asks for {tasks} tasks but only {max(headroom, 0)} more are allowed "
            f"({limit}); ostoolkit uses at most half of that: lower {option}"
        )
    available = psutil.virtual_memory().available
    needed = tasks * bytes_per_task
    if needed > available // 2:
        raise LimitExceeded(
            f"{option} needs about {needed // 2**20} MiB but only {available // 2**20} MiB are "
            f"available; ostoolkit uses at most half of that: lower {option}"
        )


def nproc_note(tasks: int, unit: str = "tasks") -> str | None:
    """One line when RLIMIT_NPROC would refuse ``tasks`` (as ``check_task_budget`` judges it)
    but does not bind this process, so that the limit is not passed over in silence."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY:
        return None
    who = nproc_exemption_here()
    if who is None or tasks <= (soft - _user_tasks(os.getuid())) // 2:
        return None
    return f"RLIMIT_NPROC (ulimit -u) {soft} does not bind {who}: {tasks} {unit} started"


def _open_files_needed(descriptors: int) -> int:
    """Descriptors open now, plus ``descriptors`` more, plus a margin for libraries."""
    return descriptors + len(os.listdir("/proc/self/fd")) + FD_MARGIN


def check_open_files(descriptors: int, what: str, lower: str = "") -> None:
    """Refuse, before anything starts, a need for more open files than RLIMIT_NOFILE allows. Only
    the hard limit (``ulimit -Hn``) is binding: the soft one is raised when needed."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = _open_files_needed(descriptors)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise LimitExceeded(
            f"{what} needs about {needed} open files but RLIMIT_NOFILE's hard limit is {hard} "
            f"(ulimit -Hn): raise the limit{' or ' + lower if lower else ''}"
        )


@contextlib.contextmanager
def enough_open_files(descriptors: int) -> Iterator[None]:
    """Raise RLIMIT_NOFILE's soft limit for the block if ``descriptors`` more fds need it. Counted
    on top of those open now and a margin; the hard limit (``ulimit -Hn``) cannot be passed without
    privileges, so a count above it is refused before anything starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = _open_files_needed(descriptors)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        yield
        return
    check_open_files(descriptors, f"{descriptors} connections", "lower the client count")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def default_stack(rlimit_stack: int) -> int:
    """glibc's default thread stack for a soft RLIMIT_STACK read when the process started:
    that limit (16 KiB at least, PTHREAD_STACK_MIN), or FALLBACK_STACK when unlimited."""
    if rlimit_stack == resource.RLIM_INFINITY or rlimit_stack < 0:
        return FALLBACK_STACK
    return max(rlimit_stack, 16 * 2**10)


def thread_stack_bytes() -> int:
    """The stack a new Python thread reserves: threading.stack_size() when set, else glibc's
    default (pthread_getattr_default_np(3); by RLIMIT_STACK's rule where that is missing)."""
    explicit = threading.stack_size()
    if explicit:
        return explicit
    with contextlib.suppress(AttributeError, OSError):
        libc = ctypes.CDLL(None)
        attr = ctypes.create_string_buffer(128)  # pthread_attr_t: 56 bytes on x86-64
        size = ctypes.c_size_t()
        if libc.pthread_getattr_default_np(attr) == 0:
            found = libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
            libc.pthread_attr_destroy(attr)
            if found == 0 and size.value:
                return size.value
    return default_stack(resource.getrlimit(resource.RLIMIT_STACK)[0])


def malloc_arenas() -> int:
    """How many malloc arenas glibc may add for new threads (0 without glibc): M_ARENA_MAX
    from MALLOC_ARENA_MAX or GLIBC_TUNABLES, else ARENAS_PER_CPU per CPU, less the main one."""
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return 0
    limit = ARENAS_PER_CPU * (os.cpu_count() or 1)
    tunables = dict(
        item.partition("=")[::2] for item in os.environ.get("GLIBC_TUNABLES", "").split(":")
    )
    for value in (os.environ.get("MALLOC_ARENA_MAX"), tunables.get("glibc.malloc.arena_max")):
        if value and value.isdigit() and int(value) > 0:
            limit = int(value)
    return max(limit - 1, 0)


def threads_that_fit(room: int, per_thread: int, arena: int = 0, arenas: int = 0) -> int:
    """The most threads whose reservations fit in ``room`` bytes at the worst: each reserves
    ``per_thread``, and each of the first ``arenas`` also a malloc arena of ``arena`` bytes. glibc
    falls back to mmap when an arena does not fit, so this many always start."""
    if room <= 0 or per_thread <= 0:
        return 0
    each_with_arena = per_thread + arena
    if room < arenas * each_with_arena:
        return room // each_with_arena
    return arenas + (room - arenas * each_with_arena) // per_thread


def _size(size: int) -> str:
    """A size as people write it: 8 MiB, 488 MiB, 2.5 MiB, 256 KiB."""
    if size >= 2**20:
        return f"{size / 2**20:.0f} MiB" if size % 2**20 == 0 else f"{size / 2**20:.1f} MiB"
    return f"{size // 2**10} KiB"


def _space_limits() -> list[tuple[int, int, int, str]]:
    """(resource, soft limit, bytes counted now, name) for each finite memory limit that
    thread stacks count against: RLIMIT_AS counts every mapping, RLIMIT_DATA the private
    writable ones (VmData, with the main stack in psutil's figure)."""
    info = psutil.Process().memory_info()
    found = []
    for which, flag, name in SPACE_LIMITS:
        soft, _ = resource.getrlimit(which)
        if soft != resource.RLIM_INFINITY:
            used = info.vms if which == resource.RLIMIT_AS else getattr(info, "data", info.vms)
            found.append((which, soft, used, f"{name} (ulimit {flag}) of {_size(soft)}"))
    return found


def check_thread_room(threads: int, what: str, option: str) -> None:
    """Refuse, before any work, ``threads`` threads in a process forked from this one that its
    address-space (RLIMIT_AS) or data (RLIMIT_DATA) limit cannot hold. Each thread reserves its
    whole stack at once (``ulimit -s``); under RLIMIT_AS arenas count."""
    stack = thread_stack_bytes()
    per_thread = stack + os.sysconf("SC_PAGE_SIZE") + THREAD_OVERHEAD  # and its guard page
    for which, soft, used, name in _space_limits():
        arena = ARENA_BYTES if which == resource.RLIMIT_AS else 0
        # One arena more: glibc maps twice an arena's size for a moment to align it.
        room = soft - used - SPACE_MARGIN - arena
        fit = threads_that_fit(room, per_thread, arena, malloc_arenas())
        if threads > fit:
            arenas = f" and glibc's {_size(arena)} malloc arenas" if arena else ""
            smaller = "" if threading.stack_size() else ", lower ulimit -s"
            raise LimitExceeded(
                f"{name} leaves room for about {fit} threads of {_size(stack)} stacks{arenas}; "
                f"{what} needs {threads}: raise it{smaller} or lower {option}"
            )


def thread_start_failure(what: str, lower: str) -> str:
    """One line for a thread that could not start (pthread_create(3) failed: Python says only
    "can't start new thread"): the limit that most likely stopped it, and what to change."""
    stack = thread_stack_bytes()
    for _, soft, used, name in _space_limits():
        if soft - used < stack + SPACE_MARGIN:
            return (
                f"{what} could not start: {name} is used up ({_size(stack)} of stack per "
                f"thread): raise it or {lower}"
            )
    return (
        f"{what} could not start: the process or thread limit is reached (ulimit -u, "
        f"kernel.threads-max, kernel.pid_max, or a cgroup's pids.max) or memory ran out: {lower}"
    )
