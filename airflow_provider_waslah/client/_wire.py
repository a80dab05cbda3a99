"""HTTP/1.1 on the wire, sans I/O: a request's bytes, and a response parsed as its bytes arrive.

The keep-alive pools of ``_http.py`` use this on sockets and asyncio streams alike. Responses
are parsed by ``httptools`` (llhttp, the parser of Node.js, in C), which every Airflow 3 install
already has (FastAPI's standard extra brings uvicorn's). It replaced h11, whose pure-Python
state machine was a quarter of the async client's CPU per request; answers become the engine's
:class:`Response` directly, without an ``httpx.Response`` in between (benchmarks/README.md).
Requests are written here too: the client sends small requests of its own making, framed by one
``Content-Length``.

Failures are httpx's exceptions, as the rest of the client expects of a transport:
``httpx.LocalProtocolError`` for a request that must not be sent (a header that could split
it), ``httpx.RemoteProtocolError`` for an answer that is not HTTP/1.1 or ends too soon.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from json import dumps
from typing import Any, NamedTuple

import httptools
import httpx

from airflow_provider_waslah.client._engine import Response

#: A response's status line and headers larger than this are refused (h11 refused 16 KiB): a
#: hostile server must not make the client buffer headers without end.
MAX_HEAD_BYTES = 64 * 1024

Origin = tuple[str, str, int]
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_HAS_BODY = frozenset({"POST", "PUT", "PATCH"})


class Timeouts(NamedTuple):
    """Seconds each step of an exchange may take (``None``: no limit)."""

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A request ready for the wire: where it goes, its bytes, and its timeouts."""

    origin: Origin
    data: bytes
    timeouts: Timeouts


def encode_json(value: Any) -> bytes:
    """A JSON body as httpx encodes one: UTF-8, compact, no NaN (``ValueError``/``TypeError`` if it cannot)."""
    return dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def origin_of(url: httpx.URL) -> Origin:
    """``(scheme, host, port)`` of ``url``; ``httpx.UnsupportedProtocol`` unless HTTP(S)."""
    if url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.")
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """``headers`` as lines of a request head, each ending in CRLF; framing headers are left out.

    A name that is not an HTTP token, or a value with CR, LF or NUL, would let the request be
    split or smuggled: ``httpx.LocalProtocolError``, and nothing is sent. The error names the
    header, never its value (which may be the API key).
    """
    lines = []
    for name, value in headers:
        if name.lower() in _FRAMING:
            continue
        if not _TOKEN.fullmatch(name) or b"\r" in value or b"\n" in value or b"\0" in value:
            raise httpx.LocalProtocolError(f"Illegal header {name!r}: not sent")
        lines.append(name + b": " + value.strip(b" \t") + b"\r\n")
    return b"".join(lines)


def request_bytes(method: str, target: bytes, head: bytes, body: bytes) -> bytes:
    """A whole request, so that headers and body leave in one write.

    ``head`` comes from :func:`header_lines`; the body is framed by ``Content-Length``.
    """
    framing = b"Content-Length: %d\r\n" % len(body) if body or method in _HAS_BODY else b""
    return b"%s %s HTTP/1.1\r\n%s%s\r\n%s" % (method.encode("ascii"), target, head, framing, body)


def _text(value: bytes) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _decoded(content: bytes, encoding: str) -> bytes:
    """``content`` without its ``Content-Encoding`` (the client asks for gzip or deflate)."""
    for coding in reversed([part.strip().lower() for part in encoding.split(",")]):
        try:
            if coding in ("gzip", "x-gzip"):
                content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
            elif coding == "deflate":
                try:
                    content = zlib.decompress(content)
                except zlib.error:  # raw deflate, without the zlib header
                    content = zlib.decompress(content, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise httpx.DecodingError(f"Cannot decode {coding} content: {exc}") from None
    return content


class ResponseReader:
    """One response, parsed from the bytes fed to it; :meth:`feed` says when it is complete.

    Informational (1xx) answers before the response are skipped. The body may be framed by
    ``Content-Length``, chunks, or the end of the connection (``feed(b"")`` is the end).
    """

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.complete = False
        #: Whether the connection may carry the next request once this answer is complete.
        self.keep_alive = False
        self._head_bytes = 0
        self._in_head = True
        self._ends_with_connection = False
        #: Bytes came after the complete answer (they are parsed, and ignored).
        self._after_answer = False

    # httptools' callbacks
    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the answer: the connection is not in a state to reuse
            self._after_answer = True
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._after_answer:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._after_answer:
            return
        self._in_head = False
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        framed = any(name.lower() in _FRAMING for name, _ in self.headers)
        self._ends_with_connection = not framed and not self.keep_alive and self.status >= 200

    def on_body(self, body: bytes) -> None:
        if not self._after_answer:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.status < 200 and self.status != 101:  # 100 Continue, 103 Early Hints: not the answer
            self.headers, self.chunks, self._in_head, self._head_bytes = [], [], True, 0
            return
        self.complete = True

    def feed(self, data: bytes) -> bool:
        """Parse ``data`` (``b""``: the server closed the connection); ``True`` once complete."""
        if not data:
            if not self.complete and not self._in_head and self._ends_with_connection:
                self.complete = True  # a body that ends with the connection has ended
            if not self.complete:
                raise httpx.RemoteProtocolError("Server disconnected without sending a complete response.")
            self.keep_alive = False
            return True
        if self._in_head and self._head_bytes + len(data) > MAX_HEAD_BYTES:
            # Parse up to the limit: the head must end within it (the rest may be body).
            room = MAX_HEAD_BYTES - self._head_bytes
            self._parse(data[:room])
            if self._in_head:
                raise httpx.RemoteProtocolError(f"Response headers larger than {MAX_HEAD_BYTES} bytes.")
            data = data[room:]
        elif self._in_head:
            self._head_bytes += len(data)
        self._parse(data)
        return self.complete

    def _parse(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise httpx.RemoteProtocolError("Server switched protocols.") from None
        except httptools.HttpParserError as exc:
            if not self.complete:
                raise httpx.RemoteProtocolError(f"Invalid HTTP response: {exc}") from None
            self.keep_alive = False  # junk after a complete answer: use the answer, not the connection

    def response(self) -> Response:
        """The complete answer: header names in lower case, repeated headers joined by commas."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in self.headers:
            name, value = _text(raw_name).lower(), _text(raw_value)
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        content = b"".join(self.chunks)
        encoding = headers.get("content-encoding")
        return Response(self.status, headers, _decoded(content, encoding) if encoding else content)
