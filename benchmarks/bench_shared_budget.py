"""Per-process limiters vs one budget shared through Redis: P processes on one API key, side by side.

Both sides run P worker processes (``python -m tests.budget_processes``), each sending its share of
the messages with ``WaslahClient`` on the same key, whose budget is L requests per W-second fixed
window (Laravel-style, as Waslah counts). Each side has its own key on one emulator, in real time.

(a) per process: no ``rate_limit_storage``: every process paces itself with its own limiter.
(b) shared:      ``rate_limit_storage=redis://…``: every process takes its slots from one moving
                 window in a real redis-server started for the run.

Printed per side: requests, 429s, the fixed windows the accepted requests opened, the share of
those windows' budget used, wall time, messages per second and that rate as a share of L / W;
duplicates in the ledger.

    python -m benchmarks.bench_shared_budget [--processes 4] [--per-process 20] [--limit 20] [--window 3]
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_provider_waslah.emulator import emulator_process
from tests.budget_processes import Run, run_processes
from tests.redis_server import redis_server


def side(handle: Any, storage: str | None, args: argparse.Namespace, first_number: int) -> tuple[Run, int]:
    key = handle.new_key(time_scale=1.0, rate_window_seconds=args.window, plan_limits={"pro": args.limit})
    run = run_processes(
        key.base_url,
        key.api_key,
        lambda: key.api_requests(key=key.api_key),
        processes=args.processes,
        per_process=args.per_process,
        limit=args.limit,
        window=args.window,
        storage=storage,
        concurrency=args.concurrency,
        first_number=first_number,
    )
    numbers = {f"62812{first_number + n:08d}" for n in range(args.processes * args.per_process)}
    duplicates = sum(len(items) - 1 for number, items in key.ledger().items() if number in numbers and len(items) > 1)
    return run, duplicates


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--per-process", type=int, default=20, help="messages each process sends")
    parser.add_argument("--limit", type=int, default=20, help="requests per window")
    parser.add_argument("--window", type=float, default=3.0, help="window length in seconds")
    parser.add_argument("--concurrency", type=int, default=4, help="sending threads per process")
    args = parser.parse_args()

    with (
        redis_server() as redis,
        emulator_process("--time-scale", "1", "--rate-window", str(args.window)) as handle,
    ):
        rows = [("per process (no storage)", *side(handle, None, args, 0))]
        rows.append(("shared (Redis)", *side(handle, redis.url, args, 10**6)))

    total = args.processes * args.per_process
    print(
        f"{args.processes} processes x {args.per_process} messages ({total}) on one key, budget {args.limit} "
        f"requests / {args.window:g} s fixed window, {args.concurrency} threads per process\n"
    )
    header = (
        f"{'side':<26}{'sent':>6}{'requests':>10}{'429s':>7}{'windows':>9}{'budget used':>13}"
        f"{'wall s':>9}{'msg/s':>8}{'of L/W':>8}{'duplicates':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, run, duplicates in rows:
        rate = run.sent / run.wall_seconds if run.wall_seconds else 0.0
        print(
            f"{name:<26}{run.sent:>6}{run.requests:>10}{run.refused:>7}{run.windows:>9}{run.share:>12.0%}"
            f"{run.wall_seconds:>9.2f}{rate:>8.2f}{rate / (args.limit / args.window):>8.0%}{duplicates:>12}"
        )
        for error in run.errors[:3]:
            print(f"  error: {error[:200]}")
    (_, alone, _), (_, shared, _) = rows
    print("\nratios per process / shared:")
    print(f"  requests sent     {alone.requests / shared.requests:.2f}x")
    print(f"  429s drawn        {alone.refused} vs {shared.refused}")
    print(f"  wall time         {alone.wall_seconds / shared.wall_seconds:.2f}x")


if __name__ == "__main__":
    main()
