"""Shared rate limiter vs a naive "retry after Retry-After" loop, side by side against the emulator.

Both sides send the same N text messages from T threads with one API key whose budget is small
(L requests per W-second window, Laravel-style fixed window). Each side gets its own key, so the
two budgets never mix, and the sides run one after the other in the same process.

(a) ours:  ``WaslahClient`` per thread, sharing the process-wide limiter for the key
           (connection extras ``rate_limit_per_minute=L``, ``rate_limit_window_seconds=W``).
(b) naive: a plain ``httpx.Client`` per thread that, on a 429, sleeps ``Retry-After`` and retries.

Printed per side: requests that drew a 429, total requests sent, wall time, budget utilisation
(messages delivered / what the budget allowed in that wall time), duplicates in the ledger;
then the ratios naive / ours.

    python benchmarks/bench_rate_limit.py [--messages 120] [--threads 6] [--limit 20] [--window 2]
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import emulator_process

OURS_KEY = "wsl_bench_ours_0000000000"
NAIVE_KEY = "wsl_bench_naive_000000000"


def recipients(count: int, offset: int) -> list[str]:
    return [f"0812{offset + n:08d}" for n in range(count)]


def run_threads(work: Callable[[list[str]], None], numbers: list[str], threads: int) -> float:
    shares = [numbers[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def ours(base_url: str, limit: int, window: float) -> Callable[[list[str]], None]:
    def work(numbers: list[str]) -> None:
        with WaslahClient(
            api_key=OURS_KEY, base_url=base_url, rate_limit_per_minute=limit, rate_limit_window_seconds=window
        ) as client:
            for number in numbers:
                client.send_text(instance_key="demo", to=number, text="Tagihan jatuh tempo")

    return work


def naive(base_url: str) -> Callable[[list[str]], None]:
    def work(numbers: list[str]) -> None:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {NAIVE_KEY}"}) as client:
            for number in numbers:
                while True:
                    response = client.post(
                        "/messages/text", json={"instance_key": "demo", "to": "62" + number[1:], "text": "Tagihan"}
                    )
                    if response.status_code != 429:
                        response.raise_for_status()
                        break
                    time.sleep(float(response.headers.get("Retry-After", "1")))

    return work


def measure(handle: Any, name: str, key: str, wall: float, count: int, limit: int, window: float) -> dict[str, Any]:
    log = handle.api_requests(key=key)
    drew_429 = sum(1 for r in log if r["status"] == 429)
    allowed = limit * math.ceil(wall / window)
    ledger = handle.ledger()
    return {
        "side": name,
        "messages": count,
        "requests": len(log),
        "429s": drew_429,
        "wall_s": wall,
        "utilisation": count / allowed,
        "throughput": count / wall,
        "duplicates": sum(len(items) - 1 for items in ledger.values() if len(items) > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=120)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--limit", type=int, default=20, help="requests per window")
    parser.add_argument("--window", type=float, default=2.0, help="window length in seconds")
    args = parser.parse_args()

    keys = [{"key": key, "user_id": 1, "name": key} for key in (OURS_KEY, NAIVE_KEY)]
    seed = {"api_keys": keys, "plan_limits": {"pro": args.limit}, "rate_window_seconds": args.window}
    # In its own process, as the real Waslah would be: its work does not compete for this GIL.
    with emulator_process("--time-scale", "0.02", seed=seed) as handle:
        rows = []
        wall = run_threads(ours(handle.base_url, args.limit, args.window), recipients(args.messages, 0), args.threads)
        rows.append(measure(handle, "ours (shared limiter)", OURS_KEY, wall, args.messages, args.limit, args.window))
        handle.reset()
        handle.seed(**seed)
        wall = run_threads(naive(handle.base_url), recipients(args.messages, 0), args.threads)
        rows.append(measure(handle, "naive (retry on 429)", NAIVE_KEY, wall, args.messages, args.limit, args.window))
        origin = handle.origin

    print(
        f"{args.messages} messages, {args.threads} threads, budget {args.limit} requests / {args.window:g} s window "
        f"(emulator on {origin})\n"
    )
    header = f"{'side':<24}{'requests':>10}{'429s':>8}{'wall s':>9}{'msg/s':>8}{'utilisation':>13}{'duplicates':>12}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['side']:<24}{row['requests']:>10}{row['429s']:>8}{row['wall_s']:>9.2f}{row['throughput']:>8.2f}"
            f"{row['utilisation']:>12.0%}{row['duplicates']:>12}"
        )
    us, them = rows
    print("\nratios naive / ours:")
    print(f"  requests sent     {them['requests'] / us['requests']:.2f}x")
    print(
        f"  429s drawn        {them['429s']} vs {us['429s']}"
        + (f" ({them['429s'] / us['429s']:.1f}x)" if us["429s"] else "")
    )
    print(f"  wall time         {them['wall_s'] / us['wall_s']:.2f}x")
    print(f"  budget used       {them['utilisation'] / us['utilisation']:.2f}x")


if __name__ == "__main__":
    main()
