"""Broadcast scaling: ``WaslahBroadcastOperator.execute()`` to 1,000 ... 10,000 recipients.

A real ``WaslahHook`` against the emulator in its own process (unlimited key, no pacing
delays); ``wait_for=None``, so the requests are the send path only (one ``GET /broadcasts`` to
find chunks of an earlier try, then one ``POST /messages/bulk`` per 100 recipients); with
``wait_for`` each poll adds one ``GET /broadcasts/{id}`` per unfinished chunk. Printed per size:
requests, requests per recipient, wall time and time per recipient, and the Python heap peak
(tracemalloc) during execute().

    python -m benchmarks.bench_broadcast [--sizes 1000,2000,5000,10000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from types import SimpleNamespace

from benchmarks.bench_triggers import _machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,2000,5000,10000")
    args = parser.parse_args()

    from airflow_provider_waslah.emulator import emulator_process
    from airflow_provider_waslah.operators.waslah import WaslahBroadcastOperator

    print(f"machine: {_machine()}")
    with emulator_process("--time-scale", "0.01", seed={"plan_limits": {"pro": 10**7}}) as handle:
        os.environ["AIRFLOW_CONN_WASLAH_BENCH"] = json.dumps(
            {
                "conn_type": "waslah",
                "host": handle.base_url,
                "password": handle.api_key,
                "extra": {"rate_limit_per_minute": 10**7},
            }
        )
        rows = []
        for run, size in enumerate(int(s) for s in args.sizes.split(",")):
            recipients = [f"0816{run:02d}{n:06d}" for n in range(size)]
            operator = WaslahBroadcastOperator(
                task_id=f"broadcast_{size}",
                waslah_conn_id="waslah_bench",
                instance_key=handle.instance_key,
                recipients=recipients,
                text="Promo",
                delay_min_sec=0,
                delay_max_sec=0,
            )
            context = {
                "ti": SimpleNamespace(dag_id="bench", task_id=operator.task_id, map_index=-1),
                "run_id": f"bench_{run}",
            }
            before = len(handle.requests())
            tracemalloc.start()
            started = time.perf_counter()
            operator.execute(context)  # type: ignore[arg-type]
            wall = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            requests = len(handle.requests()) - before
            rows.append((size, requests, wall, peak))
    print(f"machine after: {_machine()}\n")
    print(f"{'recipients':>10} {'requests':>8} {'req/recipient':>13} {'wall s':>7}", end=" ")
    print(f"{'µs/recipient':>12} {'heap peak MiB':>13}")
    for size, requests, wall, peak in rows:
        print(
            f"{size:>10} {requests:>8} {requests / size:>13.4f} {wall:7.2f} {wall / size * 1e6:12.0f} "
            f"{peak / 2**20:13.1f}"
        )


if __name__ == "__main__":
    main()
