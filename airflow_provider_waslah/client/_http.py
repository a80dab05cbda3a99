"""The one module that imports httpx: turns a :class:`Call` into an HTTP exchange and back.

Requests are ``httpx.Request`` objects sent through an httpx transport, and failures are httpx's
exceptions, so tests plug in ``httpx.MockTransport`` or ``httpx.ASGITransport``. By default the
transport is this module's keep-alive pool (:class:`SyncPool`, :class:`AsyncPool`): HTTP/1.1 with
h11 (httpx's own HTTP/1.1 parser) over plain sockets or asyncio streams. httpx's default pool
(httpcore over anyio) cost 0.4 ms (sync) to 0.9 ms (async, 20 at once) of CPU per request against
the emulator, more than the emulator's own work; these pools cost about a third of that
(benchmarks/bench_http_anchor.py). When an ``HTTP(S)_PROXY`` variable applies to the base URL,
httpx's own transport is used instead, through that proxy.

Moving to another HTTP library (httpx's successor keeps the same API) changes only this file.
"""

from __future__ import annotations

import asyncio
import functools
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

import h11
import httpx
from pydantic import SecretStr

from airflow_provider_waslah import __version__
from airflow_provider_waslah.client._engine import Outcome, Response, TransportFailure
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahInvalidInputError

USER_AGENT = f"airflow-provider-waslah/{__version__}"
#: Idle pooled connections are dropped after this long, before common servers drop them (uvicorn
#: 5 s, nginx 75 s): reusing one the server is closing at that moment loses the request's answer,
#: which for a send means "outcome unknown". Up to 100 stay pooled, enough for a batch's threads.
_KEEPALIVE_EXPIRY = 2.0
SYNC_POOL_SIZE = 100
_LIMITS = httpx.Limits(
    max_connections=SYNC_POOL_SIZE, max_keepalive_connections=SYNC_POOL_SIZE, keepalive_expiry=_KEEPALIVE_EXPIRY
)
#: Failures that prove the request never left this machine, so even a send may be retried.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

#: Connections an async client opens and keeps alive. With httpx's pool, a small pool was faster
#: (httpcore scans every connection for each queued request: with 1,000 triggers on one client,
#: 10 connections beat 20 and 100, benchmarks/bench_triggers.py); with :class:`AsyncPool`, 10 still
#: beat 20 against the emulator (20 sends at once: 4,821 vs 3,455 a second). 10 keep-alive
#: connections carry far more than any plan's per-minute budget even at 100 ms a round trip.
ASYNC_POOL_SIZE = 10

