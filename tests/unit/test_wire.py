"""The load's wire protocols against server replies built by hand from the protocol documents.

PostgreSQL 3.0: a message is a type byte and a 4-byte big-endian length that counts itself
and the body, not the type byte. MySQL: a packet is a 3-byte little-endian payload length, a
sequence number, then the payload. Nothing here opens a socket.
"""

import struct

import pytest

from ostoolkit.connections.real.wire import (
    MY_CAPABILITIES,
    MY_NATIVE_AUTH,
    MyReply,
    PgReply,
    WireError,
    my_handshake_response,
    my_packet,
    my_query,
    my_result_done,
    pg_one_row_done,
    pg_query,
    pg_startup,
    split_packets,
)

# -- PostgreSQL --------------------------------------------------------------------------------


def pg(kind: bytes, body: bytes = b"") -> bytes:
    """One backend message: type byte, length (itself included), body."""
    return kind + struct.pack("!i", len(body) + 4) + body


def data_row(*values: bytes | None) -> bytes:
    """A DataRow: column count, then each column as a length (-1 for NULL) and its bytes."""
    body = struct.pack("!h", len(values))
    for value in values:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return pg(b"D", body)


def error_response(severity: str, code: str, message: str) -> bytes:
    """An ErrorResponse: fields as a code byte and a NUL-terminated string, then a NUL."""
    fields = (
        b"S" + severity.encode(),
        b"V" + severity.encode(),
        b"C" + code.encode(),
        b"M" + message.encode(),
    )
    return pg(b"E", b"".join(f + b"\0" for f in fields) + b"\0")


READY = pg(b"Z", b"I")
AUTH_OK = pg(b"R", struct.pack("!i", 0))
STARTUP_REPLY = (
    AUTH_OK
    + pg(b"S", b"server_version\x0016.3\x00")
    + pg(b"K", struct.pack("!ii", 4242, 99))
    + READY
)
ROW_DESCRIPTION = pg(
    b"T", struct.pack("!h", 1) + b"abalance\0" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0)
)
QUERY_REPLY = ROW_DESCRIPTION + data_row(b"4711") + pg(b"C", b"SELECT 1\0") + READY


def test_pg_startup_length_counts_itself_and_the_body():
    message = pg_startup("ostoolkit", "postgres")
    (length, protocol) = struct.unpack_from("!ii", message)
    assert length == len(message)
    assert protocol == 3 << 16
    assert message.endswith(b"\0\0")  # the last value's NUL, then the list's
    pairs = message[8:-1].split(b"\0")[:-1]
    assert dict(zip(pairs[::2], pairs[1::2], strict=True)) == {
        b"user": b"ostoolkit",
        b"database": b"postgres",
        b"application_name": b"ostoolkit",
    }


def test_pg_query_length_leaves_out_the_type_byte():
    message = pg_query("SELECT 1")
    assert message[:1] == b"Q"
    assert struct.unpack_from("!i", message, 1)[0] == len(message) - 1 == 4 + len("SELECT 1") + 1
    assert message[5:] == b"SELECT 1\0"


def test_pg_reply_completes_on_ready_for_query_only():
    reply = PgReply()
    assert reply.feed(STARTUP_REPLY[: -len(READY)]) is False
    assert reply.feed(READY) is True
    assert reply.error is None
    assert reply.value is None


def test_pg_reply_waits_for_a_message_cut_anywhere():
    reply = PgReply()
    cut = len(ROW_DESCRIPTION) + 3  # inside the DataRow's length
    assert reply.feed(QUERY_REPLY[:cut]) is False
    assert reply.feed(QUERY_REPLY[cut:-1]) is False  # ReadyForQuery's status byte still to come
    assert reply.feed(QUERY_REPLY[-1:]) is True
    assert reply.value == "4711"


def test_pg_reply_fed_byte_by_byte_completes_at_the_last_byte():
    reply = PgReply()
    done = [reply.feed(QUERY_REPLY[i : i + 1]) for i in range(len(QUERY_REPLY))]
    assert done == [False] * (len(QUERY_REPLY) - 1) + [True]
    assert reply.value == "4711"
    assert reply.error is None


def test_pg_reply_keeps_the_first_rows_first_value():
    reply = PgReply()
    rows = data_row(b"first", b"other") + data_row(b"second", b"x")
    assert reply.feed(ROW_DESCRIPTION + rows + pg(b"C", b"SELECT 2\0") + READY) is True
    assert reply.value == "first"


