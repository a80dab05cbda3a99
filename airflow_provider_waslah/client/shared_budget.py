"""One rate budget for every process that sends with an API key, kept in Redis (``rate_limit_storage``).

The per-process :class:`~.ratelimit.RateLimiter` cannot see other processes: N Celery workers on
one key each spend the whole budget, and Waslah answers 429. With a ``redis://`` (or
``rediss://``) URL in the connection's ``rate_limit_storage`` extra, every process takes its
slots from one moving window in Redis instead, through the ``limits`` library
(``pip install 'airflow-provider-waslah[redis]'``).

Why a moving window: it never lets any span of its length hold more than the budget, so no
placement of Waslah's fixed window (Laravel's, counted from a first request we cannot see) can
hold more either. It is made a little longer than Waslah's window (the same safety margin as the
local limiter, :func:`~.ratelimit.safety_margin`, rounded up to a whole second, since Redis
expires keys in whole seconds): a request reaches Waslah a moment after it took its slot, and
that moment must not let limit + 1 requests into one server window. Hosts must keep their
clocks in step (NTP): ``limits`` stamps the slots with each host's clock, and a skew eats into
the margin.

The rules stay with the local limiter: a 429's ``Retry-After`` stops this process's callers, the
``X-RateLimit-Limit`` header resizes the budget (read here on every slot). Redis only decides
whether a slot is free.

If Redis is unreachable (refused, timed out, wrong password), sending goes on with the local
limiter, with one warning; Redis is asked again every :data:`RETRY_STORAGE_EVERY` seconds and a
line is logged when it answers again. A task never fails or hangs on the storage: sockets time
out after :data:`STORAGE_TIMEOUT` seconds and redis-py's own retries are off.

The Redis key holds the SHA-256 digest of the API key, never the key; the storage URL is shown
only without its password and query (``redis://host:6379/0``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.ratelimit import RateLimiter, safety_margin

if TYPE_CHECKING:
    from limits import RateLimitItem, WindowStats
    from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
    from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("airflow_provider_waslah.client")

STORAGE_SCHEMES = ("redis", "rediss")
#: Seconds between attempts to reach a storage that failed.
RETRY_STORAGE_EVERY = 30.0
#: Connect and read timeout of every Redis call, in seconds: a slot is a few milliseconds of work.
STORAGE_TIMEOUT = 0.5
#: The shortest wait returned when the window is full (never a busy loop on a clock edge).
MIN_WAIT = 0.01
#: The wait when a slot freed between a refused hit and the window's stats: ask again soon, without spinning.
RECHECK = 0.05
INSTALL_HINT = "pip install 'airflow-provider-waslah[redis]'"
_MAX_URL = 2048


def check_storage_url(value: object, field: str = "rate_limit_storage") -> str:
    """A ``redis://`` or ``rediss://`` URL with a host, a valid port and an optional database number.

    The value is never quoted in an error (it may hold a password). Query options (``?ssl_cert_reqs=…``)
    are passed on to redis-py.
    """
    if not isinstance(value, str) or not value.strip():
        raise WaslahInvalidInputError(field, "must be a redis:// or rediss:// URL string")
    url = value.strip()
    if len(url) > _MAX_URL:
        raise WaslahInvalidInputError(field, f"must be at most {_MAX_URL} characters, got {len(url)}")
    if not url.isascii() or not url.isprintable() or any(char.isspace() for char in url):
        raise WaslahInvalidInputError(
            field, "must be printable ASCII without spaces (percent-encode other characters in the password)"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port out of range or not a number)
    except ValueError:
        raise WaslahInvalidInputError(field, "is not a valid URL (check the host and the port)") from None
    if parts.scheme not in STORAGE_SCHEMES:
        raise WaslahInvalidInputError(field, "must start with redis:// or rediss:// (rediss for TLS)")
    if not host:
        raise WaslahInvalidInputError(field, "must name the Redis host: redis://[:password@]host[:port][/db]")
    if "\\" in parts.netloc:
        raise WaslahInvalidInputError(field, "must not contain a backslash before the path")
    database = parts.path.strip("/")
    if "/" in database or (database and not (database.isdigit() and database.isascii())):
        raise WaslahInvalidInputError(field, "may end only with a database number (redis://host:6379/0)")
    if parts.fragment:
        raise WaslahInvalidInputError(field, "must not have a #fragment")
    return url


def shown_storage(url: str) -> str:
    """``url`` as it may appear in a log or a message: no user, password or query."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def window_for(window_seconds: float) -> int:
    """The moving window's length: Waslah's window plus the safety margin, in whole seconds."""
    return max(1, math.ceil(window_seconds + safety_margin(window_seconds) - 1e-9))


