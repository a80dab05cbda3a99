"""The one module that imports httpx: turns a :class:`Call` into an HTTP exchange and back.

By default a client sends through this module's keep-alive pools (:class:`SyncPool`,
:class:`AsyncPool`): HTTP/1.1 (``_wire.py``: requests written here, answers parsed by llhttp)
over plain sockets or asyncio streams. httpx's default pool (httpcore over anyio) cost 0.4 ms
(sync) to 0.9 ms (async, 20 at once) of CPU per request against the emulator, more than the
emulator's own work; these pools cost well under a third of that (benchmarks/bench_http_anchor.py).
Any httpx transport can be given instead (tests plug in ``httpx.MockTransport`` or
``httpx.ASGITransport``), and when an ``HTTP(S)_PROXY`` variable applies to the base URL,
httpx's own transport is used, through that proxy. Failures are httpx's exceptions on every
path, so the retry rules that read them do not depend on the transport.

Moving to another HTTP library (httpx's successor keeps the same API) changes only this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Awaitable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from airflow_provider_waslah import __version__
from airflow_provider_waslah.client._engine import Outcome, Response, TransportFailure
from airflow_provider_waslah.client._wire import (
    Origin,
    ResponseReader,
    Timeouts,
    WireRequest,
    encode_json,
    header_lines,
    origin_of,
    request_bytes,
)
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
#: 10 connections beat 20 and 100, benchmarks/bench_triggers.py); with :class:`AsyncPool`, 10 and
#: 20 carry the same 20 sends at once against the emulator. 10 keep-alive connections carry far
#: more than any plan's per-minute budget even at 100 ms a round trip.
ASYNC_POOL_SIZE = 10

SyncTransport = httpx.BaseTransport
AsyncTransport = httpx.AsyncBaseTransport
T = TypeVar("T")
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
    """Builds the request of a :class:`Call`: base URL, headers, body, timeouts.

    :meth:`wire` makes the bytes the pools send; :meth:`build` an ``httpx.Request`` for any other
    transport. Both encode the body with :func:`encode_json`.
    """

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
        self._timeouts = Timeouts(connect=min(timeout, 10.0), read=timeout, write=timeout, pool=timeout)
        self._extensions = {"timeout": self._timeouts._asdict()}
        self._urls: dict[str, httpx.URL] = {}
        self._targets: dict[str, tuple[Origin, bytes, bytes]] = {}

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base_url + path)
            if len(self._urls) < self._MAX_URLS:  # sends and lists repeat their paths; GET /messages/{id} do not
                self._urls[path] = url
        return url

    def _json(self, call: Call[Any]) -> bytes | None:
        """The body of ``call``; one that cannot be encoded is bad input, reported before sending.

        Builders validate every field, so this only catches :class:`Call` objects made by hand
        (a lone surrogate, NaN, an object JSON cannot encode).
        """
        if call.json is None:
            return None
        try:
            return encode_json(call.json)
        except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
            raise WaslahInvalidInputError(
                "body", f"cannot be encoded as JSON in UTF-8 ({type(error).__name__})"
            ) from None

    def build(self, call: Call[Any]) -> httpx.Request:
        """``call`` as an ``httpx.Request``, for an httpx transport."""
        body = self._json(call)
        headers = self._headers if body is None else [*self._headers.raw, (b"Content-Type", b"application/json")]
        return httpx.Request(
            call.method,
            self._url(call.path),
            content=body,
            files=call.files,
            headers=headers,
            extensions=dict(self._extensions),
        )

    def wire(self, call: Call[Any]) -> WireRequest:
        """``call`` as the bytes a pool sends (uploads go through httpx's multipart encoder)."""
        if call.files:
            request = self.build(call)
            head = header_lines(request.headers.raw)
            data = request_bytes(call.method, request.url.raw_path, head, request.read())
            return WireRequest(origin_of(request.url), data, self._timeouts)
        origin, target, head = self._target(call.path)
        body = self._json(call)
        if body is not None:
            head += b"Content-Type: application/json\r\n"
        return WireRequest(origin, request_bytes(call.method, target, head, body or b""), self._timeouts)

    def _target(self, path: str) -> tuple[Origin, bytes, bytes]:
        """Where ``path`` goes, its request target, and the header lines every request carries."""
        known = self._targets.get(path)
        if known is None:
            url = self._url(path)
            # Host with the port when it is not the scheme's default, as httpx writes it.
            known = origin_of(url), url.raw_path, header_lines([(b"Host", url.netloc), *self._headers.raw])
            if len(self._targets) < self._MAX_URLS:
                self._targets[path] = known
        return known


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


# ---------------------------------------------------------------- pools


class _Connection(Protocol):
    #: Whether the last exchange ended cleanly with the connection kept alive.
    reusable: bool

    def open(self) -> bool: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=_Connection)