def test_pg_reply_records_an_error_and_waits_for_ready_for_query():
    reply = PgReply()
    error = error_response("ERROR", "42P01", 'relation "nope" does not exist')
    assert reply.feed(error) is False
    assert reply.error == 'ERROR: relation "nope" does not exist'
    assert reply.feed(READY) is True
    assert reply.error == 'ERROR: relation "nope" does not exist'


def test_pg_reply_completes_at_once_on_fatal():
    reply = PgReply()
    fatal = error_response("FATAL", "53300", "sorry, too many clients already")
    assert reply.feed(fatal) is True  # no ReadyForQuery follows: the server closes
    assert reply.error == "FATAL: sorry, too many clients already"


def test_pg_reply_refuses_a_password_request():
    md5 = pg(b"R", struct.pack("!i", 5) + b"salt")  # AuthenticationMD5Password
    with pytest.raises(WireError, match="password"):
        PgReply().feed(md5)


# -- MySQL -------------------------------------------------------------------------------------

OK = b"\x00\x00\x00\x02\x00\x00\x00"  # OK: affected rows, insert id, status, warnings
EOF = b"\xfe\x00\x00\x02\x00"  # EOF: warnings, status
COLUMN = b"\x03def\x00\x00\x00\x01v\x00\x0c\x21\x00\x0b\x00\x00\x00\xfd\x01\x00\x1f\x00\x00"


def lenenc(value: bytes) -> bytes:
    """A length-encoded string shorter than 251 bytes."""
    return bytes([len(value)]) + value


def err(code: int, message: str, state: str | None = None) -> bytes:
    """An ERR packet's payload, with the '#' and SQL state or without them (pre-4.1, greeting)."""
    marker = b"#" + state.encode() if state else b""
    return b"\xff" + struct.pack("<H", code) + marker + message.encode()


def result_set(*rows: bytes) -> bytes:
    """A one-column text result set: count, column, EOF, rows, EOF; sequence from 1."""
    payloads = [b"\x01", COLUMN, EOF, *rows, EOF]
    return b"".join(my_packet(p, i + 1) for i, p in enumerate(payloads))


def test_my_packet_and_query_framing():
    packet = my_query("SELECT 1")
    assert packet[:3] == struct.pack("<I", 9)[:3]
    assert packet[3] == 0
    assert packet[4:] == b"\x03SELECT 1"
    big = my_packet(b"x" * 70000, 5)
    assert big[:4] == bytes([70000 & 0xFF, (70000 >> 8) & 0xFF, 70000 >> 16, 5])


def test_my_reply_ok_packet_completes():
    reply = MyReply()
    assert reply.feed(my_packet(OK, 1)) is True
    assert reply.error is None
    assert reply.value is None


@pytest.mark.parametrize("state", ["08004", None])
def test_my_reply_err_packet_gives_code_and_message(state):
    reply = MyReply()
    assert reply.feed(my_packet(err(1040, "Too many connections", state), 1)) is True
    assert reply.error == "(1040) Too many connections"


def test_my_reply_result_set_completes_at_its_second_eof_only():
    whole = result_set(lenenc(b"4711"), lenenc(b"42"))
    last_eof = len(whole) - len(my_packet(EOF))
    reply = MyReply()
    assert reply.feed(whole[:last_eof]) is False  # first EOF and both rows are in
    assert reply.eofs == 1
    assert reply.feed(whole[last_eof:-1]) is False
    assert reply.feed(whole[-1:]) is True
    assert reply.value == "4711"
    assert reply.error is None


def test_my_reply_fed_byte_by_byte_completes_at_the_last_byte():
    whole = result_set(lenenc(b"7"))
    reply = MyReply()
    done = [reply.feed(whole[i : i + 1]) for i in range(len(whole))]
    assert done == [False] * (len(whole) - 1) + [True]
    assert reply.value == "7"


def test_my_reply_row_starting_with_zero_is_not_an_ok_packet():
    empty_then_more = b"\x00" + lenenc(b"x")  # first column '' (length 0), second 'x'
    whole = result_set(empty_then_more, lenenc(b"later"))
    reply = MyReply()
    head = len(whole) - len(my_packet(lenenc(b"later"))) - len(my_packet(EOF))
    assert reply.feed(whole[:head]) is False  # the 0x00 row did not end the reply
    assert reply.value == ""
    assert reply.feed(whole[head:]) is True
    assert reply.value == ""  # the first row's, not the second's


