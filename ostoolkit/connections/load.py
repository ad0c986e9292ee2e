"""The load generator: client processes that open connections first, then run queries.

Clients run in their own processes, so the load does not share the server's interpreter.
Each client process opens its share of the connections one after the other (timing each
connect up to the server's greeting), says so, waits for the common start, then keeps one
query in flight per connection until each has run its queries (a closed loop). A client
never prints: if the server or ostoolkit vanishes it says why on its report pipe (when
someone still reads it) and exits with status 1.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ostoolkit.children import Children, ClosedOnExit, Fds, signals_held
from ostoolkit.connections.protocol import GREETING, QUERY
from ostoolkit.connections.servers import LOOPBACK
from ostoolkit.errors import OstoolkitError

# Client processes driving the load; more do not help on small hosts and cost memory.
MAX_CLIENT_PROCESSES = 4
REPORT_TIMEOUT_S = 300.0
# A client process's life: (its share of the connections, its report pipe, the phase pipes).
ClientBody = Callable[[int, int, Sequence[int]], None]


@dataclass(frozen=True)
class LoadResult:
    """What the clients saw: connect times, query latencies (µs) and the query phase's length."""

    connect_us: list[float]
    latency_us: list[float]
    queries: int
    elapsed_s: float


def _open(port: int, count: int) -> tuple[list[socket.socket], list[float]]:
    """Open ``count`` connections, timing each until the server's greeting arrives."""
    socks, times = [], []
    for _ in range(count):
        start = time.perf_counter_ns()
        sock = socket.create_connection((LOOPBACK, port))
        if sock.recv(len(GREETING)) != GREETING:
            raise OstoolkitError("the server did not greet")
        times.append((time.perf_counter_ns() - start) / 1e3)
        socks.append(sock)
    return socks, times


def _run_queries(socks: Sequence[socket.socket], queries: int) -> list[float]:
    """Keep one query in flight per connection until each ran ``queries``; latencies in µs."""
    selector = selectors.DefaultSelector()
    left = dict.fromkeys(socks, queries)
    sent_at: dict[socket.socket, int] = {}
    latencies: list[float] = []
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ, sock)
        sent_at[sock] = time.perf_counter_ns()
        sock.sendall(QUERY)
    pending = len(socks)
    while pending:
        for key, _ in selector.select():
            sock = key.data
            if not sock.recv(2):
                raise OstoolkitError("the server closed a connection mid-run")
            now = time.perf_counter_ns()
            latencies.append((now - sent_at[sock]) / 1e3)
            left[sock] -= 1
            if left[sock]:
                sent_at[sock] = time.perf_counter_ns()
                sock.sendall(QUERY)
            else:
                selector.unregister(sock)
                pending -= 1
    return latencies


def send_report(report_w: int, payload: dict[str, Any]) -> None:
    """Send one JSON line to ostoolkit."""
    data = (json.dumps(payload) + "\n").encode()
    while data:
        data = data[os.write(report_w, data) :]


def _client(port: int, queries: int, count: int, report_w: int, phases: Sequence[int]) -> None:
    """One client process: at each phase's start, connect, then query, then close."""
    connect_r, go_r, finish_r = phases
    send_report(report_w, {})  # started: the server can be measured with us in the picture
    os.read(connect_r, 1)  # end-of-file on each phase pipe: every client moves on at once
    socks, connect_us = _open(port, count)
    send_report(report_w, {"connect_us": connect_us})
    os.read(go_r, 1)
    send_report(report_w, {"latency_us": _run_queries(socks, queries)})
    os.read(finish_r, 1)
    for sock in socks:
        sock.close()


def builtin_client(port: int, queries: int) -> ClientBody:
    """The body of a client process of the built-in servers: ``queries`` per connection."""
    return functools.partial(_client, port, queries)


def _run_client(body: ClientBody, count: int, report_w: int, phases: Sequence[int]) -> None:
    """``body``, but a vanished server or ostoolkit ends it with status 1 and no traceback.

    The reason goes to ostoolkit as ``{"error": ...}`` if it still reads the report pipe.
    """
    try:
        body(count, report_w, phases)
    except (OSError, OstoolkitError) as err:
        with contextlib.suppress(OSError):
            send_report(report_w, {"error": " ".join(str(err).split()) or type(err).__name__})
        os._exit(1)