def _libraries() -> Any:
    """The ``limits`` module (with redis-py present), or the error that names the extra to install."""
    try:
        import limits
        import limits.storage
        import limits.strategies
        import redis  # noqa: F401  (limits needs it for redis:// storages)
    except ImportError as missing:
        raise WaslahInvalidInputError(
            "rate_limit_storage",
            f"needs the optional libraries limits and redis ({missing.name} is not installed): {INSTALL_HINT}",
        ) from None
    return limits


class SharedBudget:
    """The rate budget of one API key, shared through Redis; the local limiter is its fallback.

    It has the local limiter's interface (``acquire``, ``acquire_async``, ``release``,
    ``headroom``, ``observe``, ``penalize``, ``limit``, ``window_seconds``), so the request loop
    and the batch sender use either without knowing which.

    :param storage_url: the checked ``redis://`` URL.
    :param local: this process's limiter for the key (used for the rules and as the fallback).
    :param key_digest: SHA-256 of the API key, the name of the budget in Redis.
    """

    def __init__(self, storage_url: str, local: RateLimiter, key_digest: str) -> None:
        limits = _libraries()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.local = local
        self.storage = shown_storage(storage_url)
        self._url = storage_url
        self._secrets = secrets_of(storage_url)
        self._identity = key_digest
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0
        self._probing = False
        self._local_grants = 0
        options: dict[str, Any] = {"socket_timeout": STORAGE_TIMEOUT, "socket_connect_timeout": STORAGE_TIMEOUT}
        try:
            storage = limits.storage.RedisStorage(
                storage_url, key_prefix="waslah", retry=Retry(NoBackoff(), 0), **options
            )
        except Exception as error:  # redis-py refused a query option
            raise WaslahInvalidInputError(
                "rate_limit_storage", f"was refused by redis-py ({self._describe(error)})"
            ) from None
        self._window: MovingWindowRateLimiter = limits.strategies.MovingWindowRateLimiter(storage)
        self._options = options
        self._async_windows: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncMovingWindow] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"SharedBudget(storage={self.storage!r}, limit={self.limit}, window_seconds={self.window_seconds:g})"

    @property
    def limit(self) -> int:
        """Requests per window (the local limiter's, resized from ``X-RateLimit-Limit``)."""
        return self.local.limit

    @property
    def window_seconds(self) -> float:
        """Waslah's window length; the moving window in Redis is :func:`window_for` it."""
        return self.local.window_seconds

    def _item(self) -> RateLimitItem:
        return _budget_item(self.limit, window_for(self.window_seconds))

    # ---------------------------------------------------------------- acquire: the rule, then the I/O

    def _before(self) -> float | None:
        """A wait decided without Redis (a 429's pause, or the fallback), or ``None``: ask Redis."""
        paused = self.local.paused_for()
        if paused > 0:
            return paused
        with self._lock:
            if self._down_since is None:
                return None
            if self._probing or time.monotonic() < self._next_try:
                return self._grant_locally()
            self._probing = True  # this caller tries the storage; the others keep pacing locally meanwhile
            return None

    def _grant_locally(self) -> float:
        wait = self.local.acquire()
        if wait == 0:
            self._local_grants += 1
        return wait

    def _answered(self, refused: WindowStats | None) -> float:
        """The wait after Redis answered: 0 for a slot taken (``refused`` is ``None``), else until one frees.

        ``reset_time`` is when the oldest slot in the window leaves it. A slot may have freed
        between the refused hit and the stats (``remaining`` > 0): then ask again soon
        (:data:`RECHECK`), not at ``reset_time``, which may be a whole window away.
        """
        with self._lock:
            if self._down_since is not None:
                log.info(
                    "Shared rate budget %s answers again after %.0f s; pacing across processes again",
                    self.storage,
                    time.monotonic() - self._down_since,
                )
            self._down_since, self._probing = None, False
        if refused is None:
            return 0.0
        until_reset = refused.reset_time - time.time()
        if refused.remaining > 0:
            return max(MIN_WAIT, min(RECHECK, until_reset))
        return max(MIN_WAIT, until_reset)

    def _failed(self, error: BaseException) -> float:
        """The storage failed: warn once, pace with the local limiter, try Redis again later."""
        with self._lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                log.warning(
                    "Shared rate budget %s is unreachable (%s); pacing with this process's limiter only "
                    "(other processes on the key are not counted) and trying it again every %.0f s",
                    self.storage,
                    self._describe(error),
                    RETRY_STORAGE_EVERY,
                )
            else:
                log.debug("Shared rate budget %s still unreachable (%s)", self.storage, self._describe(error))
            self._next_try = now + RETRY_STORAGE_EVERY
            self._probing = False
            return self._grant_locally()

    def _abandoned(self) -> None:
        with self._lock:
            self._probing = False

    def acquire(self) -> float:
        """Take a slot and return 0, or return how long to wait before asking again (blocking I/O)."""
        wait = self._before()
        if wait is not None:
            return wait
        item = self._item()
        try:
            took = self._window.hit(item, self._identity)
            stats = None if took else self._window.get_window_stats(item, self._identity)
        except Exception as error:
            return self._failed(error)
        except BaseException:  # cancelled (the task was killed) or interrupted: the next caller may try Redis
            self._abandoned()
            raise
        return self._answered(stats)

    async def acquire_async(self) -> float:
        """:meth:`acquire` for an event loop: the Redis round trip is awaited, never blocking the loop."""
        wait = self._before()
        if wait is not None:
            return wait
        item = self._item()
        try:
            window = self._async_window()
            took = await window.hit(item, self._identity)
            stats = None if took else await window.get_window_stats(item, self._identity)
        except Exception as error:
            return self._failed(error)
        except BaseException:  # cancelled (the task was killed) or interrupted: the next caller may try Redis
            self._abandoned()
            raise
        return self._answered(stats)

    def _async_window(self) -> AsyncMovingWindow:
        """The running loop's async Redis client (redis.asyncio connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            window = self._async_windows.get(loop)
            if window is None:
                from limits.aio.storage import RedisStorage
                from limits.aio.strategies import MovingWindowRateLimiter
                from redis.asyncio.retry import Retry
                from redis.backoff import NoBackoff

                options: dict[str, Any] = {**self._options, "retry": Retry(NoBackoff(), 0)}
                storage = RedisStorage(f"async+{self._url}", implementation="redispy", key_prefix="waslah", **options)
                window = self._async_windows[loop] = MovingWindowRateLimiter(storage)
            return window

    # ---------------------------------------------------------------- the rest of the limiter's interface

    def release(self, *, answered: bool) -> None:
        """A request is over; only slots the local limiter granted (in the fallback) are its to count."""
        with self._lock:
            if self._local_grants == 0:
                return
            self._local_grants -= 1
        self.local.release(answered=answered)

    def headroom(self) -> tuple[int, float]:
        """``(slots free now, seconds until more are free)`` in the shared window, taking none."""
        paused = self.local.paused_for()
        if paused > 0:
            return 0, paused
        with self._lock:
            down = self._down_since is not None
        if down:
            return self.local.headroom()
        try:
            stats = self._window.get_window_stats(self._item(), self._identity)
        except Exception:
            return self.local.headroom()  # acquire() reports the outage
        if stats.remaining > 0:
            return stats.remaining, 0.0
        return 0, max(MIN_WAIT, stats.reset_time - time.time())

    def observe(
        self, *, limit: int | None = None, remaining: int | None = None, reset_epoch: float | None = None
    ) -> None:
        """Learn from a response's ``X-RateLimit-*`` headers (the local limiter keeps them)."""
        self.local.observe(limit=limit, remaining=remaining, reset_epoch=reset_epoch)

    def penalize(self, retry_after: float) -> None:
        """After a 429: this process's callers wait ``retry_after`` (the local limiter's rule)."""
        self.local.penalize(retry_after)

    def _describe(self, error: BaseException) -> str:
        """An error as a log line shows it: class and message, without the URL's secrets."""
        text = f"{type(error).__name__}: {str(error)[:200]}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def secrets_of(url: str) -> list[str]:
    """What in a storage URL must never be shown: its password (in the userinfo or ``?password=``), raw and decoded."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return [url]
    found = [parts.password or ""]
    found += [value for name, value in parse_qsl(parts.query, keep_blank_values=True) if name.lower() == "password"]
    return [value for raw in found if raw for value in {raw, unquote(raw)}]


@functools.cache
def _budget_class() -> type[RateLimitItem]:
    from limits import RateLimitItemPerSecond

    class Budget(RateLimitItemPerSecond):
        """One Redis key per API key, whatever the budget's size, so a resized budget stays shared."""

        def key_for(self, *identifiers: bytes | str | int | float) -> str:
            return "/".join(["budget", *(str(part) for part in identifiers)])

    return Budget


def _budget_item(limit: int, seconds: int) -> RateLimitItem:
    return _budget_class()(limit, seconds)


_registry: dict[tuple[str, str, str], SharedBudget] = {}
_registry_lock = threading.Lock()


def shared_budget(storage_url: str, local: RateLimiter, base_url: str, api_key: str) -> SharedBudget:
    """The process-wide shared budget for (storage, base URL, API key); created on first use."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    identity = (storage_url, base_url.rstrip("/"), digest)
    with _registry_lock:
        budget = _registry.get(identity)
        if budget is None or budget.local is not local:
            budget = _registry[identity] = SharedBudget(storage_url, local, digest)
        return budget
