"""The triggers run directly in an event loop against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_waslah.emulator import EmulatorHandle, unreachable_number
from airflow_provider_waslah.emulator.process import emulator_process
from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger, WaslahMessageTrigger
from tests.triggers.support import UNREACHABLE, api_requests, send_bulk, send_text

pytestmark = pytest.mark.timeout(120)


#: 10x faster than real time (the `emulator` fixture reads it).
TIME_SCALE = 0.1


async def events(trigger: Any) -> list[dict[str, Any]]:
    """Every event a trigger yields (run to exhaustion, as a check that it yields exactly one)."""
    return [event.payload async for event in trigger.run()]


def log_lines(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the triggers logged: Airflow routes ``self.log`` through structlog (stdout) or logging."""
    return [r.getMessage() for r in caplog.records] + capsys.readouterr().out.splitlines()


def parse_time(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"]).timestamp()


class TestSerialization:
    @pytest.mark.parametrize(
        "trigger",
        [
            WaslahMessageTrigger(message_id=7),
            WaslahMessageTrigger(message_id=7, target_statuses=["read"], waslah_conn_id="wa", poll_interval=0.5),
            WaslahBroadcastTrigger(broadcast_ids=[3]),
            WaslahBroadcastTrigger(broadcast_ids=[3, 4], max_failed_ratio=0.1, waslah_conn_id="wa", poll_interval=2),
        ],
        ids=["message-defaults", "message-custom", "broadcast-defaults", "broadcast-custom"],
    )
    def test_round_trip(self, trigger: WaslahMessageTrigger | WaslahBroadcastTrigger) -> None:
        import json

        classpath, kwargs = trigger.serialize()
        assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-safe
        assert classpath == f"airflow_provider_waslah.triggers.waslah.{type(trigger).__name__}"
        assert type(trigger)(**kwargs).serialize() == (classpath, kwargs)

    def test_defaults_are_the_documented_ones(self) -> None:
        _, message = WaslahMessageTrigger(message_id=1).serialize()
        assert message == {
            "message_id": 1,
            "target_statuses": ["sent", "delivered", "read"],
            "waslah_conn_id": "waslah_default",
            "poll_interval": 5.0,
        }
        _, broadcast = WaslahBroadcastTrigger(broadcast_ids=[1]).serialize()
        assert broadcast == {
            "broadcast_ids": [1],
            "max_failed_ratio": None,
            "waslah_conn_id": "waslah_default",
            "poll_interval": 10.0,
        }

    @pytest.mark.parametrize(
        ("build", "field"),
        [
            (lambda: WaslahMessageTrigger(message_id=1.5), "message_id"),
            (lambda: WaslahMessageTrigger(message_id=1, target_statuses=["done"]), "target_statuses"),
            (lambda: WaslahMessageTrigger(message_id=1, poll_interval=0), "poll_interval"),
            (lambda: WaslahBroadcastTrigger(broadcast_ids=[]), "broadcast_ids"),
            (lambda: WaslahBroadcastTrigger(broadcast_ids=[1], max_failed_ratio=2), "max_failed_ratio"),
        ],
    )
    def test_bad_arguments_name_the_field(self, build: Any, field: str) -> None:
        with pytest.raises(ValueError, match=field):
            build()


class TestMessageTrigger:
    async def test_success_once_delivered(self, emulator: EmulatorHandle) -> None:
        message_id = send_text(emulator)
        started = time.monotonic()
        trigger = WaslahMessageTrigger(message_id, target_statuses=["delivered"], poll_interval=0.05)
        [event] = await events(trigger)
        assert event["status"] == "success"
        assert event["data"]["id"] == message_id
        assert event["data"]["status"] in ("delivered", "read")
        assert f"Waslah message {message_id} is" in event["message"]
        # Delivery takes 0.3 s at this time scale: the trigger polled several times before it.
        assert time.monotonic() - started >= 0.25
        assert len(api_requests(emulator, contains=f"/messages/{message_id}")) >= 3
        assert trigger._hook is None  # the client was closed

    async def test_failed_carries_waslahs_reason(self, emulator: EmulatorHandle) -> None:
        message_id = send_text(emulator, to=UNREACHABLE)
        [event] = await events(WaslahMessageTrigger(message_id, poll_interval=0.05))
        assert event["status"] == "failed"
        assert event["data"]["status"] == "failed"
        reason = event["data"]["error_message"]
        assert reason and reason in event["message"]
        assert event["message"].startswith(f"Waslah message {message_id} to {UNREACHABLE} failed")

    async def test_unknown_id_is_an_error_with_the_404_message(self, emulator: EmulatorHandle) -> None:
        [event] = await events(WaslahMessageTrigger(987654, poll_interval=0.05))
        assert event["status"] == "error"
        assert event["http_status"] == 404
        assert event["error_code"] == "not_found"
        assert event["error_type"] == "WaslahNotFoundError"
        assert "987654" in event["api_message"] and event["api_message"] in event["message"]
        # Permanent: one request, no retry by the client or the trigger.
        assert len(api_requests(emulator, contains="/messages/987654")) == 1

    async def test_bad_key_is_an_error(self, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
        message_id = send_text(emulator)
        wrong = EmulatorHandle(emulator.origin, api_key="wsl_not_a_real_key_123456")
        monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", wrong.airflow_connection())
        [event] = await events(WaslahMessageTrigger(message_id, poll_interval=0.05))
        assert event["status"] == "error"
        assert event["http_status"] == 401
        assert "wsl_not_a_real_key" not in event["message"]

    async def test_missing_connection_is_an_error(self, emulator: EmulatorHandle) -> None:
        [event] = await events(WaslahMessageTrigger(1, waslah_conn_id="no_such_waslah_conn", poll_interval=0.05))
        assert event["status"] == "error"
        assert "no_such_waslah_conn" in event["message"]

    async def test_transient_errors_are_logged_then_retried_after_a_sleep(
        self,
        emulator: EmulatorHandle,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # No client-side retries, so each 503 reaches the trigger.
        monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", emulator.airflow_connection(max_retries=0))
        message_id = send_text(emulator)
        emulator.add_fault(route=f"GET */messages/{message_id}", status=503, count=3)
        poll_interval = 0.4
        with caplog.at_level(logging.WARNING):
            [event] = await events(WaslahMessageTrigger(message_id, poll_interval=poll_interval))
        assert event["status"] == "success"
        polls = api_requests(emulator, contains=f"/messages/{message_id}", any_key=True)
        assert [entry["status"] for entry in polls] == [503, 503, 503, 200]
        gaps = [parse_time(b) - parse_time(a) for a, b in itertools.pairwise(polls)]
        assert min(gaps) >= poll_interval * 0.9, gaps
        warnings = [line for line in log_lines(caplog, capsys) if "trying again" in line]
        assert len(warnings) == 3
        assert "WaslahEngineUnavailableError" in warnings[0] and "3 in a row" in warnings[2]

    async def test_cancelled_trigger_closes_its_client(self, emulator: EmulatorHandle) -> None:
        emulator.seed(time_scale=100)  # stays pending for minutes
        message_id = send_text(emulator)
        trigger = WaslahMessageTrigger(message_id, poll_interval=0.05)
        task = asyncio.ensure_future(events(trigger))
        await asyncio.sleep(0.5)
        assert trigger._hook is not None
        assert len(api_requests(emulator, contains=f"/messages/{message_id}")) >= 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.cleanup()
        assert trigger._hook is None


class TestBroadcastTrigger:
    async def test_completed_with_progress_lines(
        self, emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
    ) -> None:
        recipients = [f"0812345600{n:02d}" for n in range(6)]
        broadcast_id = send_bulk(emulator, [*recipients, UNREACHABLE], delay_min_sec=1, delay_max_sec=1)
        with caplog.at_level(logging.INFO):
            [event] = await events(WaslahBroadcastTrigger([broadcast_id], poll_interval=0.1))
        assert event["status"] == "success"
        assert event["totals"] == {"total": 7, "sent": 6, "failed": 1, "pending": 0, "progress_percent": 100}
        assert [b["id"] for b in event["broadcasts"]] == [broadcast_id]
        assert event["message"] == f"Waslah broadcast {broadcast_id} completed: 100% - sent 6/7, failed 1"
        logged = log_lines(caplog, capsys)
        lines = [line for line in logged if f"Waslah broadcast {broadcast_id}" in line]
        assert len(lines) >= 3, lines  # one per poll, while it progressed
        assert f"Waslah broadcast {broadcast_id} completed: 100% - sent 6/7, failed 1" in lines[-1]
        assert "100%" not in lines[0]  # progress was logged before the end, too

    async def test_too_many_failures_is_failed(self, emulator: EmulatorHandle) -> None:
        broadcast_id = send_bulk(emulator, ["081234560001", UNREACHABLE, unreachable_number(2)])
        [event] = await events(WaslahBroadcastTrigger([broadcast_id], max_failed_ratio=0.5, poll_interval=0.05))
        assert event["status"] == "failed"
        assert "more than max_failed_ratio=50%" in event["message"]
        assert event["totals"]["failed"] == 2

    async def test_several_broadcasts_summed_and_finished_ones_not_reread(self, emulator: EmulatorHandle) -> None:
        fast = send_bulk(emulator, ["081234560001"], delay_min_sec=0, delay_max_sec=0)
        slow = send_bulk(emulator, [f"0812345600{n:02d}" for n in range(2, 6)], delay_min_sec=1, delay_max_sec=1)
        [event] = await events(WaslahBroadcastTrigger([fast, slow], poll_interval=0.05))
        assert event["status"] == "success"
        assert event["totals"]["total"] == 5 and event["totals"]["sent"] == 5
        fast_reads = len(api_requests(emulator, contains=f"/broadcasts/{fast}"))
        slow_reads = len(api_requests(emulator, contains=f"/broadcasts/{slow}"))
        assert fast_reads < slow_reads

    async def test_unknown_broadcast_is_an_error(self, emulator: EmulatorHandle) -> None:
        [event] = await events(WaslahBroadcastTrigger([424242], poll_interval=0.05))
        assert event["status"] == "error"
        assert event["http_status"] == 404
        assert "424242" in event["message"]


@pytest.fixture
def separate_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """The emulator in its own process, 10x faster than real time, as ``waslah_default``.

    In-process, the emulator's server thread would share this interpreter's GIL and its request
    handling would show up as gaps in the loop under test.
    """
    with emulator_process("--time-scale", "0.1") as handle:
        monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", handle.airflow_connection())
        yield handle


@pytest.fixture
def no_gc_pauses() -> Iterator[None]:
    """Garbage collection over Airflow's large heap can pause any thread for a few hundred ms;
    that is the interpreter's doing, not the triggers', so it is kept out of the measurement."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


async def test_event_loop_is_never_blocked(separate_emulator: EmulatorHandle, no_gc_pauses: None) -> None:
    """A heartbeat coroutine beside 50 message triggers and a broadcast trigger keeps ticking.

    The triggerer warns when its loop is blocked for more than 0.2 s; the measured worst gap
    between 10 ms heartbeats must stay under that.
    """
    emulator = separate_emulator
    message_ids = [send_text(emulator, to=f"0812345{n:05d}") for n in range(50)]
    # Warm-up: the process's first connection lookup (on Airflow 3.1, in a worker thread) loads
    # Airflow's providers manager once, holding the GIL for a few hundred ms; steady state is measured.
    await events(WaslahMessageTrigger(message_ids[0], poll_interval=0.05))
    broadcast_id = send_bulk(emulator, [f"0813345{n:05d}" for n in range(5)])
    stop = asyncio.Event()
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.ensure_future(heartbeat())
    triggers: list[Any] = [WaslahMessageTrigger(m, target_statuses=["read"], poll_interval=0.05) for m in message_ids]
    triggers.append(WaslahBroadcastTrigger([broadcast_id], poll_interval=0.05))
    results = await asyncio.gather(*(events(t) for t in triggers))
    stop.set()
    await beat
    assert all(result[0]["status"] == "success" for result in results)
    assert len(gaps) > 20
    assert max(gaps) < 0.2, f"event loop blocked for {max(gaps):.3f} s"
