"""Client-side pacing for Waslah's per-key, per-minute rate limit.

Waslah (a Laravel app) counts requests per API key in a fixed window that starts at the first
request and sends only ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining`` on success;
``Retry-After`` and ``X-RateLimit-Reset`` come only with a 429. The limiter therefore mirrors
the server's window: it schedules each request into a window of its own, starting a new one
once the budget is spent, a small margin after the old one ends. It tightens the budget from
``Remaining`` (another process may share the key), resizes from ``Limit``, moves the window end
to ``Reset`` when the server sends it, and stops everyone for ``Retry-After`` after a 429.

It also counts the requests it let go that have not come back (``release()``). A new window
never opens while one of the old window's requests is still on its way: a request held past the
window's end (a slow proxy, a stalled connect) may reach the server after it, open the server's
next window and be counted there, so the new window waits until the server's answer says where
the request was counted (``observe()``), or, with no such answer, starts when it came back.

One limiter exists per (base URL, API key) in a process (:func:`shared_limiter`). ``acquire()``
only takes a short ``threading.Lock`` and takes a slot or returns how long to wait before asking
again, so the sync client sleeps with ``time.sleep`` and the async one with ``asyncio.sleep``:
threads and the triggerer's event loop share one budget and the loop is never blocked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from airflow_provider_waslah.plans import PLAN_LIMITS  # requests per minute by plan (the hook imports it here)

DEFAULT_WINDOW_SECONDS = 60.0
#: Slack after a window whose start a response confirmed (see ``RateLimiter.margin``).
CONFIRMED_MARGIN = 0.05
#: How often a caller asks again while the old window's last requests are still on their way.
IN_FLIGHT_POLL = 0.05
#: A request out this long past its window's end is taken as lost to the limiter (a leak guard, far
#: beyond any timeout the client sets), so a slot never released cannot stop the key for good.
IN_FLIGHT_GIVE_UP = 300.0


def safety_margin(window_seconds: float) -> float:
    """Slack added after a window whose start no response confirmed: 2% of it, at least 0.2 s.

    It covers the time between taking a slot and the server counting the request (send jitter,
    a busy event loop). The shared budget (:mod:`.shared_budget`) lengthens its window by it too.
    """
    return max(0.2, window_seconds * 0.02)


class RateLimiter:
    """A fixed-window budget shared by every request made with one API key.

    :param limit: requests per window (the plan's budget).
    :param window_seconds: the window length (60 s for Waslah; shorter against the emulator).
    :param clock: a monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._used = 0
        self._blocked_until = 0.0
        self._confirmed = False
        self._in_flight = 0
        self._opened_late = False

    @property
    def margin(self) -> float:
        """Slack after our window ends: covers the gap between sending and the server's count.

        Once a response showed which request opened the server's window (``Remaining`` one below
        ``Limit``), our window starts when that response arrived, after the server counted it: it
        already ends after the server's, and a small slack is enough. That slack is what a batch
        at a short window's budget gains (10 s windows: 96.5% of the budget instead of 95%).
        """
        if self._confirmed:
            return CONFIRMED_MARGIN
        return safety_margin(self.window_seconds)

    def acquire(self) -> float:
        """Take a request slot now and return 0, or take none and return how long to wait before asking again.

        Nothing is promised for later: a caller that waits asks again, so a window that moved
        meanwhile (the server's answer showed it started later, or a 429
        stopped everyone) applies to every waiting request too.
        """
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return self._blocked_until - now
            if self._window_start is None or now >= self._window_end():
                if self._still_on_the_way(now):
                    return IN_FLIGHT_POLL
                self._window_start, self._used, self._confirmed = now, 0, False
                self._opened_late = False
            if now >= self._window_start and self._used < self.limit:
                self._used += 1
                self._in_flight += 1
                return 0.0
            if now < self._window_start:
                return self._window_start - now
            return self._window_end() - now

    def release(self, *, answered: bool) -> None:
        """A request that ``acquire()`` let go is over (answered, failed or abandoned).

        :param answered: the server's answer carried ``X-RateLimit-Remaining``, so ``observe()``
            already placed the request in the server's window. Without it, a request that came
            back after its window's end may have opened the server's next window: the window is
            taken to have started when it came back, with this request in it.
        """
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            start = self._window_start
            if answered or start is None:
                return
            now = self._clock()
            if now >= start + self.window_seconds:
                self._window_start, self._used, self._confirmed = now, 1, False
                self._opened_late = True
            elif self._opened_late:
                self._used += 1  # taken in the old window, perhaps counted in the one a late request opened

    def _window_end(self) -> float:
        assert self._window_start is not None
        return self._window_start + self.window_seconds + self.margin

    def _still_on_the_way(self, now: float) -> bool:
        """Whether requests of the ending window are still out (and not so long that they count as lost)."""
        if not self._in_flight or self._window_start is None:
            return False
        if now - self._window_end() > IN_FLIGHT_GIVE_UP:
            self._in_flight = 0
            return False
        return True

    async def acquire_async(self) -> float:
        """:meth:`acquire` for the async client: the same (no I/O, a short lock), so one engine serves both."""
        return self.acquire()

    def paused_for(self) -> float:
        """Seconds left of the pause a 429 imposed (:meth:`penalize`); 0 when there is none."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def headroom(self) -> tuple[int, float]:
        """``(slots free now, seconds until more are free)``, taking none: a batch sizes its next block by it."""
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return 0, self._blocked_until - now
            start = self._window_start
            if start is None or now >= self._window_end():
                return (0, IN_FLIGHT_POLL) if self._still_on_the_way(now) else (self.limit, 0.0)
            if now < start:
                return 0, start - now
            window_end = self._window_end()
            free = self.limit - self._used
            return (free, 0.0) if free > 0 else (0, window_end - now)

    def observe(
        self, *, limit: int | None = None, remaining: int | None = None, reset_epoch: float | None = None
    ) -> None:
        """Learn from a response's ``X-RateLimit-*`` headers."""
        with self._lock:
            if limit and limit > 0:
                self.limit = limit
            if remaining is not None and self._window_start is not None:
                self._used = max(self._used, self.limit - remaining)
                if remaining == self.limit - 1:
                    # The server opened its window with this request, so no later than now. A
                    # request can leave long after its reservation (a busy event loop, a slow
                    # connect), so our window must not end before the server's does.
                    self._window_start = max(self._window_start, self._clock())
                    self._confirmed = True
            if reset_epoch is not None:
                end = self._clock() + (reset_epoch - time.time()) + 1.0
                self._window_start = end - self.window_seconds - self.margin

    def penalize(self, retry_after: float) -> None:
        """After a 429: nobody sends for ``retry_after`` seconds, then a fresh window starts."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + retry_after)
            self._window_start, self._used, self._confirmed = None, 0, False
            self._opened_late = False


class Limiter(Protocol):
    """What the request loop and the batch sender use: :class:`RateLimiter` or a shared budget.

    ``acquire_async`` is the one method that may do I/O (the shared budget asks Redis), so the
    async client awaits it instead of calling ``acquire`` inside its event loop.
    """

    @property
    def limit(self) -> int: ...
    @property
    def window_seconds(self) -> float: ...
    def acquire(self) -> float: ...
    async def acquire_async(self) -> float: ...
    def release(self, *, answered: bool) -> None: ...
    def headroom(self) -> tuple[int, float]: ...
    def observe(
        self, *, limit: int | None = None, remaining: int | None = None, reset_epoch: float | None = None
    ) -> None: ...
    def penalize(self, retry_after: float) -> None: ...


_registry: dict[tuple[str, str], RateLimiter] = {}
_registry_lock = threading.Lock()


def shared_limiter(base_url: str, api_key: str, limit: int, window_seconds: float) -> RateLimiter:
    """The process-wide limiter for (base URL, API key); created on first use.

    The key is stored only as a SHA-256 digest.
    """
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    identity = (base_url.rstrip("/"), digest)
    with _registry_lock:
        limiter = _registry.get(identity)
        if limiter is None:
            limiter = _registry[identity] = RateLimiter(limit, window_seconds)
        return limiter


def limit_for(plan: str | None, rate_limit_per_minute: int | None) -> int:
    """The budget to start with: an explicit per-minute number, else the plan's, else Pro's."""
    if rate_limit_per_minute:
        return int(rate_limit_per_minute)
    return PLAN_LIMITS.get((plan or "pro").lower(), PLAN_LIMITS["pro"])
