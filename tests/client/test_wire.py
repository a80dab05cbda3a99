"""HTTP/1.1 on the wire (``client/_wire.py``): the requests the pools write, the answers they parse.

The parser is llhttp (httptools); h11, httpx's own HTTP/1.1 library and the parser the pools used
before, is the oracle: any valid answer, cut into any pieces, must give the status, headers,
body and keep-alive verdict h11 gives. Hostile answers (oversized heads, smuggling attempts,
protocol switches, bodies cut short) must fail with httpx's ``RemoteProtocolError``, which the
engine already turns into "retry a read, never a send".
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import h11
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.client._http import _Requests
from airflow_provider_waslah.client._wire import (
    MAX_HEAD_BYTES,
    ResponseReader,
    header_lines,
    request_bytes,
)
from airflow_provider_waslah.client.calls import Call

KEY = "wsl_wire_test_0123456789"


def _read(pieces: list[bytes], *, eof: bool = False) -> ResponseReader:
    reader = ResponseReader()
    for piece in pieces:
        if reader.feed(piece):
            return reader
    if eof:
        reader.feed(b"")
    return reader


def _oracle(raw: bytes, *, eof: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """What h11 makes of ``raw`` as the answer to a GET: status, headers, body, connection reusable."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(raw)
    if eof:
        connection.receive_data(b"")
    status, headers, body = 0, [], b""
    while True:
        event = connection.next_event()
        if isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers.raw_items())
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            break
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            raise AssertionError(f"h11 found no complete answer: {event}")
    return status, headers, body, connection.their_state is h11.DONE and connection.our_state is h11.DONE