def test_my_reply_auth_switch_to_native_password_answers_with_an_empty_packet():
    reply = MyReply(auth=True)
    switch = b"\xfe" + MY_NATIVE_AUTH + b"\0" + b"s" * 20 + b"\0"
    assert reply.feed(my_packet(switch, 2)) is False
    assert reply.answer == b"\x00\x00\x00\x03"  # empty payload, sequence 2 + 1
    assert reply.feed(my_packet(OK, 4)) is True
    assert reply.error is None


def test_my_reply_auth_switch_to_another_plugin_is_refused():
    switch = b"\xfecaching_sha2_password\0" + b"s" * 20 + b"\0"
    with pytest.raises(WireError, match="mysql_native_password"):
        MyReply(auth=True).feed(my_packet(switch, 2))


def greeting(protocol: int = 10) -> bytes:
    """A HandshakeV10 payload as MariaDB sends it (the fields after the version matter not)."""
    return bytes([protocol]) + b"10.11.6-MariaDB\0" + struct.pack("<I", 7) + b"s" * 8 + b"\0"


def test_my_handshake_response_for_a_greeting():
    packet = my_handshake_response(greeting(), "ostoolkit", "ostoolkit")
    packets, rest = split_packets(packet)
    assert rest == b""
    [(sequence, payload)] = packets
    assert sequence == 1
    assert struct.unpack_from("<I", payload)[0] == MY_CAPABILITIES
    assert payload[32:] == b"ostoolkit\0" + b"\0" + b"ostoolkit\0" + MY_NATIVE_AUTH + b"\0"


def test_my_handshake_response_refuses_an_err_greeting():
    with pytest.raises(WireError) as caught:
        my_handshake_response(err(1040, "Too many connections"), "ostoolkit", "ostoolkit")
    assert str(caught.value) == "(1040) Too many connections"


def test_my_handshake_response_refuses_another_protocol():
    with pytest.raises(WireError, match="protocol 10"):
        my_handshake_response(greeting(9), "ostoolkit", "ostoolkit")


def test_split_packets_keeps_incomplete_tails():
    one, two = my_packet(b"abc", 1), my_packet(b"defgh", 2)
    assert split_packets(one + two) == ([(1, b"abc"), (2, b"defgh")], b"")
    assert split_packets(one + two[:-1]) == ([(1, b"abc")], two[:-1])
    assert split_packets(one + two[:2]) == ([(1, b"abc")], two[:2])  # a header cut short
    assert split_packets(b"") == ([], b"")
    assert split_packets(my_packet(b"", 3)) == ([(3, b"")], b"")


def test_pg_reply_first_value_stays_null_when_the_first_row_has_null():
    reply = PgReply()
    rows = data_row(None) + data_row(b"second")
    assert reply.feed(ROW_DESCRIPTION + rows + pg(b"C", b"SELECT 2\0") + READY) is True
    assert reply.value is None


def test_my_reply_first_value_stays_null_when_the_first_row_has_null():
    reply = MyReply()
    assert reply.feed(result_set(b"\xfb", lenenc(b"second"))) is True
    assert reply.value is None


# -- the load's fast paths: a whole error-free reply is told by its ends ------------------


def test_pg_fast_path_takes_a_whole_one_row_reply_only():
    assert pg_one_row_done(QUERY_REPLY)
    assert not pg_one_row_done(QUERY_REPLY[:-1])  # cut: the parser must finish it
    assert not pg_one_row_done(QUERY_REPLY[1:])
    failed = ROW_DESCRIPTION + error_response("ERROR", "22012", "division by zero") + READY
    assert not pg_one_row_done(failed)
    no_rows = ROW_DESCRIPTION + pg(b"C", b"SELECT 0\0") + READY
    assert not pg_one_row_done(no_rows)  # left to the parser, which takes it
    reply = PgReply()
    assert reply.feed(no_rows)
    assert reply.error is None


def test_my_fast_path_takes_a_whole_result_set_only():
    whole = result_set(lenenc(b"4711"))
    assert my_result_done(whole)
    assert not my_result_done(whole[:-1])
    first_eof = whole.index(my_packet(EOF, 3)) + len(my_packet(EOF, 3))
    assert not my_result_done(whole[:first_eof])  # cut right after the column's EOF
    assert not my_result_done(my_packet(err(1064, "syntax", "42000"), 1))
    assert not my_result_done(my_packet(b"\x00\x00\x00\x02\x00\x00\x00", 1))  # an OK
    assert not my_result_done(whole + my_packet(b"\x01", 1))  # more than one reply
