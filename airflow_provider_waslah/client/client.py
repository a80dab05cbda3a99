"""``WaslahClient`` and ``AsyncWaslahClient``: Waslah's REST API in Python, without Airflow.

Both expose one method per endpoint, taken from the builders in :mod:`.calls` (signature,
checks and docstring written once) and run through the one request loop in :mod:`._engine`;
they differ only in how they wait and send.

>>> client = WaslahClient(api_key="wsl_...", base_url="http://127.0.0.1:8787/api/v1")
>>> receipt = client.send_text(instance_key="demo", to="0812 3456 7890", text="Halo")
>>> client.get_message(receipt.id).status
'sent'
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from pydantic import SecretStr

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client._engine import Acquire, Outcome, Settings, Sleep, Step, run_call
from airflow_provider_waslah.client._http import AsyncHTTP, AsyncTransport, SyncHTTP, SyncTransport
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.ratelimit import (
    DEFAULT_WINDOW_SECONDS,
    PLAN_LIMITS,
    Limiter,
    limit_for,
    shared_limiter,
)
from airflow_provider_waslah.client.shared_budget import check_storage_url, shared_budget
from airflow_provider_waslah.client.validation import check_api_key, check_media_url, check_positive_seconds, shown

DEFAULT_BASE_URL = "https://waslah.id/api/v1"

P = ParamSpec("P")
T = TypeVar("T")
Self = TypeVar("Self")


class _SyncCaller(Protocol):
    def call(self, call: Call[T]) -> T: ...


class _AsyncCaller(Protocol):
    def call(self, call: Call[T]) -> Coroutine[Any, Any, T]: ...


class endpoint(Generic[P, T]):
    """Expose a builder from :mod:`.calls` as a method of a class that has ``call(Call)``.

    The method validates its arguments at once (bad input raises before any request, even on
    the async client) and hands the :class:`Call` to ``call``: the sync client returns the
    result, the async one a coroutine of it. So one table of endpoints serves both.
    """

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self: Self, owner_instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, owner_instance: _AsyncCaller, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, owner_instance: _SyncCaller, owner: type) -> Callable[P, T]: ...
    def __get__(self, owner_instance: Any, owner: type) -> Any:
        if owner_instance is None:
            return self
        build = self._build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return owner_instance.call(build(*args, **kwargs))

        return method


class Endpoints:
    """Waslah's endpoints as methods; the host class provides ``call(Call)`` (sync or async)."""

    get_me = endpoint(calls.get_me)
    list_instances = endpoint(calls.list_instances)
    get_instance = endpoint(calls.get_instance)
    send_message = endpoint(calls.send_message)
    send_text = endpoint(calls.send_text)
    send_media = endpoint(calls.send_media)
    send_bulk = endpoint(calls.send_bulk)
    upload = endpoint(calls.upload)
    get_message = endpoint(calls.get_message)
    list_broadcasts = endpoint(calls.list_broadcasts)
    get_broadcast = endpoint(calls.get_broadcast)


def _seconds(value: object, field: str, *, zero: bool = False) -> float:
    if zero and isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    seconds = None if value is None else check_positive_seconds(value, field)
    if seconds is None:
        raise WaslahInvalidInputError(field, "must be a positive number of seconds, got None")
    return seconds