SyncTransport = httpx.BaseTransport
AsyncTransport = httpx.AsyncBaseTransport
T = TypeVar("T")
C = TypeVar("C")
Origin = tuple[str, str, int]
_READ_SIZE = 64 * 1024


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client.

    Building one loads the CA bundle (about 20 ms): done per client, a triggerer starting a few
    hundred triggers would block its event loop for seconds.
    """
    return httpx.create_ssl_context()


def _env_proxy(url: str) -> str | None:
    """The ``HTTP(S)_PROXY`` / ``ALL_PROXY`` URL that applies to ``url`` (``NO_PROXY`` honoured), if any."""
    parts = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.host):
        return None
    return proxy


class _Requests:
    """Builds the ``httpx.Request`` of a :class:`Call`: base URL, headers, timeouts."""

    #: Parsed URLs kept per path: parsing one costs more than building the rest of a request.
    _MAX_URLS = 256

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = httpx.Headers(
            {
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": USER_AGENT,
            }
        )
        self._extensions = {"timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)).as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base_url + path)
            if len(self._urls) < self._MAX_URLS:  # sends and lists repeat their paths; GET /messages/{id} do not
                self._urls[path] = url
        return url

    def build(self, call: Call[Any]) -> httpx.Request:
        """The request for ``call``; a body that cannot be encoded is bad input, reported before sending.

        Builders validate every field, so this only catches :class:`Call` objects made by hand
        (a lone surrogate, NaN, an object JSON cannot encode).
        """
        try:
            return httpx.Request(
                call.method,
                self._url(call.path),
                json=call.json,
                files=call.files,
                headers=self._headers,
                extensions=dict(self._extensions),
            )
        except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
            raise WaslahInvalidInputError(
                "body", f"cannot be encoded as JSON in UTF-8 ({type(error).__name__})"
            ) from None


def _scrub(text: str, secret: str) -> str:
    """``text`` without the API key, also in its escaped (``repr``) and byte forms."""
    for form in {secret, repr(secret)[1:-1], repr(secret.encode())[2:-1]}:
        if form:
            text = text.replace(form, "***")
    return text


def _failure(exc: httpx.HTTPError, secret: str) -> TransportFailure:
    # httpx's messages name the URL at most, but h11's "Illegal header value b'Bearer …'" quotes
    # a header: the key is scrubbed from every message, whatever the transport put in it.
    detail = _scrub(str(exc) or type(exc).__name__, secret)
    return TransportFailure(type(exc).__name__, detail, not isinstance(exc, _NEVER_SENT))


def _response(response: httpx.Response, content: bytes) -> Response:
    return Response(response.status_code, dict(response.headers.items()), content)


# ---------------------------------------------------------------- HTTP/1.1 with h11, sans I/O


def _origin(request: httpx.Request) -> Origin:
    url = request.url
    if url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.", request=request)
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _request_bytes(connection: h11.Connection, request: httpx.Request, body: bytes) -> bytes:
    """The whole request as it goes on the wire, so that headers and body leave in one write."""
    try:
        start = h11.Request(method=request.method, target=request.url.raw_path, headers=request.headers.raw)
        head = connection.send(start)
        data = connection.send(h11.Data(data=body)) if body else b""
        return (head or b"") + (data or b"") + (connection.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc), request=request) from None


class _Answer:
    """A response read off an h11 connection, event by event."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    def complete(self, connection: h11.Connection) -> bool:
        """Take every event h11 has parsed; ``True`` once the answer is complete."""
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    return False
                if event is h11.PAUSED:  # a protocol switch (101): not something Waslah answers
                    raise httpx.RemoteProtocolError("Server switched protocols.", request=self.request)
                if isinstance(event, h11.Response):
                    self.status, self.headers = event.status_code, event.headers.raw_items()
                elif isinstance(event, h11.Data):
                    self.chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    return True
                elif isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=self.request
                    )
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=self.request) from None

    def response(self) -> httpx.Response:
        return httpx.Response(
            self.status,
            headers=self.headers,
            content=b"".join(self.chunks),
            request=self.request,
            extensions={"http_version": b"HTTP/1.1"},
        )


def _reusable(connection: h11.Connection) -> bool:
    """Whether both sides ended the exchange cleanly (no ``Connection: close``); if so, ready for the next."""
    if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
        connection.start_next_cycle()
        return True
    return False


class _Idle(Generic[C]):
    """The idle keep-alive connections of a pool, per origin, newest last (thread-safe)."""

    def __init__(self, keepalive_expiry: float, max_idle: int) -> None:
        self.expiry = keepalive_expiry
        self.max_idle = max_idle
        self.closed = False
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[tuple[float, C]]] = {}

    def take(self, origin: Origin) -> tuple[C | None, list[C]]:
        """A connection idle for less than the expiry (or ``None``), and the expired ones to close."""
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(origin, [])
            stale = [connection for since, connection in idle if now - since >= self.expiry]
            fresh = [(since, connection) for since, connection in idle if now - since < self.expiry]
            self._idle[origin] = fresh
            return (fresh.pop()[1] if fresh else None), stale

    def give_back(self, origin: Origin, connection: C) -> bool:
        """Keep ``connection`` for reuse; ``False`` when the pool is closed or full (the caller closes it)."""
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if self.closed or len(idle) >= self.max_idle:
                return False
            idle.append((time.monotonic(), connection))
            return True

    def close(self) -> list[C]:
        """Mark the pool closed; the idle connections, for the caller to close."""
        with self._lock:
            self.closed = True
            idle = [connection for connections in self._idle.values() for _, connection in connections]
            self._idle.clear()
            return idle


# ---------------------------------------------------------------- blocking: sockets