@contextlib.contextmanager
def _socket_errors(
    timed_out: type[httpx.TimeoutException], failed: type[httpx.TransportError], what: str
) -> Iterator[None]:
    """Socket and stream failures as httpx's: ``timed_out("timed out " + what)`` or ``failed``.

    Which class a failure becomes decides whether a send may be retried (``_NEVER_SENT``), so
    every socket step of both pools goes through here.
    """
    try:
        yield
    except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11, two before
        raise timed_out(f"timed out {what}") from None
    except OSError as exc:
        raise failed(str(exc) or type(exc).__name__) from None


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

    def reuse(self, origin: Origin) -> C | None:
        """The newest idle connection to ``origin`` still open, if any; expired and closed ones are closed."""
        while True:
            connection, stale = self.take(origin)
            for each in stale:
                each.close()
            if connection is None or connection.open():
                return connection
            connection.close()

    def give_back(self, origin: Origin, connection: C) -> bool:
        """Keep ``connection`` for reuse; ``False`` when the pool is closed or full (the caller closes it)."""
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if self.closed or len(idle) >= self.max_idle:
                return False
            idle.append((time.monotonic(), connection))
            return True

    def settle(self, origin: Origin, connection: C) -> None:
        """After an exchange: keep ``connection`` if it is reusable and there is room, else close it."""
        if not (connection.reusable and self.give_back(origin, connection)):
            connection.close()

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
        #: Whether the last exchange ended cleanly with the connection kept alive.
        self.reusable = False

    def open(self) -> bool:
        """Nothing to read while idle: a readable idle socket was closed by the server (or got junk)."""
        return not _readable(self.sock)

    def _timeout(self, seconds: float | None) -> None:
        if self.sock.gettimeout() != seconds:
            self.sock.settimeout(seconds)

    def exchange(self, request: WireRequest) -> Response:
        self.reusable = False
        self._timeout(request.timeouts.write)
        with _socket_errors(httpx.WriteTimeout, httpx.WriteError, "sending the request"):
            self.sock.sendall(request.data)
        self._timeout(request.timeouts.read)
        answer = ResponseReader()
        while True:
            with _socket_errors(httpx.ReadTimeout, httpx.ReadError, "waiting for the response"):
                data = self.sock.recv(_READ_SIZE)
            if answer.feed(data):
                self.reusable = answer.keep_alive
                return answer.response()

    def close(self) -> None:
        self.sock.close()