def _whole(value: object, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WaslahInvalidInputError(field, f"must be a whole number of at least {minimum}, got {shown(value)}")
    return value


def _plan(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in PLAN_LIMITS:
        raise WaslahInvalidInputError("plan", f"must be one of {', '.join(PLAN_LIMITS)}, got {shown(value)}")
    return value.lower()


class _ClientBase:
    """Configuration shared by the sync and async clients; every option is checked here.

    :param api_key: the Waslah API key (``wsl_…``); kept as a secret, never shown. Whitespace
        around it (a pasted newline) is removed; whitespace inside it, control characters and
        non-ASCII characters are refused (see :func:`~.validation.check_api_key`).
    :param base_url: the API root, ``https://waslah.id/api/v1`` by default.
    :param timeout: seconds per request.
    :param max_retries: retries of a retryable failure (see ``_engine.py`` for which are).
    :param plan: ``free``, ``basic``, ``pro`` or ``enterprise``: sizes the rate-limit budget.
    :param rate_limit_per_minute: an explicit budget, overriding ``plan``.
    :param rate_limit_window_seconds: the rate-limit window (60 s; shorter against the emulator).
    :param max_retry_wait: the longest ``Retry-After`` the client will sleep through.
    :param rate_limit_storage: a ``redis://`` or ``rediss://`` URL: the key's rate budget is then
        shared through Redis by every process and host using it (needs the ``redis`` extra; see
        :mod:`.shared_budget`). ``None`` (the default): a budget per process.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        plan: str | None = None,
        rate_limit_per_minute: int | None = None,
        rate_limit_window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_retry_wait: float = 120.0,
        rate_limit_storage: str | None = None,
    ) -> None:
        if api_key is None or (isinstance(api_key, str) and not api_key):
            raise WaslahInvalidInputError("api_key", "is required (the connection's Password field)")
        key = check_api_key(api_key, "api_key")
        self._api_key = SecretStr(key)
        self.base_url = check_media_url(base_url or DEFAULT_BASE_URL, "base_url", check_host=False).rstrip("/")
        self.timeout = _seconds(timeout, "timeout")
        self.settings = Settings(
            max_retries=_whole(max_retries, "max_retries", 0),
            max_retry_wait=_seconds(max_retry_wait, "max_retry_wait", zero=True),
        )
        per_minute = (
            None if rate_limit_per_minute is None else _whole(rate_limit_per_minute, "rate_limit_per_minute", 1)
        )
        window = _seconds(rate_limit_window_seconds, "rate_limit_window_seconds")
        storage = None if rate_limit_storage is None else check_storage_url(rate_limit_storage, "rate_limit_storage")
        local = shared_limiter(self.base_url, key, limit_for(_plan(plan), per_minute), window)
        self.limiter: Limiter = local if storage is None else shared_budget(storage, local, self.base_url, key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key='***')"

    def _steps(self, call: Call[T]) -> Generator[Step, Any, T]:
        for field, url in call.media_urls:
            check_media_url(url, field, trusted_origin=self.base_url)
        return run_call(call, self.limiter, self.settings, self.base_url)


class WaslahClient(_ClientBase, Endpoints):
    """Blocking Waslah client (see :class:`_ClientBase` for the parameters).

    :param transport: an ``httpx`` transport, e.g. ``httpx.ASGITransport`` for in-process tests.
    """

    def __init__(self, *, transport: SyncTransport | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._http = SyncHTTP(self.base_url, self._api_key.get_secret_value(), self.timeout, transport)

    def call(self, call: Call[T]) -> T:
        """Run one prepared :class:`Call` (pacing, retries, errors) and return its parsed result."""
        steps = self._steps(call)
        reply: Outcome | float | None = None
        with contextlib.closing(steps):  # a call abandoned mid-exchange still gives its slot back
            while True:
                try:
                    step = steps.send(reply)
                except StopIteration as done:
                    return done.value
                if isinstance(step, Acquire):
                    reply = step.limiter.acquire()
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    reply = None
                else:
                    reply = self._http.send(step.call)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> WaslahClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncWaslahClient(_ClientBase, Endpoints):
    """Asyncio Waslah client; same parameters and methods as :class:`WaslahClient`, awaited."""

    def __init__(self, *, transport: AsyncTransport | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._http = AsyncHTTP(self.base_url, self._api_key.get_secret_value(), self.timeout, transport)

    async def call(self, call: Call[T]) -> T:
        """Run one prepared :class:`Call` (pacing, retries, errors) and return its parsed result."""
        steps = self._steps(call)
        reply: Outcome | float | None = None
        with contextlib.closing(steps):  # a call abandoned mid-exchange still gives its slot back
            while True:
                try:
                    step = steps.send(reply)
                except StopIteration as done:
                    return done.value
                if isinstance(step, Acquire):
                    reply = await step.limiter.acquire_async()
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    reply = None
                else:
                    reply = await self._http.send(step.call)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWaslahClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
