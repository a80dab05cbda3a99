"""Request overhead of the sync client vs raw httpx, side by side against the emulator on 127.0.0.1.

Both send the same ``GET /me`` requests one after another over one pooled connection; the budget
is made large enough that the limiter never waits, so the difference is the client's own work
(building the call, the request loop, limiter bookkeeping, error mapping, pydantic parsing).
Rounds alternate between the two so drift in the emulator hits both alike.

    python benchmarks/bench_overhead.py [--requests 400] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import EmulatorHandle, emulator_process


def measure(
    handle: EmulatorHandle, requests: int, rounds: int, ours_rates: list[float], raw_rates: list[float]
) -> None:
    with (
        WaslahClient(api_key=handle.api_key, base_url=handle.base_url, rate_limit_per_minute=10**7) as client,
        httpx.Client(base_url=handle.base_url, headers=handle.headers) as raw,
    ):
        client.get_me(), raw.get("/me")  # warm up both connection pools
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(requests):
                raw.get("/me").json()["data"]
            raw_rates.append(requests / (time.perf_counter() - started))
            started = time.perf_counter()
            for _ in range(requests):
                client.get_me()
            ours_rates.append(requests / (time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    ours_rates: list[float] = []
    raw_rates: list[float] = []
    # In its own process, as the real Waslah would be: its work does not compete for this GIL.
    with emulator_process("--time-scale", "0.02", seed={"plan_limits": {"pro": 10**7}}) as handle:
        measure(handle, args.requests, args.rounds, ours_rates, raw_rates)
        origin = handle.origin

    ours, raw_median = statistics.median(ours_rates), statistics.median(raw_rates)
    print(f"{args.requests} x GET /me per round, {args.rounds} rounds, emulator on {origin}\n")
    print(f"raw httpx            {raw_median:8.0f} req/s   (rounds: {', '.join(f'{r:.0f}' for r in raw_rates)})")
    print(f"WaslahClient         {ours:8.0f} req/s   (rounds: {', '.join(f'{r:.0f}' for r in ours_rates)})")
    print(f"\nratio ours / raw     {ours / raw_median:.2f}x requests per second")
    print(f"overhead per request {(1 / ours - 1 / raw_median) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
