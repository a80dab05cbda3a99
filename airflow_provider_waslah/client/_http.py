"""The one module that imports httpx: turns a :class:`Call` into an HTTP exchange and back.

Moving to another HTTP library (httpx's successor keeps the same API) changes only this file.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import Any

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
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=_KEEPALIVE_EXPIRY)
#: Failures that prove the request never left this machine, so even a send may be retried.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

#: Connections an async client opens and keeps alive. httpcore scans every connection of the pool
#: for each queued request, so a small pool is faster: measured with 1,000 triggers on one client,
#: 10 connections beat 20 and 100 (benchmarks/bench_triggers.py). 10 keep-alive connections carry
#: far more than any plan's per-minute budget even at 100 ms a round trip.
ASYNC_POOL_SIZE = 10

SyncTransport = httpx.BaseTransport
AsyncTransport = httpx.AsyncBaseTransport


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client.

    Building one loads the CA bundle (about 20 ms): done per client, a triggerer starting a few
    hundred triggers would block its event loop for seconds.
    """
    return httpx.create_ssl_context()


def _client_options(base_url: str, api_key: str, timeout: float, limits: httpx.Limits = _LIMITS) -> dict[str, Any]:
    return {
        "base_url": base_url.rstrip("/"),
        "verify": _ssl_context(),
        "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        "headers": {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
        "follow_redirects": False,
        "limits": limits,
    }


def _request_options(call: Call[Any]) -> dict[str, Any]:
    return {"method": call.method, "url": call.path, "json": call.json, "files": call.files}


def _build(client: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    """The request for ``call``; a body that cannot be encoded is bad input, reported before sending.

    Builders validate every field, so this only catches :class:`Call` objects made by hand
    (a lone surrogate, NaN, an object JSON cannot encode).
    """
    try:
        return client.build_request(**_request_options(call))
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        raise WaslahInvalidInputError("body", f"cannot be encoded as JSON in UTF-8 ({type(error).__name__})") from None


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


def _response(response: httpx.Response) -> Response:
    return Response(response.status_code, dict(response.headers), response.content)


class SyncHTTP:
    """Sync exchanges over one pooled ``httpx.Client``."""

    def __init__(self, base_url: str, api_key: str, timeout: float, transport: SyncTransport | None = None) -> None:
        self._client = httpx.Client(transport=transport, **_client_options(base_url, api_key, timeout))
        self._secret = SecretStr(api_key)

    def send(self, call: Call[Any]) -> Outcome:
        """Perform one exchange; never raises for HTTP or transport failures (bad bodies raise)."""
        request = _build(self._client, call)
        try:
            return _response(self._client.send(request))
        except httpx.HTTPError as exc:
            return _failure(exc, self._secret.get_secret_value())

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncHTTP:
    """Async exchanges over one pooled ``httpx.AsyncClient``.

    Requests beyond the pool's size wait on a semaphore, not in httpx's pool queue: with
    thousands of triggers sharing one client, httpcore rescans its whole queue whenever a
    connection frees up (quadratic: at 1,000 waiters the event loop stalled for seconds), and
    its pool timeout turned the wait itself into ``PoolTimeout`` failures.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float, transport: AsyncTransport | None = None) -> None:
        limits = httpx.Limits(
            max_connections=ASYNC_POOL_SIZE,
            max_keepalive_connections=ASYNC_POOL_SIZE,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
        )
        self._client = httpx.AsyncClient(transport=transport, **_client_options(base_url, api_key, timeout, limits))
        self._secret = SecretStr(api_key)
        self._slots = asyncio.Semaphore(ASYNC_POOL_SIZE)

    async def send(self, call: Call[Any]) -> Outcome:
        """Perform one exchange; never raises for HTTP or transport failures (bad bodies raise)."""
        request = _build(self._client, call)
        async with self._slots:
            try:
                return _response(await self._client.send(request))
            except httpx.HTTPError as exc:
                return _failure(exc, self._secret.get_secret_value())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
