"""Thousands of deferred waits in one event loop: shared pool vs a pool per trigger vs HttpSensorTrigger.

N message triggers run in one asyncio loop, as in Airflow's triggerer, against the emulator in
its own process (its own GIL). Each side runs in a fresh child process so its peak RSS is its own;
sides are interleaved and repeated. Sides:

- **ours**: ``WaslahMessageTrigger`` (hooks in one loop share one client: one connection pool).
- **per-trigger pool**: the same trigger with the previous hook behaviour (each hook its own
  ``AsyncWaslahClient``, so its own connection pool), the baseline the shared pool replaces.
- **HttpSensorTrigger**: ``apache-airflow-providers-http``'s trigger on the same route
  (``GET /api/v1/messages/{id}``); it fires on the first non-404 answer.

Triggers run as Airflow's triggerer runs them (``TriggerRunner``): each is built as it starts,
one task at a time with a yield to the loop between two, runs to its end, is cleaned up and
dropped. An earlier version started all N in one tick, a burst no triggerer makes, whose
one-off stall set the p99 lag; the next one kept every trigger and its event until the last
fired, whose extra objects set off more of Python's full garbage collections.

Every message is already ``delivered`` when the triggers start, so each trigger of every side
needs exactly one successful ``GET``: the sides do the same work. Printed per side: triggers
finished, wall time, peak RSS added per trigger, p99 and max event-loop lag (a 10 ms heartbeat
task), peak open sockets to the emulator, requests that drew a 429, and Python's full garbage
collections during the run (how many, the longest, and the p99 lag of the heartbeats none of
them overlapped): a full collection stops the whole process for as long as it takes to scan
every object, most of them Airflow's own, whatever the triggers do.

    python -m benchmarks.bench_triggers [--triggers 5000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

SIDES = ("ours", "per-trigger pool", "HttpSensorTrigger")


# ---------------------------------------------------------------- child: one side, one process


def _peak_sockets(child: subprocess.Popen[str], port: int) -> int:
    """Peak open TCP sockets from ``child`` to the emulator, sampled from this process until it exits.

    Sampled here, not in the child: a thread there gets the GIL only when the event loop lets go
    of it, and missed whole runs (a peak of 0 sockets for a run that kept 10 open).
    """
    import psutil

    process, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            sockets = sum(1 for c in process.net_connections(kind="tcp") if c.raddr and c.raddr.port == port)
        except psutil.Error:  # exited between poll() and the read
            break
        peak = max(peak, sockets)
        time.sleep(0.005)
    return peak


def _unshared_trigger_class() -> type:
    """``WaslahMessageTrigger`` with the hook of before: one ``AsyncWaslahClient`` per hook."""
    from airflow_provider_waslah.client.client import AsyncWaslahClient
    from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, client_options
    from airflow_provider_waslah.triggers.waslah import WaslahMessageTrigger

    class OwnPoolHook(WaslahAsyncHook):
        async def get_async_conn(self) -> AsyncWaslahClient:
            if self._client is None:
                from airflow.providers.common.compat.connection import get_async_connection

                conn = await get_async_connection(self.waslah_conn_id, hook=self)
                self._client = AsyncWaslahClient(**client_options(conn))
            return self._client

        async def aclose(self) -> None:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    class OwnPoolTrigger(WaslahMessageTrigger):
        def _get_hook(self) -> WaslahAsyncHook:
            if self._hook is None:
                self._hook = OwnPoolHook(waslah_conn_id=self.waslah_conn_id)
            return self._hook

    return OwnPoolTrigger


async def _run_side(side: str, ids: list[int], base_url: str, api_key: str) -> dict[str, Any]:
    import psutil

    port = urlsplit(base_url).port or 80
    if side == "HttpSensorTrigger":
        from airflow.providers.http.triggers.http import HttpSensorTrigger

        os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        )
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

        def make(m: int) -> Any:
            return HttpSensorTrigger(
                endpoint=f"api/v1/messages/{m}", http_conn_id="http_bench", headers=headers, poke_interval=1.0
            )
    else:
        from airflow_provider_waslah.triggers.waslah import WaslahMessageTrigger

        os.environ["AIRFLOW_CONN_WASLAH_DEFAULT"] = json.dumps(
            {"conn_type": "waslah", "host": base_url, "password": api_key, "extra": {"rate_limit_per_minute": 10**7}}
        )
        cls = WaslahMessageTrigger if side == "ours" else _unshared_trigger_class()

        def make(m: int) -> Any:
            return cls(m, target_statuses=["delivered"], poll_interval=1.0)

    finished: list[bool] = []

    async def first_event(m: int) -> None:
        # As the triggerer does, a trigger is built when it starts, run to its end, and dropped:
        # the runner keeps running triggers only, and hands each event over (here: counted).
        trigger = make(m)
        events: AsyncIterator[Any] = trigger.run()
        fired = False
        async for event in events:
            payload = event.payload
            if not fired:
                finished.append(payload is True or (isinstance(payload, dict) and payload.get("status") == "success"))
                fired = True
        await trigger.cleanup()

    beats: list[tuple[float, float]] = []  # (when due, when it ran), loop time (time.monotonic)
    done = asyncio.Event()

    async def heartbeat() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            expected = loop.time() + 0.01
            await asyncio.sleep(0.01)
            beats.append((expected, loop.time()))

    # Full collections (generation 2) stop the whole process, loop included: timed, to tell them apart.
    collections: list[tuple[float, float]] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                collections.append((time.monotonic(), math.inf))
            elif collections:
                collections[-1] = (collections[-1][0], time.monotonic())

    base_rss = psutil.Process().memory_info().rss
    gc.callbacks.append(on_gc)
    beat = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    running: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def forget(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]

    for m in ids:
        # As Airflow's TriggerRunner.create_triggers starts them: one task at a time, yielding to the
        # loop between two (asyncio.sleep(0)), so running triggers and timers go on meanwhile.
        await asyncio.sleep(0)
        task = asyncio.create_task(first_event(m))
        running.add(task)
        task.add_done_callback(forget)
    while running:
        await asyncio.wait(set(running))
    wall = time.perf_counter() - started
    done.set()
    await beat
    gc.callbacks.remove(on_gc)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the kernel's own peak (KiB on Linux)
    if failures:
        print(f"{len(failures)} triggers failed, the first: {failures[0]!r}", file=sys.stderr)
    ok = sum(finished)
    lags = sorted(max(0.0, ran - due) for due, ran in beats)
    clear = sorted(  # heartbeats whose lateness no full collection overlapped
        max(0.0, ran - due) for due, ran in beats if not any(start < ran and end > due for start, end in collections)
    )
    return {
        "finished": ok,
        "wall": wall,
        "rss_per_trigger": (peak_rss - base_rss) / len(ids),
        "p99_lag": lags[int(len(lags) * 0.99)] if lags else 0.0,
        "max_lag": lags[-1] if lags else 0.0,
        "full_gcs": len(collections),
        "longest_gc": max((end - start for start, end in collections), default=0.0),
        "p99_lag_outside_gc": clear[int(len(clear) * 0.99)] if clear else 0.0,
    }


# ---------------------------------------------------------------- parent: emulator, messages, sides


def _machine() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            model = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load {load}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triggers", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.load(sys.stdin)
        print(json.dumps(asyncio.run(_run_side(args.child, spec["ids"], spec["base_url"], spec["api_key"]))))
        return

    from airflow_provider_waslah.client.client import WaslahClient
    from airflow_provider_waslah.emulator import emulator_process

    sides = [s for s in args.sides.split(",") if s]
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    print(f"machine: {_machine()}")
    with emulator_process("--time-scale", "0.01", seed={"plan_limits": {"pro": 10**7}}) as handle:
        with WaslahClient(api_key=handle.api_key, base_url=handle.base_url, rate_limit_per_minute=10**7) as client:
            for chunk in range((args.triggers + 99) // 100):
                recipients = [f"0814{chunk:03d}{n:05d}" for n in range(min(100, args.triggers - chunk * 100))]
                client.send_bulk(
                    instance_key=handle.instance_key,
                    recipients=recipients,
                    text="Promo",
                    delay_min_sec=0,
                    delay_max_sec=0,
                )
        ids = sorted(e["message_id"] for entries in handle.ledger().values() for e in entries)[: args.triggers]
        time.sleep(1.0)  # every message is delivered by now (time scale 0.01)
        for repeat in range(args.repeats):
            for side in sides if repeat % 2 == 0 else reversed(sides):
                key = handle.new_key()
                spec = {"ids": ids, "base_url": handle.base_url, "api_key": key.api_key}
                # Its output goes to a file: the triggers log to stdout, and a pipe read only at the
                # end fills up and blocks the child.
                with tempfile.TemporaryFile("w+") as output:
                    child = subprocess.Popen(
                        [sys.executable, "-m", "benchmarks.bench_triggers", "--child", side],
                        stdin=subprocess.PIPE,
                        stdout=output,
                        text=True,
                    )
                    assert child.stdin is not None
                    child.stdin.write(json.dumps(spec))
                    child.stdin.close()
                    sockets = _peak_sockets(child, urlsplit(handle.base_url).port or 80)
                    if child.wait() != 0:
                        raise RuntimeError(f"side {side} failed (exit {child.returncode})")
                    output.seek(0)
                    result = json.loads(output.read().strip().splitlines()[-1])
                result["sockets"] = sockets
                statuses = [e["status"] for e in key.api_requests(key=key.api_key)]
                result["requests"] = len(statuses)
                result["429s"] = statuses.count(429)
                results[side].append(result)
                print(f"  run {repeat + 1} {side}: {result}", flush=True)
        print(f"machine after: {_machine()}")

    print(f"\n{args.triggers} triggers in one event loop, {args.repeats} runs per side (medians)\n")
    header = f"{'side':20} {'finished':>8} {'wall s':>7} {'KiB/trig':>9} {'p99 lag ms':>10} {'max lag ms':>10}"
    header += f" {'sockets':>8} {'requests':>8} {'429s':>5}"
    header += f" {'full GCs':>8} {'longest GC ms':>13} {'p99 lag outside GCs ms':>22}"
    print(header)
    for side, runs in results.items():

        def med(field: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(r[field] for r in runs)

        print(
            f"{side:20} {min(r['finished'] for r in runs):>8} {med('wall'):7.2f} {med('rss_per_trigger') / 1024:9.1f} "
            f"{med('p99_lag') * 1000:10.1f} {med('max_lag') * 1000:10.1f} {max(r['sockets'] for r in runs):>8} "
            f"{med('requests'):8.0f} {max(r['429s'] for r in runs):>5} {med('full_gcs'):8.1f} "
            f"{med('longest_gc') * 1000:13.1f} {med('p99_lag_outside_gc') * 1000:22.1f}"
        )
    if "ours" in results:

        def median(side: str, field: str) -> float:
            return max(1e-9, statistics.median(r[field] for r in results[side]))

        for side in sides:
            if side != "ours":
                wall = median(side, "wall") / median("ours", "wall")
                rss = median(side, "rss_per_trigger") / median("ours", "rss_per_trigger")
                lag = median(side, "p99_lag") / median("ours", "p99_lag")
                print(f"ratio {side} / ours: wall {wall:.2f}x, RSS per trigger {rss:.2f}x, p99 lag {lag:.2f}x")


if __name__ == "__main__":
    main()