def _split(total: int, parts: int) -> list[int]:
    """Split ``total`` connections as evenly as possible over ``parts`` processes."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class LoadRun(ClosedOnExit):
    """Client processes driven through three phases: connect, query, finish.

    A context manager: ``start`` it inside the ``with`` block, and leaving the block kills
    and reaps whatever clients are left, before any server stops. Creating the client
    processes first matters: they are forks of ostoolkit and share pages with the server,
    so the server's PSS is measured idle with them already present.
    """

    PHASES = ("connect", "go", "finish")

    def __init__(
        self, clients: int, body: ClientBody, processes: int = MAX_CLIENT_PROCESSES
    ) -> None:
        self.clients = clients
        self.body = body
        self.processes = processes
        self.children = Children()
        self.fds = Fds()
        self.phase_w: list[int] = []  # write ends of the phases not begun yet, in order
        self.readers: dict[int, bytes] = {}
        self.pids: list[int] = []

    def start(self) -> None:
        """Fork the client processes; return once every one of them runs."""
        pipes = [self.fds.pipe() for _ in self.PHASES]
        phase_r = [read_end for read_end, _ in pipes]
        self.phase_w = [write_end for _, write_end in pipes]
        shares = [n for n in _split(self.clients, min(self.processes, self.clients)) if n]
        for share in shares:
            report_r, report_w = self.fds.pipe()

            def run(share: int = share, report_w: int = report_w) -> None:
                # Without the phases' write ends (or it would never read end-of-file) and
                # the report pipes' read ends (a write must fail once ostoolkit is gone).
                self.fds.close_copies({report_w, *phase_r})
                _run_client(self.body, share, report_w, phase_r)

            self.pids.append(self.children.fork(run))
            self.fds.close(report_w)
            self.readers[report_r] = b""
        self._collect()

    def _next_phase(self) -> None:
        """Close the next phase's pipe: every client reads end-of-file and moves on."""
        self.fds.close(self.phase_w.pop(0))  # if Ctrl-C lands in between, close() closes it

    def _collect(self) -> list[dict[str, Any]]:
        """Read one JSON line from every client process."""
        reports = []
        waiting = set(self.readers)
        deadline = time.monotonic() + REPORT_TIMEOUT_S
        while waiting:
            ready, _, _ = select.select(list(waiting), [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise OstoolkitError("the load's clients did not report in time")
            for fd in ready:
                if b"\n" not in self.readers[fd]:
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        raise OstoolkitError("a client process of the load died")
                    self.readers[fd] += chunk
                if b"\n" in self.readers[fd]:
                    line, self.readers[fd] = self.readers[fd].split(b"\n", 1)
                    report = json.loads(line)
                    if "error" in report:
                        raise OstoolkitError(f"a client of the load failed: {report['error']}")
                    reports.append(report)
                    waiting.discard(fd)
        return reports

    def phase(self) -> list[dict[str, Any]]:
        """Begin the next phase; return every client process's report of it."""
        self._next_phase()
        return self._collect()

    def connect(self) -> list[float]:
        """Let the clients open their connections; return every connect time (µs)."""
        return [t for report in self.phase() for t in report["connect_us"]]

    def run(self) -> tuple[list[float], float]:
        """Let every client run its queries; return the latencies (µs) and the elapsed time."""
        started = time.perf_counter()
        reports = self.phase()
        return [t for r in reports for t in r["latency_us"]], time.perf_counter() - started

    def finish(self) -> None:
        """Let the clients close their connections and exit; reap them."""
        self._next_phase()
        for pid in self.pids:
            self.children.reap(pid)

    def close(self) -> None:
        """Kill and reap the clients still running, then close every pipe end still open."""
        with signals_held():
            try:
                self.children.close()
            finally:
                self.fds.close_all()
                self.phase_w = []
                self.readers = {}
