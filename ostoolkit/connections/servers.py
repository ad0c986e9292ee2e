"""Built-in servers on 127.0.0.1: process-, thread-per-connection, and a pooling funnel.

- ``process``: a supervisor accepts and forks one backend process per client connection and
  reaps it when the client leaves, as PostgreSQL's postmaster does.
- ``thread``: one process, one thread per connection, as mysqld does.
- ``pooled``: one event-driven process (selectors) that accepts any number of clients and
  passes each query over a fixed pool of K connections to a ``process`` server, as PgBouncer
  does in transaction mode.

Each server runs in a child started through ``Children`` and stops when its control pipe
reaches end-of-file.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ostoolkit.children import Children, fork_descendant
from ostoolkit.connections.protocol import GREETING, QUERY, REPLY, do_work
from ostoolkit.errors import OstoolkitError

LOOPBACK = "127.0.0.1"
BACKLOG = 4096
# How often the supervisor looks for finished backends to reap while idle.
REAP_INTERVAL_S = 0.05
START_TIMEOUT_S = 30.0


@dataclass
class ServerHandle:
    """A running built-in server: its pid, its port, and the pipe whose closing stops it."""

    pid: int
    port: int
    control_w: int

    def stop(self, children: Children) -> None:
        """Close the control pipe, so the server ends its connections and exits; reap it."""
        if self.control_w >= 0:
            os.close(self.control_w)
            self.control_w = -1
        children.reap(self.pid)


def _serve_connection(conn: socket.socket) -> None:
    """Greet, then answer every query line until the client closes."""
    with conn, conn.makefile("rb") as lines:
        conn.sendall(GREETING)
        for line in lines:
            if line == QUERY:
                do_work()
                conn.sendall(REPLY)


def _reap(backends: set[int]) -> None:
    """Reap every finished backend without blocking."""
    for pid in list(backends):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            backends.discard(pid)


def serve_process(listener: socket.socket, control_r: int, ready: Callable[[], None]) -> None:
    """Accept connections and fork one backend process for each (process-per-connection)."""
    backends: set[int] = set()
    ready()
    try:
        while True:
            readable, _, _ = select.select([listener.fileno(), control_r], [], [], REAP_INTERVAL_S)
            _reap(backends)
            if control_r in readable:
                return
            if listener.fileno() in readable:
                conn, _ = listener.accept()

                def backend(conn: socket.socket = conn) -> None:
                    listener.close()
                    os.close(control_r)
                    _serve_connection(conn)

                backends.add(fork_descendant(backend))
                conn.close()
    finally:
        listener.close()
        for pid in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            os.waitpid(pid, 0)


def serve_thread(listener: socket.socket, control_r: int, ready: Callable[[], None]) -> None:
    """Accept connections and start one thread for each (thread-per-connection)."""
    ready()
    try:
        while True:
            readable, _, _ = select.select([listener.fileno(), control_r], [], [])
            if control_r in readable:
                return
            conn, _ = listener.accept()
            threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()
    finally:
        listener.close()


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
        client, _ = listener.accept()
        client.sendall(GREETING)
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
            client.close()
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
        control = os.fdopen(control_r, "rb", buffering=0)
        self.selector.register(control, selectors.EVENT_READ, None)
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


def start_server(children: Children, serve: Serve) -> ServerHandle:
    """Fork a server process on a free loopback port; return once it is set up and listens."""
    control_r, control_w = os.pipe()
    port_r, port_w = os.pipe()

    def run() -> None:
        os.close(control_w)
        os.close(port_r)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(BACKLOG)

        def ready() -> None:
            os.write(port_w, f"{listener.getsockname()[1]}\n".encode())
            os.close(port_w)

        serve(listener, control_r, ready)

    try:
        pid = children.fork(run)
    except BaseException:
        os.close(control_w)
        raise
    finally:
        os.close(control_r)
        os.close(port_w)
    with os.fdopen(port_r, "rb") as port_file:
        ready, _, _ = select.select([port_file], [], [], START_TIMEOUT_S)
        line = port_file.readline() if ready else b""
    if not line:
        os.close(control_w)
        raise OstoolkitError("a built-in server failed to start")
    return ServerHandle(pid, int(line), control_w)
