"""The short-window limiter case: a batch that reaches the server more than a window after its
slots were taken must draw no 429 (issue 15). It drew five before the limiter counted requests in
flight (``RateLimiter.release``): this test failed then.

Timeline (limit 5 per 1 s window, the limiter's margin 0.2 s): batch A takes all 5 slots at t0
but its requests are held 1.6 s on the way (a slow proxy, a stalled connect). At t0 + 1.3 s the
limiter's window is over, so batch B takes 5 fresh slots and reaches the server at once, opening
the server's window; batch A then arrives inside that same window: 10 requests for a budget of 5.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.process import emulator_process

LIMIT = 5
WINDOW = 1.0
HOLD = 1.6  # seconds batch A spends on the way: more than a window plus the margin


class HoldFirst(httpx.BaseTransport):
    """Forwards requests; the first ``LIMIT`` are held ``HOLD`` seconds before they leave."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._seen = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self._seen += 1
            held = self._seen <= LIMIT
        if held:
            time.sleep(HOLD)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def waslah_process() -> Iterator[EmulatorHandle]:
    with emulator_process("--time-scale", "1", "--rate-window", str(WINDOW)) as handle:
        yield handle


@pytest.mark.timeout(60)
def test_a_batch_held_past_its_window_draws_no_429(waslah_process: EmulatorHandle) -> None:
    key = waslah_process.new_key(time_scale=1.0, rate_window_seconds=WINDOW, plan_limits={"pro": LIMIT})
    client = WaslahClient(
        api_key=key.api_key,
        base_url=key.base_url,
        transport=HoldFirst(),
        rate_limit_per_minute=LIMIT,
        rate_limit_window_seconds=WINDOW,
        max_retries=3,
    )

    def batch() -> list[threading.Thread]:
        threads = [threading.Thread(target=client.get_me) for _ in range(LIMIT)]
        for thread in threads:
            thread.start()
        return threads

    first = batch()
    time.sleep(WINDOW + 0.3)  # the limiter's window (and margin) is over; batch A is still held
    second = batch()
    for thread in first + second:
        thread.join()
    client.close()
    statuses = Counter(entry["status"] for entry in waslah_process.api_requests(key=key.api_key))
    assert statuses[429] == 0, statuses
