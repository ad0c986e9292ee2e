"""The load on a real server: client processes speaking its wire protocol from one epoll loop,
a small read transaction in flight on each of their connections (as pgbench -S) or a connection
per transaction (``per_tx``, as pgbench -C); they never print, they report JSON lines."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import random
import select
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ostoolkit.connections.clients import ClientBody, run_phases, split_windows
from ostoolkit.connections.real import wire

CONNECT_TIMEOUT_S = 10.0
SETUP_TIMEOUT_S = 120.0
# pgbench's select-only transaction: one account's balance, by random primary key, among the
# accounts table's rows (pgbench's scale 1).
TRANSACTION = "SELECT abalance FROM pgbench_accounts WHERE aid = {}"
ACCOUNTS = 100_000
# After the duration, how long in-flight transactions may take to finish (not counted).
DRAIN_TIMEOUT_S = 5.0
# Transactions are also counted per window of this length: the samples of the throughput and
# of the latency percentiles.
WINDOW_S = 0.5
WINDOW_US = round(WINDOW_S * 1e6)
# Requests each client process builds before the clock starts (random accounts, cycled).
REQUESTS = 1 << 15


@dataclass(frozen=True)
class Spec:
    """Where the load goes and what it runs."""

    protocol: str  # "pg" or "my"
    port: int
    user: str
    database: str
    duration_s: float = 0.0
    per_tx: bool = False


class Session:
    """One connection driven by socket readiness: ``state`` goes connecting -> greeting (MySQL)
    -> auth -> ready -> query -> ready ..., or ends refused (the server said no: ``error``) or
    closed."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.started_ns = time.perf_counter_ns()
        self.ready_ns = 0
        self.sent_ns = 0
        self.error: str | None = None
        self.reply: wire.PgReply | wire.MyReply = wire.PgReply()
        self.partial: wire.PgReply | wire.MyReply | None = None  # a reply still coming
        self.greeting = b""
        code = self.sock.connect_ex(("127.0.0.1", spec.port))
        if code not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(code, os.strerror(code))
        self.state = "connecting"

    def events(self) -> int:
        """What to wait for on the socket in this state."""
        return selectors.EVENT_WRITE if self.state == "connecting" else selectors.EVENT_READ

    def on_readable(self) -> bool:
        """Read what came; True when a step completed (authenticated, refused, a reply)."""
        data = self.sock.recv(65536)
        if not data:
            self.state, self.error = "closed", self.error or "the server closed the connection"
            return True
        if self.state == "greeting":
            packets, rest = wire.split_packets(self.greeting + data)
            if not packets:
                self.greeting = rest
                return False
            try:
                self.sock.sendall(
                    wire.my_handshake_response(packets[0][1], self.spec.user, self.spec.database)
                )
            except wire.WireError as err:
                self.state, self.error = "refused", str(err)
                return True
            self.state, self.reply, data = "auth", wire.MyReply(auth=True), rest
        done = self.reply.feed(data)
        if isinstance(self.reply, wire.MyReply) and self.reply.answer:
            self.sock.sendall(self.reply.answer)
            self.reply.answer = b""
        if not done:
            return False
        if self.state == "auth":
            if self.reply.error:
                self.state, self.error = "refused", self.reply.error
            else:
                self.state, self.ready_ns = "ready", time.perf_counter_ns()
            return True
        self.state, self.error = "ready", self.reply.error
        return True

    def on_ready(self, selector: selectors.BaseSelector) -> bool:
        """Its socket (in ``selector``, itself as data) is ready: advance; True when a step
        completed. Once the TCP connection is up (or failed), the handshake starts."""
        if self.state != "connecting":
            return self.on_readable()
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, f"connecting to 127.0.0.1:{self.spec.port}: {os.strerror(code)}")
        if self.spec.protocol == "pg":
            self.sock.sendall(wire.pg_startup(self.spec.user, self.spec.database))
            self.state = "auth"
        else:
            self.state = "greeting"
        selector.modify(self.sock, selectors.EVENT_READ, self)
        return False

    def send(self, request: bytes) -> None:
        """Send one transaction on a ready session."""
        self.reply = wire.PgReply() if self.spec.protocol == "pg" else wire.MyReply()
        self.state, self.error = "query", None
        self.sent_ns = time.perf_counter_ns()
        self.sock.sendall(request)

    def close(self) -> None:
        """Say goodbye if the session is idle (so the server logs no aborted connection)."""
        if self.state == "ready":
            goodbye = wire.PG_TERMINATE if self.spec.protocol == "pg" else wire.MY_COM_QUIT
            with contextlib.suppress(OSError):
                self.sock.sendall(goodbye)
        self.sock.close()


