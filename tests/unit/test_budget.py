"""Limits are checked before any fork: task headroom, available memory, and the address space
that threads' stacks reserve (ostoolkit.budget); a limit that does not bind is said."""

import resource
import threading
from types import SimpleNamespace

import pytest

from ostoolkit import budget
from ostoolkit.children import Children
from ostoolkit.errors import LimitExceeded

MIB = 2**20


def test_refuses_more_tasks_than_half_the_headroom(monkeypatch):
    monkeypatch.setattr(budget, "task_headroom", lambda: (100, "RLIMIT_NPROC=4096 (ulimit -u)"))
    budget.check_task_budget(50, 1, "--max-procs")
    with pytest.raises(LimitExceeded, match=r"--max-procs asks for 51 tasks but only 100 more"):
        budget.check_task_budget(51, 1, "--max-procs")


def test_refuses_more_memory_than_half_available(monkeypatch):
    monkeypatch.setattr(budget, "task_headroom", lambda: (None, "no limit found"))
    monkeypatch.setattr(
        budget.psutil, "virtual_memory", lambda: SimpleNamespace(available=100 * 2**20)
    )
    budget.check_task_budget(10, 5 * 2**20, "--workers")
    with pytest.raises(LimitExceeded, match="needs about 60 MiB but only 100 MiB"):
        budget.check_task_budget(12, 5 * 2**20, "--workers")


def test_headroom_on_this_host_is_below_the_limit_it_names():
    """Linux always has kernel.pid_max, so some limit binds: headroom is what is left of it
    once this host's tasks are counted (at least this one)."""
    headroom, limit = budget.task_headroom()
    name, _, value = limit.partition("=")
    assert name in ("RLIMIT_NPROC", "kernel.threads-max", "kernel.pid_max"), limit
    cap = int(value.split()[0])
    assert headroom is not None
    assert 0 < headroom < cap


# --- threads and the address space ------------------------------------------------------------


def test_threads_that_fit_without_arenas_is_room_over_stack():
    assert budget.threads_that_fit(100 * MIB, 8 * MIB) == 12
    assert budget.threads_that_fit(8 * MIB - 1, 8 * MIB) == 0
    assert budget.threads_that_fit(-5 * MIB, 8 * MIB) == 0


def test_threads_that_fit_counts_an_arena_for_each_of_the_first_threads():
    # 3 arenas: the first three threads take 8 + 64 MiB each, the rest 8 MiB.
    assert budget.threads_that_fit(216 * MIB, 8 * MIB, 64 * MIB, 3) == 3
    assert budget.threads_that_fit(215 * MIB, 8 * MIB, 64 * MIB, 3) == 2
    assert budget.threads_that_fit(216 * MIB + 80 * MIB, 8 * MIB, 64 * MIB, 3) == 13
    # 488 MiB, 15 arenas: 6 threads of 72 MiB (432), and no room for a seventh.
    assert budget.threads_that_fit(488 * MIB, 8 * MIB, 64 * MIB, 15) == 6


def test_threads_that_fit_never_falls_as_room_grows():
    counts = [budget.threads_that_fit(r * MIB, 8 * MIB, 64 * MIB, 15) for r in range(0, 3000, 7)]
    assert counts == sorted(counts)


def test_default_stack_follows_rlimit_stack_as_glibc_does():
    assert budget.default_stack(8 * MIB) == 8 * MIB
    assert budget.default_stack(1024) == 16 * 2**10  # PTHREAD_STACK_MIN
    assert budget.default_stack(resource.RLIM_INFINITY) == budget.FALLBACK_STACK


def test_thread_stack_is_the_explicit_size_when_one_is_set():
    before = threading.stack_size(512 * 2**10)
    try:
        assert budget.thread_stack_bytes() == 512 * 2**10
    finally:
        threading.stack_size(before)
    assert budget.thread_stack_bytes() >= 16 * 2**10


