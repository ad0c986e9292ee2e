"""The built-in servers' line protocol, and the small fixed work each query does.

A server greets each new connection with ``+``; the client then sends ``Q`` lines and gets
one ``R`` line back per query. The work per query is fixed and small, so the server's model
(process, thread or pooled), not the work, decides the figures.
"""

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