def _silent(port: int, timeout_s: float) -> TimeoutError:
    return TimeoutError(f"no answer from 127.0.0.1:{port} in {timeout_s:.0f} s")


def _drive(session: Session, timeout_s: float) -> None:
    """Wait on one session until its step ends: connected and authenticated (or refused),
    or its query answered. Raises TimeoutError when the server stays silent."""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(session.sock, session.events(), session)
        while session.state in ("connecting", "greeting", "auth", "query"):
            if not selector.select(max(deadline - time.monotonic(), 0)):
                raise _silent(session.spec.port, timeout_s)
            session.on_ready(selector)


def open_session(spec: Spec) -> Session:
    """Open and authenticate one session (ready, or refused with the server's words)."""
    session = Session(spec)
    try:
        _drive(session, CONNECT_TIMEOUT_S)
    except BaseException:
        session.close()
        raise
    return session


def execute(spec: Spec, sql: str) -> str | None:
    """Run one statement on a fresh session; its first value (or None). Raises WireError."""
    session = open_session(spec)
    try:
        if session.state != "ready":
            raise wire.WireError(session.error or "the server refused the connection")
        session.send(wire.pg_query(sql) if spec.protocol == "pg" else wire.my_query(sql))
        _drive(session, SETUP_TIMEOUT_S)
        if session.error:
            raise wire.WireError(session.error)
        return session.reply.value
    finally:
        session.close()


@dataclass
class Tally:
    """What one client process saw in its transaction phase."""

    start_ns: int
    latency_ns: list[int] = field(default_factory=list)
    ends_ns: list[int] = field(default_factory=list)  # when each transaction completed
    connect_ns: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def failed(self, error: str) -> None:
        """Count a transaction the server answered with an error."""
        self.errors += 1
        self.first_error = self.first_error or error


def _closed_loop(sessions: Sequence[Session], spec: Spec, requests: Sequence[bytes]) -> Tally:
    """One transaction in flight per session until the deadline; only those done by it count.
    The hot loop, lean so that the client does not limit the server: epoll, requests built
    beforehand, a reply recognised by its ends and parsed only otherwise."""
    done_fast = wire.pg_one_row_done if spec.protocol == "pg" else wire.my_result_done
    parser: type[wire.PgReply] | type[wire.MyReply] = (
        wire.PgReply if spec.protocol == "pg" else wire.MyReply
    )
    tally = Tally(time.perf_counter_ns())
    deadline = tally.start_ns + int(spec.duration_s * 1e9)
    cutoff = deadline + int(DRAIN_TIMEOUT_S * 1e9)
    latency, ends = tally.latency_ns, tally.ends_ns
    count, sent = len(requests), 0
    by_fd: dict[int, Session] = {}
    poller = select.epoll()
    try:
        for session in sessions:
            by_fd[session.sock.fileno()] = session
            poller.register(session.sock.fileno(), select.EPOLLIN)
            session.sent_ns = time.perf_counter_ns()
            session.sock.send(requests[sent % count])
            sent += 1
        busy = len(sessions)
        now = time.perf_counter_ns()
        while busy and now < cutoff:
            for fd, _ in poller.poll((cutoff - now) / 1e9):
                session = by_fd[fd]
                data = session.sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed a connection mid-run")
                error = None
                if session.partial is not None or not done_fast(data):
                    reply = session.partial or parser()
                    if not reply.feed(data):
                        session.partial = reply
                        continue
                    session.partial, error = None, reply.error
                now = time.perf_counter_ns()
                if now > deadline:
                    busy -= 1
                    continue
                if error:
                    tally.failed(error)
                else:
                    latency.append(now - session.sent_ns)
                    ends.append(now)
                session.sent_ns = now
                session.sock.send(requests[sent % count])
                sent += 1
            now = time.perf_counter_ns()
    finally:
        poller.close()
    return tally


