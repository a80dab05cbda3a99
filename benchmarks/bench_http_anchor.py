"""Sends per second through this provider's hooks vs Airflow's ``HttpHook`` / ``HttpAsyncHook``.

The same ``POST /api/v1/messages/text`` requests, against the emulator in its own process with a
budget so high that no limiter ever waits. Rounds alternate between the sides so drift on a
shared machine hits both alike; medians and the ratio ours / anchor are printed.

- sync: ``WaslahHook.send_text`` one after another vs ``HttpHook(method="POST").run(...)``
  (each as a task would use it: one hook, many calls).
- async: ``WaslahAsyncHook.send_text`` at concurrency C vs ``HttpAsyncHook.run`` at concurrency C
  on one ``aiohttp`` session (``hook.session()``, its cheapest use).

    python -m benchmarks.bench_http_anchor [--messages 2000] [--rounds 4] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from benchmarks.bench_triggers import _machine


def _connections(base_url: str, api_key: str) -> None:
    parts = urlsplit(base_url)
    os.environ["AIRFLOW_CONN_WASLAH_BENCH"] = json.dumps(
        {"conn_type": "waslah", "host": base_url, "password": api_key, "extra": {"rate_limit_per_minute": 10**7}}
    )
    os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
        {"conn_type": "http", "host": parts.hostname, "port": parts.port, "schema": "http"}
    )


async def _concurrently(n: int, concurrency: int, send: Callable[[int], Awaitable[Any]]) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await send(i)

    await asyncio.gather(*(one(i) for i in range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="sends per side and mode")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    per_round = args.messages // args.rounds

    from airflow.providers.http.hooks.http import HttpAsyncHook, HttpHook

    from airflow_provider_waslah.emulator import emulator_process
    from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook

    rates: dict[str, list[float]] = {"WaslahHook": [], "HttpHook": [], "WaslahAsyncHook": [], "HttpAsyncHook": []}
    print(f"machine: {_machine()}")
    with emulator_process("--time-scale", "0.01", seed={"plan_limits": {"pro": 10**7}}) as handle:
        _connections(handle.base_url, handle.api_key)
        instance = handle.instance_key
        headers = {"Authorization": f"Bearer {handle.api_key}", "Accept": "application/json"}

        def body(i: int) -> dict[str, str]:
            return {"instance_key": instance, "to": f"0815{i:08d}", "text": "Halo"}

        ours, anchor = WaslahHook("waslah_bench"), HttpHook(method="POST", http_conn_id="http_bench")
        ours.send_text(**body(0)), anchor.run("api/v1/messages/text", json=body(0), headers=headers)  # warm up
        for number in range(args.rounds):
            sides: list[tuple[str, Callable[[int], Any]]] = [
                ("WaslahHook", lambda i: ours.send_text(**body(i))),
                ("HttpHook", lambda i: anchor.run("api/v1/messages/text", json=body(i), headers=headers).json()),
            ]
            for name, send in sides if number % 2 == 0 else reversed(sides):
                started = time.perf_counter()
                for i in range(per_round):
                    send(i)
                rates[name].append(per_round / (time.perf_counter() - started))

        async def run_async() -> None:
            ours_async = WaslahAsyncHook("waslah_bench")
            anchor_async = HttpAsyncHook(method="POST", http_conn_id="http_bench")
            async with anchor_async.session() as http:

                async def anchor_send(i: int) -> Any:
                    response = await http.run(endpoint="api/v1/messages/text", json=body(i), headers=headers)
                    return await response.json()

                async def ours_send(i: int) -> Any:
                    return await ours_async.send_text(**body(i))

                await ours_send(0), await anchor_send(0)  # warm up
                for number in range(args.rounds):
                    sides = [("WaslahAsyncHook", ours_send), ("HttpAsyncHook", anchor_send)]
                    for name, send in sides if number % 2 == 0 else reversed(sides):
                        started = time.perf_counter()
                        await _concurrently(per_round, args.concurrency, send)
                        rates[name].append(per_round / (time.perf_counter() - started))
            await ours_async.aclose()

        asyncio.run(run_async())
        statuses = [entry["status"] for entry in handle.requests()]
    print(f"machine after: {_machine()}")
    print(f"\n{per_round} x POST /messages/text per round, {args.rounds} rounds per side; requests by status:", end=" ")
    print({status: statuses.count(status) for status in sorted(set(statuses))})
    for name, values in rates.items():
        print(f"{name:16} {statistics.median(values):8.0f} msg/s   (rounds: {', '.join(f'{v:.0f}' for v in values)})")
    for ours_name, anchor_name, mode in (
        ("WaslahHook", "HttpHook", "sync"),
        ("WaslahAsyncHook", "HttpAsyncHook", "async"),
    ):
        ratio = statistics.median(rates[ours_name]) / statistics.median(rates[anchor_name])
        print(f"ratio {mode}: {ours_name} / {anchor_name} = {ratio:.2f}x messages per second")


if __name__ == "__main__":
    main()
