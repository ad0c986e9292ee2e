"""Built-in servers on 127.0.0.1, each in a supervised child that stops at its control pipe's
end-of-file and never prints: a backend process per client (as PostgreSQL), a thread per client
(as mysqld), or a funnel into a pool of K connections to the first (as PgBouncer)."""

from __future__ import annotations

import collections
import contextlib
import os
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator

from ostoolkit.budget import thread_start_failure
from ostoolkit.children import (
    Children,
    ClosedOnExit,
    Fds,
    fork_descendant,
    read_before,
    signals_held,
)
from ostoolkit.connections.builtin.protocol import GREETING, QUERY, REPLY, do_work
from ostoolkit.errors import LimitExceeded, OstoolkitError

LOOPBACK = "127.0.0.1"
BACKLOG = 4096
# How often the supervisor looks for finished backends to reap while idle.
REAP_INTERVAL_S = 0.05
START_TIMEOUT_S = 30.0


def _serve_connection(conn: socket.socket) -> None:
    """Greet, then answer every query line until the client closes or vanishes (silently)."""
    with contextlib.suppress(OSError), conn, conn.makefile("rb") as lines:
        conn.sendall(GREETING)
        for line in lines:
            if line == QUERY:
                do_work()
                conn.sendall(REPLY)


def _reap_finished(backends: Children) -> None:
    """Reap every backend that has exited, without blocking (waitid(2) peeks, then reap)."""
    while True:
        try:
            exited = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if exited is None:
            return
        backends.reap(exited.si_pid)


def serve_process(listener: socket.socket, control_r: int, ready: Callable[[], None]) -> None:
    """Accept connections and fork a backend process for each (process-per-connection); the
    backends die with the supervisor, which kills and reaps those left on its way out."""
    with Children() as backends, listener:
        ready()
        while True:
            readable, _, _ = select.select([listener.fileno(), control_r], [], [], REAP_INTERVAL_S)
            _reap_finished(backends)
            if control_r in readable:
                return
            if listener.fileno() in readable:
                try:
                    conn, _ = listener.accept()
                except ConnectionAbortedError:  # the client left before we took it
                    continue

                def backend(conn: socket.socket = conn) -> None:
                    listener.close()
                    os.close(control_r)
                    _serve_connection(conn)

                with conn:
                    backends.adopt(fork_descendant(backend), own_group=False)


def serve_thread(listener: socket.socket, control_r: int, ready: Callable[[], None]) -> None:
    """Accept connections and start one thread for each (thread-per-connection)."""
    with listener:
        ready()
        while True:
            readable, _, _ = select.select([listener.fileno(), control_r], [], [])
            if control_r in readable:
                return
            try:
                conn, _ = listener.accept()
            except ConnectionAbortedError:  # the client left before we took it
                continue
            try:
                threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()
            except RuntimeError as err:  # pthread_create failed: a limit, said in one line
                conn.close()
                why = thread_start_failure("the thread server", "lower --clients")
                raise LimitExceeded(why) from err


