"""Just enough of PostgreSQL's and MySQL's wire protocols to load a throwaway server, whose work
per query the drivers' Python would cost several times over: trust start-up, a simple query, a
parser telling a complete reply and an error (docs/method.md, "connections --real")."""

from __future__ import annotations

import struct
from dataclasses import dataclass

PG_PROTOCOL = 196608  # 3.0
PG_TERMINATE = b"X\x00\x00\x00\x04"
MY_COM_QUERY = 0x03
MY_COM_QUIT = b"\x01\x00\x00\x00\x01"
# CLIENT_LONG_PASSWORD | CLIENT_CONNECT_WITH_DB | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS
# | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
MY_CAPABILITIES = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000
MY_MAX_PACKET = 1 << 24
MY_UTF8 = 33
MY_NATIVE_AUTH = b"mysql_native_password"
# A MySQL EOF packet starts with 0xfe and is shorter than 9 bytes (else it is a row).
MY_EOF_MAX = 9


class WireError(Exception):
    """The server said no (its own message), or spoke something this client cannot."""


def pg_startup(user: str, database: str) -> bytes:
    """The StartupMessage that opens a PostgreSQL session."""
    body = struct.pack("!i", PG_PROTOCOL)
    for key, value in (("user", user), ("database", database), ("application_name", "ostoolkit")):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def pg_query(sql: str) -> bytes:
    """A simple-protocol Query message."""
    text = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(text) + 4) + text


def _pg_error_fields(body: bytes) -> dict[bytes, str]:
    """An ErrorResponse's fields by their code byte: S severity, M message, C SQL state."""
    return {part[:1]: part[1:].decode(errors="replace") for part in body.split(b"\0") if part}


@dataclass
class PgReply:
    """Reads one PostgreSQL reply (start-up or query) up to its ReadyForQuery."""

    buffer: bytes = b""
    error: str | None = None
    value: str | None = None  # the first column of the first row, if any
    rows: int = 0  # 1 once the first row came (its value may be NULL)

    def feed(self, data: bytes) -> bool:
        """Take bytes from the socket; True once the reply is complete (``error`` if it failed).
        Raises WireError for an authentication request other than trust's AuthenticationOk."""
        self.buffer += data
        while len(self.buffer) >= 5:
            kind = self.buffer[:1]
            (length,) = struct.unpack_from("!i", self.buffer, 1)
            if len(self.buffer) < 1 + length:
                return False
            body, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            if kind == b"E":
                fields = _pg_error_fields(body)
                severity = fields.get(b"S", "ERROR")
                self.error = f"{severity}: {fields.get(b'M', 'unknown error')}"
                if severity in ("FATAL", "PANIC"):
                    return True  # the server closes the connection after it
            elif kind == b"R" and struct.unpack_from("!i", body)[0] != 0:
                raise WireError("the server asks for a password: only trust auth is supported")
            elif kind == b"Z":
                return True
            elif kind == b"D" and not self.rows:
                self.rows = 1
                (size,) = struct.unpack_from("!i", body, 2)  # after the column count
                self.value = body[6 : 6 + size].decode(errors="replace") if size >= 0 else None
        return False


# How a one-row SELECT's reply ends: CommandComplete "SELECT 1", then ReadyForQuery (idle).
PG_ONE_ROW_END = b"C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I"


def pg_one_row_done(data: bytes) -> bool:
    """The load's fast path: ``data`` is a whole error-free one-row reply (RowDescription
    first, CommandComplete "SELECT 1" and ReadyForQuery last). Anything else goes to PgReply."""
    return data[:1] == b"T" and data.endswith(PG_ONE_ROW_END)


def my_result_done(data: bytes) -> bool:
    """The load's fast path: ``data`` is exactly one whole result set with no error (its
    packets hopped by their lengths, two EOF packets). Anything else goes to MyReply."""
    pos, eofs, end = 0, 0, len(data)
    while pos + 4 < end:
        length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        head = data[pos + 4]
        if head == 0xFF or (pos == 0 and head in (0x00, 0xFE)):
            return False
        pos += 4 + length
        if head == 0xFE and length < MY_EOF_MAX:
            eofs += 1
            if eofs == 2:
                return pos == end
    return False


def my_packet(payload: bytes, sequence: int = 0) -> bytes:
    """One MySQL packet: 3-byte length, sequence number, payload."""
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


def my_query(sql: str) -> bytes:
    """A COM_QUERY packet."""
    return my_packet(bytes([MY_COM_QUERY]) + sql.encode())


def my_error_text(payload: bytes) -> str:
    """An ERR packet as ``(code) message``."""
    (code,) = struct.unpack_from("<H", payload, 1)
    message = payload[3:]
    if message.startswith(b"#"):
        message = message[6:]  # '#' and the 5-character SQL state
    return f"({code}) {message.decode(errors='replace')}"


def my_handshake_response(greeting: bytes, user: str, database: str) -> bytes:
    """The HandshakeResponse41 to a server's greeting, with an empty password. Raises WireError
    for an error packet (too many connections comes in place of the greeting) or not protocol 10."""
    if greeting[:1] == b"\xff":
        raise WireError(my_error_text(greeting))
    if greeting[:1] != b"\x0a":
        raise WireError(f"not a MySQL protocol 10 greeting (first byte {greeting[:1]!r})")
    head = struct.pack("<IIB23x", MY_CAPABILITIES, MY_MAX_PACKET, MY_UTF8)
    body = user.encode() + b"\0" + b"\0" + database.encode() + b"\0" + MY_NATIVE_AUTH + b"\0"
    return my_packet(head + body, 1)


def split_packets(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete MySQL packets in ``buffer`` as (sequence, payload), and the rest."""
    packets = []
    while len(buffer) >= 4:
        length = buffer[0] | buffer[1] << 8 | buffer[2] << 16
        if len(buffer) < 4 + length:
            break
        packets.append((buffer[3], buffer[4 : 4 + length]))
        buffer = buffer[4 + length :]
    return packets, buffer


@dataclass
class MyReply:
    """Reads one MySQL reply: an OK or ERR packet, or a whole text result set; an ``auth`` reply
    may be an AuthSwitchRequest to mysql_native_password, answered (no password) in ``answer``."""

    auth: bool = False
    buffer: bytes = b""
    error: str | None = None
    columns: int = -1  # -1: the first packet is still to come
    eofs: int = 0
    answer: bytes = b""
    value: str | None = None  # the first column of the first row, if any
    rows: int = 0  # 1 once the first row came (its value may be NULL)

    def feed(self, data: bytes) -> bool:
        """Take bytes from the socket; True once the reply is complete (``error`` if it failed)."""
        packets, self.buffer = split_packets(self.buffer + data)
        for sequence, payload in packets:
            first = payload[:1]
            if first == b"\xff":
                self.error = my_error_text(payload)
                return True
            if self.columns < 0:
                if first == b"\x00":
                    return True
                if self.auth and first == b"\xfe":
                    if not payload[1:].startswith(MY_NATIVE_AUTH):
                        raise WireError(
                            "the server asks for an authentication plugin other "
                            "than mysql_native_password with no password"
                        )
                    self.answer = my_packet(b"", sequence + 1)
                    continue
                self.columns = payload[0]  # a length-encoded integer; < 251 columns here
            elif first == b"\xfe" and len(payload) < MY_EOF_MAX:
                self.eofs += 1
                if self.eofs == 2:
                    return True
            elif self.eofs == 1 and not self.rows:
                self.rows = 1
                if payload[0] < 251:  # 0xfb is NULL; longer values are not read here
                    self.value = payload[1 : 1 + payload[0]].decode(errors="replace")
        return False
