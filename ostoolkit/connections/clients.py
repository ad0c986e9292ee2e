"""The load: client processes (not sharing the server's interpreter) that open their share
of the connections in steps, then keep a query in flight on each, timed on one clock. A client
never prints: a vanished peer ends it with status 1 and a reason on its report pipe."""

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
from ostoolkit.connections.builtin.protocol import GREETING, QUERY
from ostoolkit.connections.builtin.servers import LOOPBACK
from ostoolkit.errors import OstoolkitError
from ostoolkit.stats import percentile

# Client processes driving the load; more do not help on small hosts and cost memory.
MAX_CLIENT_PROCESSES = 4
REPORT_TIMEOUT_S = 300.0
# The query phase's steady state is cut into this many equal time windows, each one sample
# of qps, p50 and p99. compare judges a figure on 5 samples or more: 8 leave a margin for a
# window that went wrong, while each window still holds an eighth of the steady queries,
# enough for its own p99 (builtin.MIN_RUN_QUERIES).
WINDOWS = 8
# Fewer queries than this in a window make its p99 little more than its largest latency:
# the results say so.
MIN_WINDOW_QUERIES = 50
# A client process's life: (the connections it opens in each connect step, its report pipe,
# the phase pipes: one per connect step, then the go and finish ones).
ClientBody = Callable[[Sequence[int], int, Sequence[int]], None]


@dataclass(frozen=True)
class LoadResult:
    """What the clients saw: connect times, query latencies (µs) and completions (``ends_ns``),
    the query phase's length; ``steady_ns``: the span with every connection in its loop, from the
    last client's start to the first connection done ((0, 0) when not known)."""

    connect_us: list[float]
    latency_us: list[float]
    queries: int
    elapsed_s: float
    ends_ns: Sequence[int] = ()
    steady_ns: tuple[int, int] = (0, 0)


def split_windows(
    ends: Sequence[int], values: Sequence[float], start: int, stop: int, count: int
) -> list[list[float]]:
    """``values`` by the window their ``ends`` fall in: ``count`` equal windows from ``start``
    to ``stop``, each including its start, not its end (a value outside them is left out)."""
    windows: list[list[float]] = [[] for _ in range(max(count, 0))]
    span = stop - start
    if span <= 0 or not windows:
        return windows
    for end, value in zip(ends, values, strict=True):
        if start <= end < stop:
            windows[(end - start) * count // span].append(value)
    return windows


@dataclass(frozen=True)
class Windows:
    """A load as samples: each window's completions per second, and the p50 and p99 of each
    window that holds any (one 0 where none does)."""

    rate: list[float]
    p50: list[float]
    p99: list[float]
    notes: tuple[str, ...] = ()


def window_figures(
    windows: Sequence[Sequence[float]], length_s: float, notes: tuple[str, ...] = ()
) -> Windows:
    """The samples of latencies (µs) cut into windows of ``length_s`` each."""
    full = [window for window in windows if window]
    return Windows(
        [len(window) / length_s for window in windows] or [0.0],
        [percentile(window, 50) for window in full] or [0.0],
        [percentile(window, 99) for window in full] or [0.0],
        notes,
    )


def query_windows(load: LoadResult) -> Windows:
    """Cut the steady state into WINDOWS equal windows: each one's completions per second and
    the percentiles of its queries; without one, the whole phase is one sample, with a note."""
    start, stop = load.steady_ns
    windows = split_windows(load.ends_ns, load.latency_us, start, stop, WINDOWS)
    if not any(windows):
        note = "no steady state to cut into windows: one value for the whole query phase"
        return window_figures([load.latency_us], load.elapsed_s, (note,))
    fewest = min(len(window) for window in windows)
    notes: tuple[str, ...] = ()
    if fewest < MIN_WINDOW_QUERIES:
        notes = (f"only {fewest} queries in a window of the steady state: raise --queries",)
    return window_figures(windows, (stop - start) / WINDOWS / 1e9, notes)


def _run_queries(socks: Sequence[socket.socket], queries: int) -> dict[str, Any]:
    """Keep one query in flight per connection until each ran ``queries``: each query's
    latency (µs) and completion (ns), and the steady span, from every connection's first query
    out (``start_ns``) to the first one done (``first_done_ns``)."""
    selector = selectors.DefaultSelector()
    left = dict.fromkeys(socks, queries)
    sent_at: dict[socket.socket, int] = {}
    latencies: list[float] = []
    ends: list[int] = []
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ, sock)
        sent_at[sock] = time.perf_counter_ns()
        sock.sendall(QUERY)
    start = time.perf_counter_ns()
    first_done = 0
    pending = len(socks)
    while pending:
        for key, _ in selector.select():
            sock = key.data
            if not sock.recv(2):
                raise OstoolkitError("the server closed a connection mid-run")
            now = time.perf_counter_ns()
            latencies.append((now - sent_at[sock]) / 1e3)
            ends.append(now)
            left[sock] -= 1
            if left[sock]:
                sent_at[sock] = time.perf_counter_ns()
                sock.sendall(QUERY)
            else:
                selector.unregister(sock)
                pending -= 1
                first_done = first_done or now
    return {
        "latency_us": latencies,
        "ends_ns": ends,
        "start_ns": start,
        "first_done_ns": first_done,
    }