class _Pooler:
    """Event loop of the funnel: many client sockets, K backend sockets, a queue between."""

    def __init__(self, listener: socket.socket, upstream_port: int, pool_size: int) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        self.waiting: collections.deque[socket.socket] = collections.deque()
        self.idle: list[socket.socket] = []
        self.busy: dict[socket.socket, socket.socket] = {}
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, self._accept)
        for _ in range(pool_size):
            backend = socket.create_connection((LOOPBACK, upstream_port))
            if backend.makefile("rb").readline() != GREETING:
                raise OstoolkitError("the pooler's upstream did not greet")
            self.selector.register(backend, selectors.EVENT_READ, self._from_backend)
            self.buffers[backend] = b""
            self.idle.append(backend)

    def _accept(self, listener: socket.socket) -> None:
        """Take a new client and greet it; one that is already gone is just dropped."""
        try:
            client, _ = listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        try:
            client.sendall(GREETING)
        except OSError:
            client.close()
            return
        client.setblocking(False)
        self.buffers[client] = b""
        self.selector.register(client, selectors.EVENT_READ, self._from_client)

    def _lines(self, sock: socket.socket) -> list[bytes] | None:
        """Complete lines received on ``sock``; None when it closed."""
        try:
            data = sock.recv(65536)
        except ConnectionError:
            data = b""
        if not data:
            return None
        *lines, self.buffers[sock] = (self.buffers[sock] + data).split(b"\n")
        return [line + b"\n" for line in lines]

    def _from_client(self, client: socket.socket) -> None:
        lines = self._lines(client)
        if lines is None:
            self.selector.unregister(client)
            del self.buffers[client]
            client.close()  # its queries still waiting get their reply dropped in _from_backend
            return
        self.waiting.extend(client for line in lines if line == QUERY)
        self._dispatch()

    def _from_backend(self, backend: socket.socket) -> None:
        lines = self._lines(backend)
        if lines is None:
            raise OstoolkitError("a pooled backend connection closed")
        for line in lines:
            if line == REPLY:
                client = self.busy.pop(backend)
                with contextlib.suppress(OSError):  # the client may have gone meanwhile
                    client.sendall(REPLY)
                self.idle.append(backend)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand waiting queries to idle backends: transaction pooling, one query at a time."""
        while self.waiting and self.idle:
            backend, client = self.idle.pop(), self.waiting.popleft()
            self.busy[backend] = client
            backend.sendall(QUERY)

    def run(self, control_r: int) -> None:
        """Serve until the control pipe reaches end-of-file."""
        self.selector.register(control_r, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.selector.select():
                if key.data is None:
                    return
                key.data(key.fileobj)


def serve_pooled(
    listener: socket.socket,
    control_r: int,
    ready: Callable[[], None],
    upstream_port: int,
    pool_size: int,
) -> None:
    """Funnel any number of client connections into ``pool_size`` upstream connections."""
    pooler = _Pooler(listener, upstream_port, pool_size)
    ready()  # only now: the pool's backends exist when the server is first measured
    pooler.run(control_r)


Serve = Callable[[socket.socket, int, Callable[[], None]], None]


def read_lines(fd: int, timeout: float) -> Iterator[bytes]:
    """The complete lines written to a pipe, until end-of-file or ``timeout`` s from now."""
    deadline = time.monotonic() + timeout
    pending = b""
    while chunk := read_before(fd, deadline):
        *lines, pending = (pending + chunk).split(b"\n")
        yield from lines


def _run_server(serve: Serve, control_r: int, port_w: int) -> None:
    """In the server's process: listen, say the port on ``port_w``, serve. A failure ends it
    with status 1, its reason on ``port_w`` before it is ready (after, the clients tell)."""
    port_pipe = [port_w]  # emptied once the port is said: a list, so ready() can pop it
    try:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(BACKLOG)

        def ready() -> None:
            os.write(port_pipe[0], f"{listener.getsockname()[1]}\n".encode())
            os.close(port_pipe.pop())

        serve(listener, control_r, ready)
    except (OSError, OstoolkitError) as err:
        if port_pipe:
            with contextlib.suppress(OSError):
                os.write(port_pipe[0], f"!{' '.join(str(err).split())}\n".encode())
        os._exit(1)


class Server(ClosedOnExit):
    """One built-in server in a child process: ``start`` it, then leave its ``with`` block (its
    clients gone first, a pooler before its upstream): normally it is stopped and reaped, on an
    exception its process group is killed at once."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.children = Children()
        self.fds = Fds()
        self.pid = -1
        self.port = -1

    def __exit__(self, *exc_info: object) -> None:
        self.close(graceful=exc_info[0] is None)

    def start(self) -> Server:
        """Fork the server on a free loopback port; return once it is set up and listens."""
        control_r, _ = self.fds.pipe()  # the write end stays in self.fds until close()
        port_r, port_w = self.fds.pipe()
        serve = self.serve

        def run() -> None:
            self.fds.close_copies({control_r, port_w})
            _run_server(serve, control_r, port_w)

        self.pid = self.children.fork(run)
        self.fds.close(control_r)
        self.fds.close(port_w)
        line = next(read_lines(port_r, START_TIMEOUT_S), b"")
        self.fds.close(port_r)
        if not line.isdigit():
            reason = line[1:].decode(errors="replace") if line.startswith(b"!") else ""
            raise OstoolkitError(
                "a built-in server failed to start" + (f": {reason}" if reason else "")
            )
        self.port = int(line)
        return self

    def close(self, graceful: bool = False) -> None:
        """Stop the server: let it exit on its own first if ``graceful``; kill and reap the rest."""
        try:
            if graceful and self.pid in self.children.pids:
                self.fds.close_all()  # end-of-file on its control pipe: the server exits
                self.children.reap(self.pid)
        finally:
            with signals_held():
                self.children.close()
                self.fds.close_all()
