"""Find a DSN's server on this host: its memory is read only when the host is local, the
process listening on the port is readable and is the server itself (not a proxy in between),
and PostgreSQL's backends are that process's children."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import psutil

from ostoolkit.connections.dsn.drivers import Client, Target, fetch_one, one_line

# Process names of each server's main (listening) process, to refuse a proxy in between.
SERVER_NAMES = {
    "postgres": ("postgres", "postmaster"),
    "mysql": ("mysqld", "mariadbd"),
    "pgbouncer": ("pgbouncer",),
}


def _local_addresses() -> set[str]:
    """Every address of this host's interfaces."""
    return {
        addr.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for addr in addrs
        if addr.family in (socket.AF_INET, socket.AF_INET6)
    }


def locality(host: str) -> str | None:
    """None if ``host`` is this machine (socket, loopback, own address), else why it is not."""
    if not host or host.startswith("/") or host == "localhost":
        return None
    if "," in host:
        return f"the DSN names several hosts ({host})"
    try:
        addresses = {str(ipaddress.ip_address(host))}
    except ValueError:
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except OSError:
            return f"host {host} does not resolve here"
    local = _local_addresses()
    if all(ipaddress.ip_address(a).is_loopback or a in local for a in addresses):
        return None
    return f"host {host} is not this machine"


def _listening_pid(target: Target) -> int | None:
    """The PID listening on the DSN's TCP port (or PostgreSQL's Unix socket), if visible."""
    if target.host.startswith("/"):
        path = f"{target.host}/.s.PGSQL.{target.port}"
        for conn in psutil.net_connections(kind="unix"):
            if conn.pid and str(conn.laddr) == path:  # a Unix socket's laddr is its path
                return conn.pid
        return None
    for conn in psutil.net_connections(kind="tcp"):
        port = getattr(conn.laddr, "port", None)  # an empty tuple when it has no address
        if conn.status == psutil.CONN_LISTEN and conn.pid and port == target.port:
            return conn.pid
    return None


def locate_server(target: Target) -> tuple[int | None, str | None]:
    """The server's main PID on this host, or None and why its memory cannot be read."""
    reason = locality(target.host)
    if reason:
        return None, reason
    pid = _listening_pid(target)
    if pid is None:
        return None, (
            f"no process visible to us listens on port {target.port} "
            "(another user's server needs root, or it runs in a container)"
        )
    try:
        name = psutil.Process(pid).name()
    except psutil.Error as err:
        return None, f"pid {pid} cannot be read: {one_line(err)}"
    if name not in SERVER_NAMES[target.kind]:
        return None, f"port {target.port} is held by {name} (pid {pid}), not the server itself"
    return pid, None


def check_backends(clients: Sequence[Client], server_pid: int) -> bool:
    """True if every PostgreSQL backend (pg_backend_pid()) is a child of the server found."""
    for client in clients:
        try:
            if psutil.Process(fetch_one(client, "SELECT pg_backend_pid()")[0]).ppid() != server_pid:
                return False
        except psutil.Error:
            return False
    return True
