"""A worker group for measure.memory: a leader process and N idle workers of one model, each
writing the same small state, saying it is ready, then blocking until released, so that the
group can be measured standing still. A leader stopped by a limit says so on the ready pipe.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess

from ostoolkit.budget import enough_open_files, thread_start_failure
from ostoolkit.children import arm_parent_death, fork_descendant, read_before
from ostoolkit.errors import LimitExceeded, OstoolkitError, describe_os_error
from ostoolkit.mpspawn import spawn_context, stopping_mp_helpers

# Descriptors the leader holds per 'spawn' worker: its connection and multiprocessing's two pipe
# ends (the sentinel and the one it wrote the worker's instructions to).
FDS_PER_MP_WORKER = 3
FAILED = b"!"  # what a leader stopped by a limit writes on the ready pipe, then why in a line
# The program an exec'd worker runs: write its state, say ready on stdout, block on stdin.
EXEC_WORKER = (
    "import os, sys\n"
    "state = bytearray(b'\\x01' * {size})\n"
    "os.write(1, b'r')\n"
    "sys.stdin.buffer.read()\n"
)


def _touch_state(kb: int) -> bytearray:
    """A worker's private state: allocated and written, so it is really its own."""
    return bytearray(b"\x01" * (kb * 1024))


def _idle(kb: int, release_r: int, ready_w: int) -> None:
    """A thread or forked worker: write its state, say ready, block until released."""
    state = _touch_state(kb)
    os.write(ready_w, b"r")
    os.read(release_r, 1)
    del state


def _start(thread: threading.Thread, what: str) -> None:
    """Start a thread; one that cannot (pthread_create failed) is a ``LimitExceeded``."""
    try:
        thread.start()
    except RuntimeError as err:  # Python's only words for it: "can't start new thread"
        raise LimitExceeded(thread_start_failure(what, "lower --workers")) from err


def _mp_worker(kb: int, address: str, leader: int) -> None:
    """A multiprocessing worker, dying with the leader: write its state, say ready over the
    leader's abstract unix socket, then read it to end-of-file (the leader's close or death)."""
    if not arm_parent_death(leader):
        return
    state = _touch_state(kb)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(address)
            conn.sendall(b"r")
            while conn.recv(1):
                pass
    except OSError:
        return
    del state


def _start_workers(
    model: str, count: int, kb: int, release_r: int, ready_w: int
) -> list[Callable[[], object]]:
    """Start ``count`` threads, forked or exec'd processes in this (leader) process; return how
    to wait for each. Each writes its state and one byte to ``ready_w``, then blocks reading
    ``release_r`` until end-of-file. 'spawn' workers are started by ``_start_mp_workers``."""
    args = (kb, release_r, ready_w)
    if model == "thread":
        threads = [threading.Thread(target=_idle, args=args, daemon=True) for _ in range(count)]
        for number, thread in enumerate(threads, 1):
            _start(thread, f"worker thread {number} of {count}")
        return [thread.join for thread in threads]
    code = EXEC_WORKER.format(size=kb * 1024)

    def execd() -> None:
        os.dup2(release_r, 0)
        os.dup2(ready_w, 1)
        os.execv(sys.executable, [sys.executable, "-c", code])

    target: Callable[[], None] = execd if model == "exec_process" else partial(_idle, *args)
    return [partial(os.waitpid, fork_descendant(target), 0) for _ in range(count)]