def _readable(sock: socket.socket) -> bool:
    """Whether an idle socket has something to read: the server closed it (or sent junk)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class _SyncConnection:
    """One keep-alive HTTP/1.1 connection over a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT)

    def _timeout(self, seconds: float | None) -> None:
        if self.sock.gettimeout() != seconds:
            self.sock.settimeout(seconds)

    def exchange(self, request: httpx.Request, body: bytes, timeouts: dict[str, float | None]) -> httpx.Response:
        data = _request_bytes(self.h11, request, body)
        self._timeout(timeouts.get("write"))
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from None
        self._timeout(timeouts.get("read"))
        answer = _Answer(request)
        while not answer.complete(self.h11):
            try:
                self.h11.receive_data(self.sock.recv(_READ_SIZE))
            except TimeoutError:
                raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None
        return answer.response()

    def close(self) -> None:
        self.sock.close()


class SyncPool(httpx.BaseTransport):
    """Blocking keep-alive HTTP/1.1 connections (h11 over sockets), shared by threads.

    At most ``size`` requests are in flight at once, as with httpx's pool: others wait up to the
    pool timeout and then fail with ``httpx.PoolTimeout``. Failures are httpx's exceptions, so
    the retry rules that read them are the same whatever the transport.
    """

    def __init__(self, ssl_context: ssl.SSLContext, keepalive_expiry: float, size: int) -> None:
        self._ssl = ssl_context
        self._idle: _Idle[_SyncConnection] = _Idle(keepalive_expiry, size)
        self._slots = threading.BoundedSemaphore(size)

    def _connection(self, request: httpx.Request, origin: Origin, timeout: float | None) -> _SyncConnection:
        while True:
            connection, stale = self._idle.take(origin)
            for each in stale:
                each.close()
            if connection is None:
                break
            if not _readable(connection.sock):
                return connection
            connection.close()
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._ssl.wrap_socket(sock, server_hostname=host)
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}", request=request) from None
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        return _SyncConnection(sock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection (or a new one) and read the whole answer."""
        origin = _origin(request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = request.read()
        if not self._slots.acquire(timeout=timeouts.get("pool")):
            raise httpx.PoolTimeout("no connection free in the pool in time", request=request)
        try:
            connection = self._connection(request, origin, timeouts.get("connect"))
            try:
                response = connection.exchange(request, body, timeouts)
            except BaseException:  # failed or interrupted mid-exchange: the connection's state is unknown
                connection.close()
                raise
            if not (_reusable(connection.h11) and self._idle.give_back(origin, connection)):
                connection.close()
            return response
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections; those in use close when their exchange ends."""
        for connection in self._idle.close():
            connection.close()


# ---------------------------------------------------------------- asyncio: streams


async def _within(step: Awaitable[T], seconds: float | None) -> T:
    """``await step``, raising ``asyncio.TimeoutError`` after ``seconds`` (``None``: no limit)."""
    if seconds is None:
        return await step
    if hasattr(asyncio, "timeout"):  # Python 3.11+; wait_for there wraps each await in a task
        async with asyncio.timeout(seconds):
            return await step
    return await asyncio.wait_for(step, seconds)


class _AsyncConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def open(self) -> bool:
        """Not closed by either side (an idle connection the server closed has seen its EOF)."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    async def exchange(self, request: httpx.Request, body: bytes, timeouts: dict[str, float | None]) -> httpx.Response:
        self.writer.write(_request_bytes(self.h11, request, body))
        try:
            await _within(self.writer.drain(), timeouts.get("write"))
        except asyncio.TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from None
        answer = _Answer(request)
        while not answer.complete(self.h11):
            try:
                data = await _within(self.reader.read(_READ_SIZE), timeouts.get("read"))
            except asyncio.TimeoutError:
                raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None
            self.h11.receive_data(data)
        return answer.response()

    def close(self) -> None:
        self.writer.close()


class AsyncPool(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections (h11 over asyncio streams) for one event loop.

    It does not bound how many requests are in flight: :class:`AsyncHTTP`'s semaphore does, so
    open connections never exceed :data:`ASYNC_POOL_SIZE` however many triggers share the client.
    """

    def __init__(self, ssl_context: ssl.SSLContext, keepalive_expiry: float, max_idle: int) -> None:
        self._ssl = ssl_context
        self._idle: _Idle[_AsyncConnection] = _Idle(keepalive_expiry, max_idle)

    async def _connection(self, request: httpx.Request, origin: Origin, timeout: float | None) -> _AsyncConnection:
        while True:
            connection, stale = self._idle.take(origin)
            for each in stale:
                each.close()
            if connection is None:
                break
            if connection.open():
                return connection
            connection.close()
        scheme, host, port = origin
        tls = self._ssl if scheme == "https" else None
        try:
            reader, writer = await _within(
                asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None), timeout
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        return _AsyncConnection(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection (or a new one) and read the whole answer."""
        origin = _origin(request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        connection = await self._connection(request, origin, timeouts.get("connect"))
        try:
            response = await connection.exchange(request, body, timeouts)
        except BaseException:  # failed or cancelled mid-exchange: the connection's state is unknown
            connection.close()
            raise
        if not (_reusable(connection.h11) and self._idle.give_back(origin, connection)):
            connection.close()
        return response

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their exchange ends."""
        for connection in self._idle.close():
            connection.close()


# ---------------------------------------------------------------- what the clients use


class SyncHTTP:
    """Sync exchanges through one transport (by default a :class:`SyncPool`)."""

    def __init__(self, base_url: str, api_key: str, timeout: float, transport: SyncTransport | None = None) -> None:
        if transport is None:
            proxy = _env_proxy(base_url)
            transport = (
                httpx.HTTPTransport(verify=_ssl_context(), limits=_LIMITS, proxy=proxy)
                if proxy
                else SyncPool(_ssl_context(), _KEEPALIVE_EXPIRY, SYNC_POOL_SIZE)
            )
        self._transport = transport
        self._requests = _Requests(base_url, api_key, timeout)
        self._secret = SecretStr(api_key)
        self.is_closed = False

    def send(self, call: Call[Any]) -> Outcome:
        """Perform one exchange; never raises for HTTP or transport failures (bad bodies raise)."""
        request = self._requests.build(call)
        try:
            response = self._transport.handle_request(request)
            try:
                return _response(response, response.read())
            finally:
                response.close()
        except httpx.HTTPError as exc:
            return _failure(exc, self._secret.get_secret_value())

    def close(self) -> None:
        """Close the connection pool."""
        self.is_closed = True
        self._transport.close()


class AsyncHTTP:
    """Async exchanges through one transport (by default an :class:`AsyncPool`).

    Requests beyond the pool's size wait on a semaphore, not in a pool's queue: with thousands
    of triggers sharing one client, httpcore rescanned its whole queue whenever a connection
    freed up (quadratic: at 1,000 waiters the event loop stalled for seconds), and its pool
    timeout turned the wait itself into ``PoolTimeout`` failures.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float, transport: AsyncTransport | None = None) -> None:
        if transport is None:
            proxy = _env_proxy(base_url)
            limits = httpx.Limits(
                max_connections=ASYNC_POOL_SIZE,
                max_keepalive_connections=ASYNC_POOL_SIZE,
                keepalive_expiry=_KEEPALIVE_EXPIRY,
            )
            transport = (
                httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits, proxy=proxy)
                if proxy
                else AsyncPool(_ssl_context(), _KEEPALIVE_EXPIRY, ASYNC_POOL_SIZE)
            )
        self._transport = transport
        self._requests = _Requests(base_url, api_key, timeout)
        self._secret = SecretStr(api_key)
        self._slots = asyncio.Semaphore(ASYNC_POOL_SIZE)
        self.is_closed = False

    async def send(self, call: Call[Any]) -> Outcome:
        """Perform one exchange; never raises for HTTP or transport failures (bad bodies raise)."""
        async with self._slots:  # built inside: thousands of triggers waiting here do not all build at once
            request = self._requests.build(call)
            try:
                response = await self._transport.handle_async_request(request)
                try:
                    return _response(response, await response.aread())
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                return _failure(exc, self._secret.get_secret_value())

    async def aclose(self) -> None:
        """Close the connection pool."""
        self.is_closed = True
        await self._transport.aclose()