def _per_transaction(count: int, spec: Spec, requests: Sequence[bytes]) -> Tally:
    """``count`` clients, each opening a new connection for every transaction (pgbench -C)."""
    sent = 0
    tally = Tally(time.perf_counter_ns())
    deadline = tally.start_ns + int(spec.duration_s * 1e9)
    with selectors.DefaultSelector() as selector:

        def begin() -> None:
            session = Session(spec)
            selector.register(session.sock, session.events(), session)

        for _ in range(count):
            begin()
        while selector.get_map():
            events = selector.select(CONNECT_TIMEOUT_S)
            if not events:
                raise _silent(spec.port, CONNECT_TIMEOUT_S)
            for key, _ in events:
                session = key.data
                if not session.on_ready(selector):
                    continue
                now = time.perf_counter_ns()
                if session.state == "ready" and session.sent_ns == 0:  # just authenticated
                    session.send(requests[sent % len(requests)])
                    sent += 1
                    continue
                selector.unregister(session.sock)
                if session.state in ("refused", "closed") or session.error:
                    tally.failed(session.error or "failed")
                elif now <= deadline:
                    tally.latency_ns.append(now - session.started_ns)
                    tally.ends_ns.append(now)
                    tally.connect_ns.append(session.ready_ns - session.started_ns)
                session.close()
                if now <= deadline:
                    begin()
    return tally


def window_latencies(reports: Sequence[dict[str, Any]], duration_s: float) -> list[list[float]]:
    """The latencies (µs) of the transactions completed in each whole WINDOW_S window of the
    duration, over every client process's report: each one's windows begin at its own start (all
    within a millisecond of each other)."""
    count = int(duration_s / WINDOW_S)
    ends = [end for report in reports for end in report["ends_us"]]
    latencies = [latency for report in reports for latency in report["latency_us"]]
    return split_windows(ends, latencies, 0, count * WINDOW_US, count)


def _client(spec: Spec, counts: Sequence[int], report_w: int, phases: Sequence[int]) -> None:
    """A client process: connect (persistent mode; in one step or several), run the
    transactions, then close."""
    rng = random.Random(os.getpid())
    query = wire.pg_query if spec.protocol == "pg" else wire.my_query
    requests = [query(TRANSACTION.format(rng.randint(1, ACCOUNTS))) for _ in range(REQUESTS)]
    sessions: list[Session] = []

    def connect(count: int) -> dict[str, Any]:
        opened: list[float | None] = []
        refusal = None
        for _ in range(0 if spec.per_tx else count):
            session = open_session(spec)
            if session.state == "ready":
                sessions.append(session)
                opened.append(round((session.ready_ns - session.started_ns) / 1e3, 1))
            else:
                refusal = refusal or session.error
                opened.append(None)
                session.close()
        return {"connect_us": opened, "refusal": refusal}

    def load() -> dict[str, Any]:
        cpu = time.process_time()
        if spec.duration_s <= 0:
            tally = Tally(0)
        elif spec.per_tx:
            tally = _per_transaction(sum(counts), spec, requests)
        else:
            tally = _closed_loop(sessions, spec, requests)
        cpu = time.process_time() - cpu  # the transactions' own, before the report is built
        return {
            "latency_us": [round(ns / 1e3, 1) for ns in tally.latency_ns],
            "connect_us": [round(ns / 1e3, 1) for ns in tally.connect_ns],
            "ends_us": [(end - tally.start_ns) // 1000 for end in tally.ends_ns],
            "errors": tally.errors,
            "first_error": tally.first_error,
            "cpu_s": cpu,
        }

    run_phases(counts, report_w, phases, connect, load)
    for session in sessions:
        session.close()


def client_body(spec: Spec) -> ClientBody:
    """The body of each client process of a real-server load (``clients.LoadRun``)."""
    return functools.partial(_client, spec)