_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
_names = st.text(_TOKEN_CHARS, min_size=1, max_size=20).filter(
    lambda name: name.lower() not in {"content-length", "transfer-encoding", "connection", "content-encoding"}
)
_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@st.composite
def _answers(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A valid HTTP/1.x answer and whether it ends with the connection (read until EOF)."""
    status = draw(st.sampled_from([200, 201, 202, 204, 301, 400, 401, 404, 413, 422, 429, 500, 502, 503]))
    headers = draw(st.lists(st.tuples(_names, _values), max_size=6))
    body = b"" if status == 204 else draw(st.binary(max_size=300))
    framing = "none" if status == 204 else draw(st.sampled_from(["length", "chunked", "eof"]))
    close = framing == "eof" or draw(st.booleans())
    informational = draw(st.booleans())
    head = [f"HTTP/1.1 {status} Whatever"] + [f"{name}: {value}" for name, value in headers]
    if close:
        head.append("Connection: close")
    if framing == "length":
        head.append(f"Content-Length: {len(body)}")
    elif framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        sizes = draw(st.lists(st.integers(1, 50), max_size=8))
        chunks, rest = [], body
        for size in sizes:
            if rest:
                chunks.append(rest[:size])
                rest = rest[size:]
        if rest:
            chunks.append(rest)
        body_bytes = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    raw = ("\r\n".join(head) + "\r\n\r\n").encode()
    raw += body_bytes if framing == "chunked" else body
    if informational:
        raw = b"HTTP/1.1 100 Continue\r\n\r\n" + raw
    return raw, framing == "eof"


@settings(max_examples=300, deadline=None)
@given(answer=_answers(), data=st.data())
def test_any_valid_answer_in_any_pieces_parses_as_h11_parses_it(
    answer: tuple[bytes, bool], data: st.DataObject
) -> None:
    raw, until_eof = answer
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    pieces = [raw[start:end] for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True) if end > start]
    reader = _read(pieces, eof=until_eof)
    assert reader.complete
    status, headers, body, reusable = _oracle(raw, eof=until_eof)
    assert reader.status == status
    assert reader.headers == headers
    assert b"".join(reader.chunks) == body
    assert reader.keep_alive == reusable


def test_the_response_has_lower_case_names_and_repeated_headers_joined() -> None:
    reader = _read([b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nVia: a\r\nVIA: b\r\nContent-Length: 2\r\n\r\n{}"])
    response = reader.response()
    assert (response.status_code, response.content) == (429, b"{}")
    assert response.headers == {"retry-after": "7", "via": "a, b", "content-length": "2"}


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send it
    ],
)
def test_compressed_bodies_are_decoded(encoding: str, encode: object) -> None:
    body = b'{"ok": true, "data": [' + b"1," * 500 + b"1]}"
    packed = encode(body)  # type: ignore[operator]
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\nContent-Length: {len(packed)}\r\n\r\n".encode()
    assert _read([head + packed]).response().content == body


def test_a_body_that_does_not_decode_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError):
        _read([b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"]).response()


@pytest.mark.parametrize(
    ("pieces", "eof", "message"),
    [
        ([b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"ok"'], True, "complete response"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"], True, "complete response"),
        ([b"HTTP/1.1 200 OK\r\nContent-Le"], True, "complete response"),
        ([], True, "complete response"),
        ([b"<html>Bad gateway</html>"], False, "Invalid HTTP response"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"], False, "Invalid HTTP response"),
        (
            [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
            False,
            "Invalid HTTP response",
        ),
        ([b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\nok"], False, "Invalid HTTP response"),
        ([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"], False, "switched"),
    ],
    ids=[
        "short-body",
        "short-chunks",
        "head-cut",
        "nothing",
        "not-http",
        "two-lengths",
        "length-and-chunked",
        "folded",
        "101",
    ],
)
def test_a_broken_or_hostile_answer_is_a_remote_protocol_error(pieces: list[bytes], eof: bool, message: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match=message):
        _read(pieces, eof=eof)


@pytest.mark.parametrize("piece_size", [1, 1000, MAX_HEAD_BYTES * 2])
def test_a_head_beyond_the_limit_is_refused_however_it_arrives(piece_size: int) -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * MAX_HEAD_BYTES + b"\r\nContent-Length: 2\r\n\r\nok"
    pieces = [raw[i : i + piece_size] for i in range(0, len(raw), piece_size)]
    with pytest.raises(httpx.RemoteProtocolError, match="headers larger than"):
        _read(pieces)


def test_a_large_body_in_the_same_read_as_the_head_is_fine() -> None:
    body = b"x" * (MAX_HEAD_BYTES * 3)
    reader = _read([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body])
    assert reader.response().content == body


def test_bytes_after_a_complete_answer_keep_the_answer_but_not_the_connection() -> None:
    for extra in (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"garbage\r\n"):
        reader = _read([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + extra])
        assert reader.complete and reader.response().content == b"ok"
        assert reader.keep_alive is False


def test_http_1_0_and_connection_close_answers_end_the_connection() -> None:
    assert _read([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"]).keep_alive is False
    assert _read([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]).keep_alive is False
    assert _read([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]).keep_alive is True


def test_a_request_is_one_head_and_its_body_framed_by_content_length() -> None:
    head = header_lines([(b"Host", b"waslah.id"), (b"Authorization", f"Bearer {KEY}".encode())])
    body = b'{"text":"Halo"}'
    assert request_bytes("POST", b"/api/v1/messages/text", head, body) == (
        b"POST /api/v1/messages/text HTTP/1.1\r\nHost: waslah.id\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\nContent-Length: 15\r\n\r\n"
        + body
    )
    assert request_bytes("GET", b"/api/v1/me", head, b"").endswith(KEY.encode() + b"\r\n\r\n")
    assert request_bytes("POST", b"/x", b"", b"") == b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"


def test_framing_headers_of_the_caller_are_replaced_by_the_clients_own() -> None:
    head = header_lines([(b"Transfer-Encoding", b"chunked"), (b"content-length", b"999"), (b"Accept", b"*/*")])
    assert head == b"Accept: */*\r\n"


@given(
    name=st.binary(min_size=1, max_size=20),
    value=st.binary(max_size=40),
)
def test_a_header_that_could_split_the_request_is_never_written(name: bytes, value: bytes) -> None:
    secret_value = value + KEY.encode()
    try:
        head = header_lines([(name, secret_value)])
    except httpx.LocalProtocolError as error:
        assert KEY not in str(error)  # the value may be the API key: only the name is shown
        return
    if name.lower() in (b"content-length", b"transfer-encoding"):
        assert head == b""  # framing is the client's own
        return
    # Written: one line, a token name, no byte that ends a line or the head early.
    assert head.count(b"\r\n") == 1 and head.endswith(b"\r\n")
    written_name, _, written_value = head[:-2].partition(b": ")
    assert written_name == name and b"\n" not in written_value and b"\r" not in written_value
    assert b"\0" not in head


def _as_server_reads_it(data: bytes) -> tuple[str, str, dict[str, str], bytes]:
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    request, body = server.next_event(), b""
    assert isinstance(request, h11.Request)
    while not isinstance(event := server.next_event(), h11.EndOfMessage):
        assert isinstance(event, h11.Data)
        body += bytes(event.data)
    headers = {name.decode(): value.decode() for name, value in request.headers}
    return request.method.decode(), request.target.decode(), headers, body


@pytest.mark.parametrize(
    "call",
    [
        Call("GET", "/messages/abc?page=2", lambda data: data),
        Call("POST", "/messages/text", lambda data: data, json={"to": "0815", "text": "Halo \u00e9 \U0001f600"}),
        Call("POST", "/media/upload", lambda data: data, files={"file": ("a.png", b"\x89PNG\r\n", "image/png")}),
        Call("DELETE", "/webhooks/7", lambda data: data),
    ],
    ids=["get-with-query", "json", "upload", "delete"],
)
def test_the_pools_send_what_an_httpx_transport_is_given(call: Call[Any]) -> None:
    """The pools' bytes and the ``httpx.Request`` for other transports carry the same request."""
    requests = _Requests("http://127.0.0.1:8080/api/v1", KEY, 30.0)
    wired = requests.wire(call)
    built = requests.build(call)
    method, target, headers, body = _as_server_reads_it(wired.data)
    assert (method, target) == (built.method, built.url.raw_path.decode())
    assert wired.origin == ("http", "127.0.0.1", 8080)
    expected = {name.decode().lower(): value.decode() for name, value in built.headers.raw}
    if call.files:  # the multipart boundary is random: compare the structure, not the bytes
        assert headers["content-type"].startswith("multipart/form-data; boundary=")
        assert b'filename="a.png"' in body and b"\x89PNG\r\n" in body
        expected.pop("content-type"), headers.pop("content-type")
        expected.pop("content-length"), headers.pop("content-length")
    else:
        assert body == built.read()
    assert headers == expected