class SyncPool:
    """Blocking keep-alive HTTP/1.1 connections over sockets, shared by threads.

    At most ``size`` requests are in flight at once, as with httpx's pool: others wait up to the
    pool timeout and then fail with ``httpx.PoolTimeout``.
    """

    def __init__(self, ssl_context: ssl.SSLContext, keepalive_expiry: float, size: int) -> None:
        self._ssl = ssl_context
        self._idle: _Idle[_SyncConnection] = _Idle(keepalive_expiry, size)
        self._slots = threading.BoundedSemaphore(size)

    def _connection(self, origin: Origin, timeout: float | None) -> _SyncConnection:
        connection = self._idle.reuse(origin)
        if connection is not None:
            return connection
        scheme, host, port = origin
        with _socket_errors(httpx.ConnectTimeout, httpx.ConnectError, f"connecting to {host}:{port}"):
            sock = socket.create_connection((host, port), timeout=timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == "https":
                    sock = self._ssl.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        return _SyncConnection(sock)

    def send(self, request: WireRequest) -> Response:
        """Send ``request`` on a pooled connection (or a new one) and read the whole answer."""
        if not self._slots.acquire(timeout=request.timeouts.pool):
            raise httpx.PoolTimeout("no connection free in the pool in time")
        try:
            connection = self._connection(request.origin, request.timeouts.connect)
            try:
                response = connection.exchange(request)
            except BaseException:  # failed or interrupted mid-exchange: the connection's state is unknown
                connection.close()
                raise
            self._idle.settle(request.origin, connection)
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
        #: Whether the last exchange ended cleanly with the connection kept alive.
        self.reusable = False

    def open(self) -> bool:
        """Not closed by either side (an idle connection the server closed has seen its EOF)."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    async def exchange(self, request: WireRequest) -> Response:
        self.reusable = False
        self.writer.write(request.data)
        with _socket_errors(httpx.WriteTimeout, httpx.WriteError, "sending the request"):
            await _within(self.writer.drain(), request.timeouts.write)
        answer = ResponseReader()
        while True:
            with _socket_errors(httpx.ReadTimeout, httpx.ReadError, "waiting for the response"):
                data = await _within(self.reader.read(_READ_SIZE), request.timeouts.read)
            if answer.feed(data):
                self.reusable = answer.keep_alive
                return answer.response()

    def close(self) -> None:
        self.writer.close()


class AsyncPool:
    """Keep-alive HTTP/1.1 connections over asyncio streams, for one event loop.

    It does not bound how many requests are in flight: :class:`AsyncHTTP`'s semaphore does, so
    open connections never exceed :data:`ASYNC_POOL_SIZE` however many triggers share the client.
    """

    def __init__(self, ssl_context: ssl.SSLContext, keepalive_expiry: float, max_idle: int) -> None:
        self._ssl = ssl_context
        self._idle: _Idle[_AsyncConnection] = _Idle(keepalive_expiry, max_idle)

    async def _connection(self, origin: Origin, timeout: float | None) -> _AsyncConnection:
        connection = self._idle.reuse(origin)
        if connection is not None:
            return connection
        scheme, host, port = origin
        tls = self._ssl if scheme == "https" else None
        with _socket_errors(httpx.ConnectTimeout, httpx.ConnectError, f"connecting to {host}:{port}"):
            reader, writer = await _within(
                asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None), timeout
            )
        return _AsyncConnection(reader, writer)

    async def send(self, request: WireRequest) -> Response:
        """Send ``request`` on a pooled connection (or a new one) and read the whole answer."""
        connection = await self._connection(request.origin, request.timeouts.connect)
        try:
            response = await connection.exchange(request)
        except BaseException:  # failed or cancelled mid-exchange: the connection's state is unknown
            connection.close()
            raise
        self._idle.settle(request.origin, connection)
        return response

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their exchange ends."""
        for connection in self._idle.close():
            connection.close()


# ---------------------------------------------------------------- what the clients use


class SyncHTTP:
    """Sync exchanges through a :class:`SyncPool`, or through an httpx transport when one is given."""

    def __init__(self, base_url: str, api_key: str, timeout: float, transport: SyncTransport | None = None) -> None:
        if transport is None and (proxy := _env_proxy(base_url)):
            transport = httpx.HTTPTransport(verify=_ssl_context(), limits=_LIMITS, proxy=proxy)
        self._transport = transport
        self._pool = SyncPool(_ssl_context(), _KEEPALIVE_EXPIRY, SYNC_POOL_SIZE) if transport is None else None
        self._requests = _Requests(base_url, api_key, timeout)
        self._secret = SecretStr(api_key)
        self.is_closed = False

    def send(self, call: Call[Any]) -> Outcome:
        """Perform one exchange; never raises for HTTP or transport failures (bad bodies raise)."""
        try:
            if self._pool is not None:
                return self._pool.send(self._requests.wire(call))
            assert self._transport is not None
            response = self._transport.handle_request(self._requests.build(call))
            try:
                return _response(response, response.read())
            finally:
                response.close()
        except httpx.HTTPError as exc:
            return _failure(exc, self._secret.get_secret_value())

    def close(self) -> None:
        """Close the connection pool."""
        self.is_closed = True
        if self._pool is not None:
            self._pool.close()
        if self._transport is not None:
            self._transport.close()


class AsyncHTTP:
    """Async exchanges through an :class:`AsyncPool`, or through an httpx transport when one is given.

    Requests beyond the pool's size wait on a semaphore, not in a pool's queue: with thousands
    of triggers sharing one client, httpcore rescanned its whole queue whenever a connection
    freed up (quadratic: at 1,000 waiters the event loop stalled for seconds), and its pool
    timeout turned the wait itself into ``PoolTimeout`` failures.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float, transport: AsyncTransport | None = None) -> None:
        if transport is None and (proxy := _env_proxy(base_url)):
            limits = httpx.Limits(
                max_connections=ASYNC_POOL_SIZE,
                max_keepalive_connections=ASYNC_POOL_SIZE,
                keepalive_expiry=_KEEPALIVE_EXPIRY,
            )
            transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits, proxy=proxy)
        self._transport = transport
        self._pool = AsyncPool(_ssl_context(), _KEEPALIVE_EXPIRY, ASYNC_POOL_SIZE) if transport is None else None
        self._requests = _Requests(base_url, api_key, timeout)
        self._secret = SecretStr(api_key)
        self._slots = asyncio.Semaphore(ASYNC_POOL_SIZE)
        self.is_closed = False

    async def send(self, call: Call[Any]) -> Outcome:
        """Perform one exchange; never raises for HTTP or transport failures (bad bodies raise)."""
        async with self._slots:  # built inside: thousands of triggers waiting here do not all build at once
            try:
                if self._pool is not None:
                    return await self._pool.send(self._requests.wire(call))
                assert self._transport is not None
                response = await self._transport.handle_async_request(self._requests.build(call))
                try:
                    return _response(response, await response.aread())
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                return _failure(exc, self._secret.get_secret_value())

    async def aclose(self) -> None:
        """Close the connection pool."""
        self.is_closed = True
        if self._pool is not None:
            await self._pool.aclose()
        if self._transport is not None:
            await self._transport.aclose()
