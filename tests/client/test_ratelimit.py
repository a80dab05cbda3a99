"""The shared rate limiter: fake-clock unit tests, then the real budget shared across threads and loops."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_waslah.client import ratelimit
from airflow_provider_waslah.client.ratelimit import RateLimiter, limit_for, shared_limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def take(limiter: RateLimiter, times: int = 1) -> list[float]:
    """``acquire()`` ``times`` times; every slot granted comes back at once with the server's rate headers."""
    waits = [limiter.acquire() for _ in range(times)]
    for wait in waits:
        if wait == 0:
            limiter.release(answered=True)
    return waits


def test_the_budget_is_spent_then_the_next_window_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(3, window_seconds=10, clock=clock)
    assert take(limiter, 3) == [0, 0, 0]
    assert limiter.margin == 0.2
    assert limiter.acquire() == pytest.approx(10.2)  # window end + margin; no slot taken
    assert limiter.acquire() == pytest.approx(10.2)
    clock.now += 10.2
    assert take(limiter, 3) == [0, 0, 0]
    assert limiter.acquire() == pytest.approx(10.2)


def test_a_new_window_starts_once_the_old_one_is_over(clock: FakeClock) -> None:
    limiter = RateLimiter(2, window_seconds=10, clock=clock)
    take(limiter, 2)
    clock.now += 10.3
    assert take(limiter, 2) == [0, 0]
    assert limiter.acquire() > 0


def test_the_margin_grows_with_the_window() -> None:
    assert RateLimiter(1, window_seconds=60).margin == pytest.approx(1.2)
    assert RateLimiter(1, window_seconds=2).margin == pytest.approx(0.2)


def test_a_window_whose_start_a_response_confirmed_needs_little_margin(clock: FakeClock) -> None:
    """The answer to the window's first request arrived 0.3 s after it left: the server counted it before that."""
    limiter = RateLimiter(2, window_seconds=10, clock=clock)
    assert take(limiter, 2) == [0, 0]
    clock.now += 0.3
    limiter.observe(limit=2, remaining=1)
    assert limiter.margin == ratelimit.CONFIRMED_MARGIN
    assert limiter.acquire() == pytest.approx(10 + ratelimit.CONFIRMED_MARGIN)  # from the answer, not the send
    clock.now += 10 + ratelimit.CONFIRMED_MARGIN
    assert limiter.acquire() == 0
    assert limiter.margin == 0.2  # a new window, not confirmed yet


def test_remaining_tightens_the_budget(clock: FakeClock) -> None:
    """Another process spent most of the key's budget: Remaining tells us."""
    limiter = RateLimiter(10, window_seconds=10, clock=clock)
    assert limiter.acquire() == 0
    limiter.observe(limit=10, remaining=1)  # 9 used by someone
    assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(10.2)


def test_limit_header_resizes_the_budget(clock: FakeClock) -> None:
    limiter = RateLimiter(1000, window_seconds=10, clock=clock)
    limiter.acquire()
    limiter.observe(limit=2, remaining=1)  # also says this request opened the server's window
    assert limiter.limit == 2
    assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(10 + ratelimit.CONFIRMED_MARGIN)


def test_penalize_stops_everyone_then_starts_a_fresh_window(clock: FakeClock) -> None:
    limiter = RateLimiter(5, window_seconds=10, clock=clock)
    take(limiter)
    limiter.penalize(7)
    assert take(limiter, 5) == pytest.approx([7] * 5)  # nobody gets a slot
    clock.now += 7
    assert take(limiter, 5) == [0] * 5
    assert limiter.acquire() == pytest.approx(10.2)


def test_reset_header_moves_the_window_end(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit.time, "time", lambda: 5000.0)
    limiter = RateLimiter(2, window_seconds=10, clock=clock)
    limiter.acquire()
    limiter.observe(remaining=0, reset_epoch=5004.0)  # the server's window ends in 4 s
    assert limiter.acquire() == pytest.approx(4 + 1.0, abs=0.01)  # Reset + 1 s of clock slack


def test_a_new_window_waits_for_the_old_windows_requests_still_on_their_way(clock: FakeClock) -> None:
    """A request held past its window's end may open the server's next window: no slot until it is back."""
    limiter = RateLimiter(2, window_seconds=10, clock=clock)
    assert [limiter.acquire(), limiter.acquire()] == [0, 0]  # both still out
    limiter.release(answered=True)
    clock.now += 10.2
    assert limiter.acquire() == ratelimit.IN_FLIGHT_POLL
    assert limiter.headroom() == (0, ratelimit.IN_FLIGHT_POLL)
    clock.now += 1.4
    limiter.observe(limit=2, remaining=1)  # it came back: it opened the server's window just now
    limiter.release(answered=True)
    # The window now starts at that answer; the old window's two requests stay counted in it (the
    # other one may have landed there too), so the next slot is at its end.
    assert take(limiter) == [pytest.approx(10 + ratelimit.CONFIRMED_MARGIN)]


def test_a_late_request_with_no_answer_is_taken_to_open_the_next_window(clock: FakeClock) -> None:
    limiter = RateLimiter(2, window_seconds=10, clock=clock)
    assert [limiter.acquire(), limiter.acquire(), limiter.acquire()] == [0, 0, pytest.approx(10.2)]
    clock.now += 12
    limiter.release(answered=False)  # timed out: the server may have counted it at any moment until now
    limiter.release(answered=False)  # taken in the old window, perhaps counted in the same new one
    assert take(limiter, 1) == [pytest.approx(10.2)]  # both slots of the window that opened 0 s ago are gone
    clock.now += 10.2
    assert take(limiter, 2) == [0, 0]


