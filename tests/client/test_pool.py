"""The client's own keep-alive pools (``client/_http.py``) over real sockets on 127.0.0.1.

A small HTTP/1.1 server in a thread answers as each test scripts it (keep alive, close after
answering, cut the body short, answer late), and counts the connections it accepted, so each
test sees what the pool did on the wire. The rules the engine applies to each failure are the
ones of ``test_retries.py``; here the point is that real socket events become those failures.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.client import AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client._http import AsyncPool, SyncPool
from airflow_provider_waslah.client.calls import Call

KEY = "wsl_pool_test_0123456789"
OK = b'{"ok": true, "data": {"n": %d}}'


def _answer(number: int, *, close: bool = False) -> bytes:
    body = OK % number
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


#: What the server does with request number N (counted over all connections): the bytes to
#: send, whether to close the connection after them, and how long to wait before sending.
Script = Callable[[int, bytes], tuple[bytes, bool, float]]


class RawServer:
    """An HTTP/1.1 server that answers by a script and records request lines and connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.request_lines: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                buffer = rest[length:]
                with self._lock:
                    number = len(self.request_lines)
                    self.request_lines.append(head.split(b"\r\n")[0].decode())
                answer, close, delay = self.script(number, head)
                time.sleep(delay)
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                if close:
                    return

    def close(self) -> None:
        self._stop = True
        self._sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _ping(is_send: bool = False) -> Call[Any]:
    if is_send:
        return Call("POST", "/messages/text", lambda data: data, json={"text": "Halo"}, is_send=True)
    return Call("GET", "/me", lambda data: data)


def _calls(base_url: str, calls: list[Call[Any]], *, mode: str, pause: float = 0.0, **options: Any) -> list[Any]:
    """Run ``calls`` one after another through a sync or async client; results or raised errors."""
    options = {"api_key": KEY, "base_url": base_url, "rate_limit_per_minute": 10**6, "max_retries": 1, **options}
    results: list[Any] = []
    if mode == "sync":
        with WaslahClient(**options) as client:
            assert isinstance(client._http._pool, SyncPool)
            for call in calls:
                try:
                    results.append(client.call(call))
                except e.WaslahError as error:
                    results.append(error)
                time.sleep(pause)
        return results

    async def run() -> None:
        async with AsyncWaslahClient(**options) as client:
            assert isinstance(client._http._pool, AsyncPool)
            for call in calls:
                try:
                    results.append(await client.call(call))
                except e.WaslahError as error:
                    results.append(error)
                await asyncio.sleep(pause)

    asyncio.run(run())
    return results


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
def test_one_connection_carries_every_request(serve: Callable[[Script], RawServer], mode: str) -> None:
    server = serve(lambda n, head: (_answer(n), False, 0.0))
    results = _calls(server.base_url, [_ping(), _ping(True), _ping()], mode=mode)
    assert results == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert server.connections == 1
    assert server.request_lines == [
        "GET /api/v1/me HTTP/1.1",
        "POST /api/v1/messages/text HTTP/1.1",
        "GET /api/v1/me HTTP/1.1",
    ]


@MODES
@pytest.mark.parametrize("close_header", [True, False], ids=["connection-close", "closed-silently"])
def test_a_connection_the_server_closed_is_not_reused_for_a_send(
    serve: Callable[[Script], RawServer], mode: str, close_header: bool
) -> None:
    # The server closes each connection after one answer. Sending the next request on it would
    # lose that request's answer: for a send, "outcome unknown". The pool must see the close.
    server = serve(lambda n, head: (_answer(n, close=close_header), True, 0.0))
    results = _calls(server.base_url, [_ping(True), _ping(True), _ping(True)], mode=mode, pause=0.1)
    assert results == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert server.connections == 3


@MODES
def test_an_answer_cut_short_makes_a_send_unknown_and_a_read_retried(
    serve: Callable[[Script], RawServer], mode: str
) -> None:
    def script(n: int, head: bytes) -> tuple[bytes, bool, float]:
        if n in (0, 1):  # the headers promise 100 bytes, 5 come, then the connection closes
            return b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"ok"', True, 0.0
        return _answer(n), False, 0.0

    server = serve(script)
    sent, read = _calls(server.base_url, [_ping(True), _ping()], mode=mode)
    assert isinstance(sent, e.WaslahSendOutcomeUnknownError)
    assert "RemoteProtocolError" in str(sent)
    assert read == {"n": 2}  # request 1 was cut short too, and retried on a new connection
    assert server.connections == 3


@MODES
def test_no_answer_in_time_is_a_timeout(serve: Callable[[Script], RawServer], mode: str) -> None:
    server = serve(lambda n, head: (_answer(n), False, 1.0))
    sent, read = _calls(server.base_url, [_ping(True), _ping()], mode=mode, timeout=0.2, max_retries=0)
    assert isinstance(sent, e.WaslahSendOutcomeUnknownError)
    assert "ReadTimeout" in str(sent)
    assert isinstance(read, e.WaslahTimeoutError)


@MODES
def test_nothing_listening_is_a_connection_error_and_a_send_may_be_retried(mode: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [result] = _calls(f"http://127.0.0.1:{port}/api/v1", [_ping(True)], mode=mode)
    assert isinstance(result, e.WaslahConnectionError)  # retried once (never sent), then raised
    assert f"127.0.0.1:{port}" in str(result)
    assert KEY not in str(result)


def test_a_cancelled_exchange_does_not_leave_its_answer_for_the_next(serve: Callable[[Script], RawServer]) -> None:
    # A trigger cancelled while waiting for its answer: if its connection went back to the pool,
    # the next request on it would read the cancelled one's late answer as its own.
    server = serve(lambda n, head: (_answer(n), False, 0.5 if n == 0 else 0.0))

    async def run() -> Any:
        async with AsyncWaslahClient(api_key=KEY, base_url=server.base_url, rate_limit_per_minute=10**6) as client:
            first = asyncio.create_task(client.call(_ping()))
            await asyncio.sleep(0.1)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            return await client.call(_ping())

    assert asyncio.run(run()) == {"n": 1}
    assert server.connections == 2


def test_an_environment_proxy_is_used_through_httpx(
    serve: Callable[[Script], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve(lambda n, head: (_answer(n), False, 0.0))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with WaslahClient(api_key=KEY, base_url="http://waslah.invalid/api/v1", rate_limit_per_minute=10**6) as client:
        assert isinstance(client._http._transport, httpx.HTTPTransport)
        assert client.call(_ping()) == {"n": 0}
    assert proxy.request_lines == ["GET http://waslah.invalid/api/v1/me HTTP/1.1"]  # absolute form: a proxy request
    monkeypatch.setenv("NO_PROXY", "waslah.invalid")
    with WaslahClient(api_key=KEY, base_url="http://waslah.invalid/api/v1", rate_limit_per_minute=10**6) as client:
        assert isinstance(client._http._pool, SyncPool)
