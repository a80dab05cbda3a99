"""Triggers in one event loop share one connection pool (not timed).

Before the shared client, each trigger's hook opened its own ``httpx.AsyncClient``, so N
triggers held N TCP connections to Waslah. Now every hook on one connection in one loop leases
the same client: sockets are bounded by the pool (ASYNC_POOL_SIZE), every trigger still finishes, no 429,
and the last trigger to finish closes the pool.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest

from airflow_provider_waslah.client._http import ASYNC_POOL_SIZE
from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.process import emulator_process
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, shared_async_clients
from airflow_provider_waslah.triggers.waslah import WaslahMessageTrigger
from tests.triggers.support import api_requests, send_bulk

TRIGGERS = 300
POOL = ASYNC_POOL_SIZE


@pytest.fixture
def waslah_process() -> Iterator[EmulatorHandle]:
    with emulator_process("--time-scale", "1") as handle:
        yield handle


def open_sockets(port: int) -> int:
    """This process's TCP connections to the emulator's port, in any state but closed."""
    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status != psutil.CONN_CLOSE
    )


@pytest.mark.timeout(240)
async def test_triggers_in_one_loop_share_one_pool(
    waslah_process: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = waslah_process.new_key()
    poller = waslah_process.new_key(plan_limits={"pro": 1_000_000})
    broadcast_ids = [
        send_bulk(sender, [f"0813{chunk:02d}{n:06d}" for n in range(100)], delay_min_sec=0, delay_max_sec=0)
        for chunk in range(TRIGGERS // 100)
    ]
    message_ids = sorted(
        entry["message_id"]
        for entries in waslah_process.ledger().values()
        for entry in entries
        if entry["broadcast_id"] in broadcast_ids
    )
    assert len(message_ids) == TRIGGERS
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", poller.airflow_connection(rate_limit_per_minute=1_000_000))
    port = urlsplit(poller.base_url).port
    assert port is not None
    loop = asyncio.get_running_loop()
    triggers = [WaslahMessageTrigger(m, target_statuses=["delivered"], poll_interval=0.5) for m in message_ids]
    peak = {"sockets": 0, "clients": 0}
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            peak["sockets"] = max(peak["sockets"], open_sockets(port))
            peak["clients"] = max(peak["clients"], shared_async_clients.count(loop))
            await asyncio.sleep(0.05)

    async def first_event(trigger: WaslahMessageTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    watcher = asyncio.create_task(watch())
    payloads = await asyncio.gather(*(first_event(t) for t in triggers))
    done.set()
    await watcher

    assert Counter(p["status"] for p in payloads) == {"success": TRIGGERS}
    assert peak["clients"] == 1
    assert 0 < peak["sockets"] <= POOL, peak
    statuses = Counter(entry["status"] for entry in api_requests(poller, contains="/messages/"))
    assert statuses[429] == 0 and statuses[200] >= TRIGGERS, statuses
    # The last trigger closed the shared pool.
    assert shared_async_clients.count(loop) == 0
    await asyncio.sleep(0.2)
    assert open_sockets(port) == 0


async def test_hooks_share_and_the_last_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_A", '{"conn_type": "waslah", "host": "http://127.0.0.1:9/api/v1", "password": "wsl_a1"}'
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_B", '{"conn_type": "waslah", "host": "http://127.0.0.1:9/api/v1", "password": "wsl_b1"}'
    )
    loop = asyncio.get_running_loop()
    first, second, other = (WaslahAsyncHook(c) for c in ("waslah_a", "waslah_a", "waslah_b"))
    client = await first.get_async_conn()
    assert await second.get_async_conn() is client
    assert await other.get_async_conn() is not client  # another key: another pool
    assert shared_async_clients.count(loop) == 2
    await first.aclose()
    assert shared_async_clients.count(loop) == 2  # second still holds it
    assert not client._http.is_closed
    await second.aclose()
    assert client._http.is_closed
    await other.aclose()
    assert shared_async_clients.count(loop) == 0


def test_a_closed_loop_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_A", '{"conn_type": "waslah", "host": "http://127.0.0.1:9/api/v1", "password": "wsl_a1"}'
    )
    hook = WaslahAsyncHook("waslah_a")

    async def lease() -> int:
        await hook.get_async_conn()
        return shared_async_clients.count()

    assert asyncio.run(lease()) >= 1  # never closed: the loop ends with the lease held
    # A new loop: the hook moves its lease; the closed loop's entry is pruned, not kept forever.
    assert asyncio.run(lease()) == 1
    assert shared_async_clients.count() == 0  # that loop is closed too: nothing counted as open


async def test_hooks_starting_together_read_the_connection_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow.providers.common.compat.connection as compat

    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_A", '{"conn_type": "waslah", "host": "http://127.0.0.1:9/api/v1", "password": "wsl_a1"}'
    )
    real, reads = compat.get_async_connection, []

    async def counting(conn_id: str, **kwargs: object) -> object:
        reads.append(conn_id)
        return await real(conn_id, **kwargs)

    monkeypatch.setattr(compat, "get_async_connection", counting)
    hooks = [WaslahAsyncHook("waslah_a") for _ in range(50)]
    clients = await asyncio.gather(*(hook.get_async_conn() for hook in hooks))
    assert reads == ["waslah_a"] and len({id(client) for client in clients}) == 1
    later = WaslahAsyncHook("waslah_a")
    assert await later.get_async_conn() is clients[0]
    assert reads == ["waslah_a", "waslah_a"]  # nothing cached: a later hook reads the connection again
    for hook in [*hooks, later]:
        await hook.aclose()
    assert shared_async_clients.count(asyncio.get_running_loop()) == 0