def send_report(report_w: int, payload: dict[str, Any]) -> None:
    """Send one JSON line to ostoolkit."""
    data = (json.dumps(payload) + "\n").encode()
    while data:
        data = data[os.write(report_w, data) :]


def run_phases(
    counts: Sequence[int],
    report_w: int,
    phases: Sequence[int],
    connect: Callable[[int], dict[str, Any]],
    load: Callable[[], dict[str, Any]],
) -> None:
    """A client process's side of ``LoadRun``: report each phase's work, ``connect(count)`` at
    each connect step, ``load()`` at go, then wait for finish. A phase begins at end-of-file
    on its pipe, so every client moves on at once."""
    *connect_rs, go_r, finish_r = phases
    send_report(report_w, {})  # started: the server can be measured with us in the picture
    for connect_r, count in zip(connect_rs, counts, strict=True):
        os.read(connect_r, 1)
        send_report(report_w, connect(count))
    os.read(go_r, 1)
    send_report(report_w, load())
    os.read(finish_r, 1)


def _client(
    port: int, queries: int, counts: Sequence[int], report_w: int, phases: Sequence[int]
) -> None:
    """One client process of the built-in servers: connect in steps, query, then close."""
    socks: list[socket.socket] = []

    def connect(count: int) -> dict[str, Any]:
        """Open ``count`` more connections, timing each until the server greets."""
        times = []
        for _ in range(count):
            start = time.perf_counter_ns()
            sock = socket.create_connection((LOOPBACK, port))
            if sock.recv(len(GREETING)) != GREETING:
                raise OstoolkitError("the server did not greet")
            times.append((time.perf_counter_ns() - start) / 1e3)
            socks.append(sock)
        return {"connect_us": times}

    run_phases(counts, report_w, phases, connect, lambda: _run_queries(socks, queries))
    for sock in socks:
        sock.close()


def builtin_client(port: int, queries: int) -> ClientBody:
    """The body of a client process of the built-in servers: ``queries`` per connection."""
    return functools.partial(_client, port, queries)


def _run_client(
    body: ClientBody, counts: Sequence[int], report_w: int, phases: Sequence[int]
) -> None:
    """``body``, but a vanished server or ostoolkit ends it with status 1 and no traceback, the
    reason sent as ``{"error": ...}`` if ostoolkit still reads the report pipe."""
    try:
        body(counts, report_w, phases)
    except (OSError, OstoolkitError) as err:
        with contextlib.suppress(OSError):
            send_report(report_w, {"error": " ".join(str(err).split()) or type(err).__name__})
        os._exit(1)


def plan_connects(total: int, processes: int, steps: int) -> list[list[int]]:
    """How many connections each client process opens in each connect step: connection j goes
    to process j mod P in step j × S // total, so shares differ by one at most, every step opens
    at least one, and no process is left without a connection."""
    parts = min(processes, total)
    plan = [[0] * steps for _ in range(parts)]
    for j in range(total):
        plan[j % parts][j * steps // total] += 1
    return plan


class LoadRun(ClosedOnExit):
    """Client processes driven through the phases: connect (in ``steps``), query, finish.
    Leaving its ``with`` kills and reaps the clients left, before any server stops; start it
    before reading the idle server, whose PSS counts the pages the clients share."""

    def __init__(
        self,
        clients: int,
        body: ClientBody,
        processes: int = MAX_CLIENT_PROCESSES,
        steps: int = 1,
    ) -> None:
        self.clients = clients
        self.body = body
        self.processes = processes
        self.steps = max(1, min(steps, clients))
        self.phases = ("connect",) * self.steps + ("go", "finish")
        self.children = Children()
        self.fds = Fds()
        self.phase_w: list[int] = []  # write ends of the phases not begun yet, in order
        self.readers: dict[int, bytes] = {}
        self.pids: list[int] = []

    def start(self) -> None:
        """Fork the client processes; return once every one of them runs."""
        pipes = [self.fds.pipe() for _ in self.phases]
        phase_r = [read_end for read_end, _ in pipes]
        self.phase_w = [write_end for _, write_end in pipes]
        for counts in plan_connects(self.clients, self.processes, self.steps):
            report_r, report_w = self.fds.pipe()

            def run(counts: list[int] = counts, report_w: int = report_w) -> None:
                # Without the phases' write ends (or it would never read end-of-file) and
                # the report pipes' read ends (a write must fail once ostoolkit is gone).
                self.fds.close_copies({report_w, *phase_r})
                _run_client(self.body, counts, report_w, phase_r)

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

    def run(self, connect_us: list[float]) -> LoadResult:
        """Let every client run its queries; what they saw, ``connect_us`` (from the connect
        steps) beside."""
        started = time.perf_counter()
        reports = self.phase()
        elapsed = time.perf_counter() - started
        latency_us = [t for r in reports for t in r["latency_us"]]
        return LoadResult(
            connect_us,
            latency_us,
            len(latency_us),
            elapsed,
            [t for r in reports for t in r["ends_ns"]],
            (max(r["start_ns"] for r in reports), min(r["first_done_ns"] for r in reports)),
        )

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