def test_a_slot_never_given_back_stops_the_key_only_for_a_while(clock: FakeClock) -> None:
    limiter = RateLimiter(1, window_seconds=10, clock=clock)
    assert limiter.acquire() == 0  # never released (a bug elsewhere)
    clock.now += 10.2 + ratelimit.IN_FLIGHT_GIVE_UP
    assert limiter.acquire() == ratelimit.IN_FLIGHT_POLL
    clock.now += 1
    assert limiter.acquire() == 0


def test_threads_draw_exactly_the_budget_from_one_window(clock: FakeClock) -> None:
    limiter = RateLimiter(10, window_seconds=10, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def draw() -> None:
        for _ in range(25):
            (wait,) = take(limiter)
            with lock:
                waits.append(round(wait, 6))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = {wait: waits.count(wait) for wait in sorted(set(waits))}
    assert counts == {0: 10, 10.2: 90}  # 10 slots granted, 90 callers told to come back at the window end


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


def test_one_limiter_per_base_url_and_key() -> None:
    first = shared_limiter("https://waslah.id/api/v1", "wsl_aaaaaaaa", 60, 60)
    assert shared_limiter("https://waslah.id/api/v1/", "wsl_aaaaaaaa", 1000, 60) is first
    assert shared_limiter("https://waslah.id/api/v1", "wsl_bbbbbbbb", 60, 60) is not first
    assert shared_limiter("http://127.0.0.1:9/api/v1", "wsl_aaaaaaaa", 60, 60) is not first
    assert not any("wsl_aaaaaaaa" in part for identity in ratelimit._registry for part in identity)


@pytest.mark.parametrize(
    ("plan", "per_minute", "expected"),
    [
        ("free", None, 60),
        ("basic", None, 300),
        ("pro", None, 1000),
        ("Enterprise", None, 5000),
        (None, None, 1000),
        ("free", 20, 20),
        (None, 7, 7),
        ("unknown", None, 1000),
    ],
)
def test_limit_for(plan: str | None, per_minute: int | None, expected: int) -> None:
    assert limit_for(plan, per_minute) == expected


# ---------------------------------------------------------------- the real budget, over HTTP

LIMIT, WINDOW = 20, 2.0


@pytest.fixture(params=[False, True], ids=["laravel-headers", "reset-header-always"])
def small_budget(request: pytest.FixtureRequest, waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator at 20 requests per 2 s for the Pro key; waslah_default points at it with the same budget.

    Once with Laravel's headers (``Limit``/``Remaining`` only on success), once with
    ``X-RateLimit-Reset`` on every answer, which the limiter also follows.
    """
    waslah_emulator.seed(
        plan_limits={"pro": LIMIT}, rate_window_seconds=WINDOW, rate_limit_reset_header_always=request.param
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT",
        waslah_emulator.airflow_connection(rate_limit_per_minute=LIMIT, rate_limit_window_seconds=WINDOW),
    )
    return waslah_emulator


def times(entries: list[dict[str, Any]]) -> list[float]:
    return sorted(datetime.fromisoformat(entry["time"]).timestamp() for entry in entries)


def server_windows(stamps: list[float]) -> list[int]:
    """Requests per window as the server counts them: a fixed window opened by the first request."""
    counts: list[int] = []
    start = None
    for stamp in stamps:
        if start is None or stamp >= start + WINDOW:
            start = stamp
            counts.append(0)
        counts[-1] += 1
    return counts


def assert_paced(entries: list[dict[str, Any]], total: int) -> None:
    assert len(entries) == total
    assert [e["status"] for e in entries if e["status"] != 200] == []  # zero 429s
    counts = server_windows(times(entries))
    assert max(counts) <= LIMIT
    assert len(counts) >= -(-total // LIMIT)  # spread over as many windows as the budget needs
    assert sum(count == LIMIT for count in counts) >= total // LIMIT - 1  # and the budget used fully


def test_two_threads_with_two_hooks_share_one_budget(small_budget: Any) -> None:
    from airflow_provider_waslah.hooks.waslah import WaslahHook

    hooks = [WaslahHook(), WaslahHook()]
    errors: list[BaseException] = []

    def run(hook: WaslahHook) -> None:
        try:
            for _ in range(30):
                hook.get_me()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(hook,)) for hook in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert hooks[0].client.limiter is hooks[1].client.limiter
    assert_paced(small_budget.requests(), 60)


def test_a_thread_and_an_event_loop_share_one_budget(small_budget: Any) -> None:
    from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook

    sync_hook = WaslahHook()
    thread = threading.Thread(target=lambda: [sync_hook.get_me() for _ in range(20)])

    async def loop_side() -> Any:
        hook = WaslahAsyncHook()
        try:
            await asyncio.gather(*(hook.get_me() for _ in range(20)))
            return (await hook.get_async_conn()).limiter
        finally:
            await hook.aclose()

    started = time.monotonic()
    thread.start()
    limiter = asyncio.run(loop_side())
    thread.join(timeout=60)
    assert limiter is sync_hook.client.limiter
    assert_paced(small_budget.requests(), 40)
    assert time.monotonic() - started >= WINDOW
