"""1,000 message triggers in one event loop share one API key's budget without a single 429.

As in a triggerer: one process, one loop, every trigger with its own hook, all pacing through
the process-wide limiter of (base URL, key). The emulator runs a short rate window with a small
Pro budget so the budget really binds; the connection declares the same budget and window.
This is a correctness test (every trigger finishes, no 429), not a timing test.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pytest

from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.process import emulator_process
from airflow_provider_waslah.triggers.waslah import WaslahMessageTrigger
from tests.triggers.support import api_requests, send_bulk

TRIGGERS = 1000
BUDGET = 200  # requests per window, for the Pro plan
WINDOW = 2.0  # seconds


@pytest.fixture
def waslah_process() -> Iterator[EmulatorHandle]:
    """The emulator in its own process: with a 2 s window, a server sharing the test's GIL
    could count a batch late under load; over a real network Waslah has a 60 s window."""
    with emulator_process("--time-scale", "1", "--rate-window", str(WINDOW)) as handle:
        yield handle


@pytest.mark.timeout(240)
async def test_thousand_triggers_one_key_no_429(
    waslah_process: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    waslah_emulator = waslah_process
    sender = waslah_emulator.new_key(time_scale=1.0, rate_window_seconds=WINDOW, plan_limits={"pro": BUDGET})
    poller = waslah_emulator.new_key()
    # 1,000 messages from 10 broadcasts of 100 (10 requests with another key of the same user).
    broadcast_ids = [
        send_bulk(sender, [f"0812{chunk:02d}{n:06d}" for n in range(100)], delay_min_sec=0, delay_max_sec=0)
        for chunk in range(TRIGGERS // 100)
    ]
    ledger = waslah_emulator.ledger()
    message_ids = sorted(
        entry["message_id"]
        for entries in ledger.values()
        for entry in entries
        if entry["broadcast_id"] in broadcast_ids
    )
    assert len(message_ids) == TRIGGERS

    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT",
        poller.airflow_connection(plan="pro", rate_limit_per_minute=BUDGET, rate_limit_window_seconds=WINDOW),
    )
    # "delivered" comes 3 s after dispatch, so the first round of polls (5 s of budget) finds
    # many messages not there yet: those poll again, and the budget binds.
    triggers = [WaslahMessageTrigger(m, target_statuses=["delivered"], poll_interval=1.0) for m in message_ids]

    async def first_event(trigger: WaslahMessageTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    started = time.monotonic()
    payloads = await asyncio.gather(*(first_event(t) for t in triggers))
    elapsed = time.monotonic() - started

    assert Counter(p["status"] for p in payloads) == {"success": TRIGGERS}
    assert sorted(p["data"]["id"] for p in payloads) == message_ids

    polls = api_requests(poller, contains="/messages/")
    statuses = Counter(entry["status"] for entry in polls)
    everything = Counter(entry["status"] for entry in waslah_emulator.requests())
    seconds = [datetime.fromisoformat(entry["time"]).timestamp() for entry in polls]
    timeline = Counter(
        (round((s - seconds[0]) * 4) / 4, entry["status"]) for s, entry in zip(seconds, polls, strict=True)
    )
    assert statuses[429] == 0 and everything[429] == 0, (statuses, everything, sorted(timeline.items()))
    assert statuses[200] == len(polls) >= TRIGGERS
    # The budget did bind: more polls than one window allows, spread over several windows.
    assert len(polls) > BUDGET * 3
    busiest = max(sum(1 for s in seconds if start <= s < start + WINDOW) for start in seconds)
    print(
        f"\n{TRIGGERS} triggers: {len(polls)} GET /messages requests in {elapsed:.1f} s, "
        f"statuses {dict(statuses)}, busiest {WINDOW:g} s span {busiest} requests (budget {BUDGET})"
    )
