"""One polling policy: a 20 s outage of 503s during a wait is ridden out the same way in all three modes.

The three ways a wait runs, side by side over real HTTP against the emulator, all inside the
same outage: an operator's ``wait_for`` in the worker (``deferrable=False``), the same operator
deferred (its trigger run in an event loop, then ``execute_complete``), and a sensor poking.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_waslah.client import WaslahClient
from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator
from airflow_provider_waslah.sensors.waslah import WaslahMessageSensor

OUTAGE_SECONDS = 20.0
POLL = 1.0

pytestmark = pytest.mark.timeout(120)


class FakeTI:
    """The few task-instance methods a deferring operator uses: its XComs, kept in a dict."""

    task_id = "send"
    map_index = -1

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int) -> Any:
        return self.xcoms.get(key)


def run_mode(mode: str, message_id: int) -> dict[str, Any]:
    """Wait for ``message_id`` to be delivered in one of the three modes; the XCom it returns."""
    if mode == "sensor":
        sensor = WaslahMessageSensor(
            task_id="wait",
            message_id=message_id,
            target_statuses=["delivered"],
            poke_interval=POLL,
            timeout=90,
            mode="poke",
        )
        return sensor.execute({})  # type: ignore[arg-type,no-any-return]
    operator = WaslahSendTextOperator(
        task_id="send",
        instance_key="demo",
        to="6281234567801",
        text="x",
        wait_for="delivered",
        poll_interval=POLL,
        deferrable=mode == "deferred",
    )
    result = {"message_id": message_id, "status": "pending"}
    operator._send = lambda context: dict(result)  # type: ignore[method-assign]  # sent before the outage
    ti = FakeTI()
    context: Any = {"ti": ti}
    if mode == "worker":
        return operator.execute(context)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload  # type: ignore[no-any-return]
        raise AssertionError("the trigger yielded nothing")

    return operator.execute_complete(context, asyncio.run(first_event()))


def test_a_20_s_outage_of_503s_is_ridden_out_in_every_mode(
    waslah_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = waslah_emulator.new_key(time_scale=0.01)
    # No client-side retries: every 503 reaches the polling policy itself.
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", emulator.airflow_connection(max_retries=0))
    modes = ("worker", "deferred", "sensor")
    with WaslahClient(api_key=emulator.api_key, base_url=emulator.base_url) as client:
        ids = {
            mode: client.send_text(instance_key="demo", to=f"62812345678{index:02d}", text=mode).id
            for index, mode in enumerate(modes)
        }
    emulator.add_fault(route="GET */messages/*", status=503, count=100_000)

    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def target(mode: str) -> None:
        try:
            results[mode] = run_mode(mode, ids[mode])
        except BaseException as error:  # reported below, per mode
            errors[mode] = error

    threads = [threading.Thread(target=target, args=(mode,)) for mode in modes]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(OUTAGE_SECONDS)
    assert not errors, errors  # nobody gave up during the outage
    emulator.clear_faults()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started

    assert not errors, errors
    assert elapsed >= OUTAGE_SECONDS
    assert results["worker"]["status"] in ("delivered", "read")
    assert results["deferred"]["status"] in ("delivered", "read")
    assert results["sensor"]["status"] in ("delivered", "read") and results["sensor"]["id"] == ids["sensor"]
    polls = [e for e in emulator.requests() if e.get("method") == "GET" and "/messages/" in str(e.get("path"))]
    for mode in modes:
        statuses = [e["status"] for e in polls if str(e["path"]).endswith(f"/messages/{ids[mode]}")]
        # About one poll a second through the outage, then the one that saw it delivered.
        assert statuses.count(503) >= OUTAGE_SECONDS / POLL - 3, (mode, statuses)
        assert statuses[-1] == 200, (mode, statuses)