def test_malloc_arenas_honour_malloc_arena_max(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert budget.malloc_arenas() in (0, 3)  # 0 without glibc; the main arena is not new
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert budget.malloc_arenas() in (0, 1)


@pytest.fixture
def address_space(monkeypatch):
    """RLIMIT_AS reads as 600 MiB with 40 MiB in use, 8 MiB stacks, 15 arenas of 64 MiB."""
    real = resource.getrlimit
    unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    limits = {
        resource.RLIMIT_AS: (600 * MIB, resource.RLIM_INFINITY),
        resource.RLIMIT_DATA: unlimited,
    }
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits.get(which) or real(which))
    in_use(monkeypatch, 40 * MIB)
    monkeypatch.setattr(budget, "thread_stack_bytes", lambda: 8 * MIB)
    monkeypatch.setattr(budget, "malloc_arenas", lambda: 15)


def in_use(monkeypatch, size):
    """This process's mappings read as ``size`` bytes, data and address space alike."""
    info = SimpleNamespace(vms=size, data=size)
    monkeypatch.setattr(budget.psutil, "Process", lambda: SimpleNamespace(memory_info=lambda: info))


def test_threads_over_the_address_space_are_refused_in_one_line(address_space):
    budget.check_thread_room(4, "--workers 4 (the thread model)", "--workers")
    with pytest.raises(LimitExceeded) as refused:
        budget.check_thread_room(100, "--workers 100 (the thread model)", "--workers")
    message = str(refused.value)
    assert "\n" not in message
    # 600 - 40 in use - 16 margin - 64 (one arena mapped twice) = 480 MiB: 6 threads of 72.
    assert message.startswith(
        "the address-space limit (ulimit -v) of 600 MiB leaves room for about 6 threads of "
        "8 MiB stacks and glibc's 64 MiB malloc arenas; --workers 100 (the thread model) "
        "needs 100: raise it"
    )
    assert message.endswith("or lower --workers")


def test_a_thread_that_cannot_start_names_the_limit(address_space, monkeypatch):
    def full():
        raise RuntimeError("can't start new thread")

    in_use(monkeypatch, 598 * MIB)
    with Children() as children:
        monkeypatch.setattr(threading.Thread, "start", lambda self: full())
        with pytest.raises(LimitExceeded) as refused:
            children.start_thread(lambda: None, lambda: None, name="ostoolkit-ring-3")
    assert str(refused.value) == (
        "thread ostoolkit-ring-3 could not start: the address-space limit (ulimit -v) of "
        "600 MiB is used up (8 MiB of stack per thread): raise it or lower the counts"
    )


# --- RLIMIT_NPROC and who it does not bind ------------------------------------------------------


def test_nproc_binds_all_but_root_and_capable_tasks_of_the_initial_namespace():
    resource_bit, admin_bit = 1 << budget.CAP_SYS_RESOURCE, 1 << budget.CAP_SYS_ADMIN
    assert budget.nproc_exemption(0, 0, True) == "root"
    assert budget.nproc_exemption(1000, resource_bit, True) == "a process with CAP_SYS_RESOURCE"
    assert budget.nproc_exemption(1000, admin_bit, True) == "a process with CAP_SYS_ADMIN"
    assert budget.nproc_exemption(1000, 1 << 0, True) is None  # CAP_CHOWN: bound
    assert budget.nproc_exemption(0, resource_bit, False) is None  # root of a user namespace


def test_headroom_leaves_out_nproc_only_where_it_does_not_bind(monkeypatch):
    real = resource.getrlimit
    monkeypatch.setattr(
        budget.resource,
        "getrlimit",
        lambda which: (10, 10) if which == resource.RLIMIT_NPROC else real(which),
    )
    monkeypatch.setattr(budget, "_user_tasks", lambda uid: 4)
    monkeypatch.setattr(budget, "nproc_exemption_here", lambda: None)
    assert budget.task_headroom() == (6, "RLIMIT_NPROC=10 (ulimit -u)")
    assert budget.nproc_note(500, "processes") is None  # it binds: check_task_budget refuses
    monkeypatch.setattr(budget, "nproc_exemption_here", lambda: "root")
    assert "RLIMIT_NPROC" not in budget.task_headroom()[1]
    assert budget.nproc_note(3, "processes") is None  # within what the limit would allow
    assert budget.nproc_note(500, "processes") == (
        "RLIMIT_NPROC (ulimit -u) 10 does not bind root: 500 processes started"
    )
