"""Sends per second through this provider's hooks vs Airflow's ``HttpHook`` / ``HttpAsyncHook``.

The same ``POST /api/v1/messages/text`` requests, against the emulator in its own process with a
budget so high that no limiter ever waits. Rounds rotate the order of the sides so drift on a
shared machine hits all alike; medians and the ratios ours / anchor are printed.

Each side is used the way its users use it:

- ``WaslahHook``: one hook, ``send_text`` per message, one after another (what a task or the
  batch sender does); its client keeps connections alive.
- ``HttpHook.run`` (typical): ``hook.run(endpoint, json=..., headers=...)`` per message, as
  ``HttpOperator`` and ``HttpSensor`` call it. Each ``run()`` reads the connection and builds a
  new ``requests.Session``, so every request opens a new TCP connection.
- ``HttpHook session`` (its cheapest use): one ``hook.get_conn()`` session for all messages,
  each sent with ``hook.run_and_check(session, prepared_request, {})``: a kept-alive connection.
- ``WaslahAsyncHook``: one hook, ``send_text`` at concurrency C (what triggers sharing one
  client do).
- ``HttpAsyncHook.run`` (typical): per message at concurrency C, a new ``aiohttp.ClientSession``
  and ``await hook.run(session=..., endpoint=..., json=...)`` in it, as ``HttpTrigger`` does
  (one session per trigger run; ``run()`` without a session opens one per call too, but closes
  it before the body can be read). Each ``run()`` reads the connection; each session opens its
  own TCP connection.
- ``HttpAsyncHook session`` (its cheapest use): one ``hook.session()`` for all messages at
  concurrency C, one ``aiohttp`` connection pool.

Against the cheapest uses both sides keep connections alive and the emulator (same work per
request, sharing the machine's cores with the client) bounds both, so that ratio cannot go far
above 1; it shows what each client costs per request on top of the same server. So the script
also prints the CPU each side spent per send, in this process and in the emulator's.

The emulator runs with ``--time-scale 100``: no message it accepted changes status while sends
are timed, so its simulated deliveries (work a real gateway does elsewhere) do not land on
whichever side happens to run next.

    python -m benchmarks.bench_http_anchor [--messages 8000] [--rounds 8] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from benchmarks.bench_triggers import _machine

T = TypeVar("T")


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


SIDES = {
    "sync": ("WaslahHook", "HttpHook.run", "HttpHook session"),
    "async": ("WaslahAsyncHook", "HttpAsyncHook.run", "HttpAsyncHook session"),
}


def _rotated(sides: list[T], number: int) -> list[T]:
    return sides[number % len(sides) :] + sides[: number % len(sides)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=8000, help="sends per side")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    per_round = args.messages // args.rounds

    import aiohttp
    import psutil
    from airflow.providers.http.hooks.http import HttpAsyncHook, HttpHook
    from requests import Request

    from airflow_provider_waslah.emulator import emulator_process
    from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook

    rates: dict[str, list[float]] = {name: [] for names in SIDES.values() for name in names}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in rates}  # (ours, emulator) s per send
    print(f"machine: {_machine()}")
    with emulator_process("--time-scale", "100", seed={"plan_limits": {"pro": 10**7}}) as handle:
        _connections(handle.base_url, handle.api_key)
        emulator = psutil.Process().children(recursive=True)

        def cpu_now() -> tuple[float, float]:
            return time.process_time(), sum(sum(child.cpu_times()[:2]) for child in emulator)

        def record(name: str, started: float, cpu_before: tuple[float, float]) -> None:
            rates[name].append(per_round / (time.perf_counter() - started))
            (client_after, emulator_after), (client_before, emulator_before) = cpu_now(), cpu_before
            cpu[name].append(
                ((client_after - client_before) / per_round, (emulator_after - emulator_before) / per_round)
            )

        instance = handle.instance_key
        headers = {"Authorization": f"Bearer {handle.api_key}", "Accept": "application/json"}
        endpoint = "api/v1/messages/text"

        def body(i: int) -> dict[str, str]:
            return {"instance_key": instance, "to": f"0815{i:08d}", "text": "Halo"}

        ours, anchor = WaslahHook("waslah_bench"), HttpHook(method="POST", http_conn_id="http_bench")
        session = anchor.get_conn(headers)
        url = anchor.url_from_endpoint(endpoint)

        def session_send(i: int) -> Any:
            prepared = session.prepare_request(Request("POST", url, json=body(i)))
            return anchor.run_and_check(session, prepared, {}).json()

        sync_sides: list[tuple[str, Callable[[int], Any]]] = [
            ("WaslahHook", lambda i: ours.send_text(**body(i))),
            ("HttpHook.run", lambda i: anchor.run(endpoint, json=body(i), headers=headers).json()),
            ("HttpHook session", session_send),
        ]
        for _, send in sync_sides:
            send(0)  # warm up
        for number in range(args.rounds):
            for name, send in _rotated(sync_sides, number):
                before, started = cpu_now(), time.perf_counter()
                for i in range(per_round):
                    send(i)
                record(name, started, before)
        session.close()

        async def run_async() -> None:
            ours_async = WaslahAsyncHook("waslah_bench")
            anchor_async = HttpAsyncHook(method="POST", http_conn_id="http_bench")
            async with anchor_async.session() as http:

                async def ours_send(i: int) -> Any:
                    return await ours_async.send_text(**body(i))

                async def run_send(i: int) -> Any:
                    async with aiohttp.ClientSession() as own:
                        response = await anchor_async.run(session=own, endpoint=endpoint, json=body(i), headers=headers)
                        return await response.json()

                async def session_send(i: int) -> Any:
                    response = await http.run(endpoint=endpoint, json=body(i), headers=headers)
                    return await response.json()

                async_sides = [
                    ("WaslahAsyncHook", ours_send),
                    ("HttpAsyncHook.run", run_send),
                    ("HttpAsyncHook session", session_send),
                ]
                for _, send in async_sides:
                    await send(0)  # warm up
                for number in range(args.rounds):
                    for name, send in _rotated(async_sides, number):
                        before, started = cpu_now(), time.perf_counter()
                        await _concurrently(per_round, args.concurrency, send)
                        record(name, started, before)
            await ours_async.aclose()

        asyncio.run(run_async())
        statuses = [entry["status"] for entry in handle.requests()]
    print(f"machine after: {_machine()}")
    print(f"\n{per_round} x POST /messages/text per round, {args.rounds} rounds per side; requests by status:", end=" ")
    print({status: statuses.count(status) for status in sorted(set(statuses))})
    for mode, names in SIDES.items():
        print(f"\n{mode}{f' (concurrency {args.concurrency})' if mode == 'async' else ''}:")
        for name in names:
            values = rates[name]
            rounds = ", ".join(f"{v:.0f}" for v in values)
            client, server = (statistics.median(side) * 1000 for side in zip(*cpu[name], strict=True))
            print(
                f"  {name:22} {statistics.median(values):6.0f} msg/s  CPU per send: this process {client:.3f} ms,",
                end="",
            )
            print(f" emulator {server:.3f} ms  (rounds: {rounds})")
    print()
    for mode, (ours_name, *anchors) in SIDES.items():
        for anchor_name in anchors:
            ratio = statistics.median(rates[ours_name]) / statistics.median(rates[anchor_name])
            print(f"ratio {mode}: {ours_name} / {anchor_name} = {ratio:.2f}x messages per second")


if __name__ == "__main__":
    main()
