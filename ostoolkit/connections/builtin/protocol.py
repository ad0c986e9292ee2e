"""The built-in servers' line protocol (a ``+`` greeting, then an ``R`` line per ``Q`` line)
and each query's fixed, small work, so that the server's model, not the work, decides the
figures."""

from __future__ import annotations

import hashlib

GREETING = b"+\n"
QUERY = b"Q\n"
REPLY = b"R\n"
# Rounds of SHA-256 over a short payload per query: a few microseconds of real CPU work.
WORK_ROUNDS = 8
PAYLOAD = b"ostoolkit" * 8


def do_work() -> None:
    """The fixed work one query costs the server."""
    digest = PAYLOAD
    for _ in range(WORK_ROUNDS):
        digest = hashlib.sha256(digest).digest()