def _start_mp_workers(
    context: SpawnContext, count: int, kb: int, ready_w: int
) -> Callable[[], object]:
    """Start 'spawn' workers synchronised over an abstract unix socket, which vanishes with its
    last descriptor however the leader dies (multiprocessing's /dev/shm semaphores outlive a
    SIGKILL); return how to release and join them."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = f"\0ostoolkit-{os.getpid()}-{secrets.token_hex(8)}"
    listener.bind(address)
    listener.listen(max(count, 1))
    stop_r, stop_w = os.pipe()
    conns: list[socket.socket] = []
    args = (kb, address, os.getpid())
    procs = [context.Process(target=_mp_worker, args=args) for _ in range(count)]
    for proc in procs:
        try:
            proc.start()
        except OSError as err:  # EAGAIN at a task limit, ENOMEM
            raise describe_os_error(err, "starting a 'spawn' worker") from err

    def relay() -> None:
        try:
            _relay_ready(listener, procs, ready_w, stop_r, conns)
        except OSError as err:  # the leader cannot go on: end it, so ostoolkit sees the group die
            os.write(2, f"ostoolkit: 'spawn' workers' leader: {err}\n".encode())
            os._exit(1)

    thread = threading.Thread(target=relay, name="ostoolkit-relay", daemon=True)
    _start(thread, "the leader's relay thread")

    def join() -> None:
        os.write(stop_w, b"x")
        thread.join()
        listener.close()  # a late worker's connect fails and it ends
        for conn in conns:
            conn.close()  # the release: each worker reads end-of-file
        for proc in procs:
            proc.join()
            proc.close()
        for fd in (stop_r, stop_w):
            os.close(fd)

    return join


def _relay_ready(
    listener: socket.socket,
    procs: Sequence[BaseProcess],
    ready_w: int,
    stop_r: int,
    conns: list[socket.socket],
) -> None:
    """Accept workers and relay one ready byte per worker, until all are ready or a stop byte;
    a worker that ends first (its main script failed to import, say) is an error at once."""
    ready = 0
    with selectors.DefaultSelector() as selector:  # epoll: beyond select's 1024 descriptors
        selector.register(stop_r, selectors.EVENT_READ)
        selector.register(listener, selectors.EVENT_READ)
        for proc in procs:
            selector.register(proc.sentinel, selectors.EVENT_READ, proc)
        while ready < len(procs):
            for key, _ in selector.select():
                if key.fileobj == stop_r:
                    return
                if isinstance(key.data, BaseProcess):
                    key.data.join()
                    raise ChildProcessError(
                        f"a worker ended with {key.data.exitcode} before it was ready "
                        "(its error, if any, is above)"
                    )
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conns.append(conn)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                worker = key.fileobj
                assert isinstance(worker, socket.socket)
                selector.unregister(worker)
                with contextlib.suppress(OSError):  # a worker gone before its byte: not ready
                    if worker.recv(1):
                        ready += 1
                        os.write(ready_w, b"r")


def lead_group(model: str, count: int, kb: int, release_r: int, ready_w: int) -> None:
    """The group's leader: start the workers, hold until released, then join or reap them and
    stop the resource tracker it started. A limit that stops a worker is said on ``ready_w``
    (``FAILED``, then the line), and the leader exits quietly."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(stopping_mp_helpers([]))
        try:
            if model == "mp_spawn":
                stack.enter_context(enough_open_files(count * FDS_PER_MP_WORKER))
                context = stack.enter_context(spawn_context([]))
                waits = [_start_mp_workers(context, count, kb, ready_w)]
            else:
                waits = _start_workers(model, count, kb, release_r, ready_w)
        except LimitExceeded as err:
            os.write(ready_w, FAILED + " ".join(str(err).split()).encode()[:4000] + b"\n")
            raise SystemExit(1) from None
        os.write(ready_w, b"L")  # the leader itself is in place
        os.read(release_r, 1)
        for wait in waits:
            wait()


def await_ready(ready_r: int, expected: int, timeout: float) -> None:
    """Read ``expected`` ready bytes (workers' and the leader's) or fail after ``timeout``; a
    leader's ``FAILED`` line, one write under PIPE_BUF (never split), is a ``LimitExceeded``."""
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < expected:
        chunk = read_before(ready_r, deadline)
        if chunk is None:
            raise OstoolkitError(f"only {seen} of {expected} workers became ready in time")
        if not chunk:
            raise OstoolkitError(f"the worker group died after {seen} of {expected} were ready")
        if FAILED in chunk:
            reason = chunk.partition(FAILED)[2].partition(b"\n")[0]
            raise LimitExceeded(reason.decode(errors="replace"))
        seen += len(chunk)
