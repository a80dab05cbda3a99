"""Several OS processes sending on one API key, for the shared-budget tests and benchmark.

Each worker is ``python -m tests.budget_processes`` with its share of the messages: it builds a
client (``WaslahClient`` or ``AsyncWaslahClient``, with or without ``rate_limit_storage``), says
``ready``, waits for ``go`` on stdin (so imports do not stagger the start), sends, and prints a
JSON line. The parent reads the emulator's request log to judge the run the way Waslah counts:
fixed windows of ``window`` seconds, each opened by the first request after the previous one
ended (Laravel's throttle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    """What several processes did on one key, as the emulator saw it."""

    sent: int
    requests: int
    refused: int  #: requests answered 429
    windows: int  #: fixed windows the accepted requests opened
    limit: int
    timeline: list[float]  #: when each accepted request reached the emulator, seconds after the first
    wall_seconds: float  #: from the first worker's start to the last one's end
    errors: list[str]

    @property
    def share(self) -> float:
        """Accepted requests / what the windows they opened allowed (1.0: every window full)."""
        return (self.requests - self.refused) / (self.limit * self.windows) if self.windows else 0.0


def windows_opened(started: list[float], window: float) -> int:
    """How many fixed windows requests at ``started`` (epoch seconds) open, Laravel-style."""
    count, end = 0, float("-inf")
    for moment in sorted(started):
        if moment >= end:
            count, end = count + 1, moment + window
    return count


def run_processes(
    base_url: str,
    api_key: str,
    log: Any,
    *,
    processes: int,
    per_process: int,
    limit: int,
    window: float,
    storage: str | None,
    mode: str = "sync",
    concurrency: int = 4,
    first_number: int = 0,
    timeout: float = 300.0,
) -> Run:
    """Start ``processes`` workers, let them send ``per_process`` messages each, and judge the run.

    :param log: ``() -> list of request-log entries`` for the key (``handle.api_requests(key=...)``).
    :param first_number: recipients are numbered from here (runs on one emulator keep their ledgers apart).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    workers = []
    for index in range(processes):
        command = [sys.executable, "-m", "tests.budget_processes", "--base-url", base_url, "--key", api_key]
        offset = first_number + index * per_process
        command += ["--count", str(per_process), "--offset", str(offset), "--limit", str(limit)]
        command += ["--window", str(window), "--mode", mode, "--concurrency", str(concurrency)]
        if storage:
            command += ["--storage-env", "WASLAH_TEST_STORAGE"]
        worker_env = {**env, "WASLAH_TEST_STORAGE": storage or ""}  # not on the command line: it has a password
        workers.append(
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=worker_env,
                text=True,
            )
        )
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start: {line!r} {worker.communicate(timeout=30)[1][-2000:]}")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results, errors = [], []
        for worker in workers:
            out, err = worker.communicate(timeout=timeout)
            if worker.returncode != 0:
                errors.append(f"exit {worker.returncode}: {err[-2000:]}")
                continue
            results.append(json.loads(out.strip().splitlines()[-1]))
        wall = max((r["ended"] for r in results), default=0.0) - min((r["began"] for r in results), default=0.0)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    entries = [entry for entry in log() if entry["method"] == "POST"]
    accepted = [datetime.fromisoformat(entry["time"]).timestamp() for entry in entries if entry["status"] != 429]
    return Run(
        sent=sum(result["sent"] for result in results),
        requests=len(entries),
        refused=sum(1 for entry in entries if entry["status"] == 429),
        windows=windows_opened(accepted, window),
        limit=limit,
        timeline=[round(moment - min(accepted), 3) for moment in sorted(accepted)],
        wall_seconds=wall,
        errors=errors + [error for result in results for error in result["errors"]],
    )


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    storage = os.environ.get(args.storage_env) if args.storage_env else None
    return {
        "api_key": args.key,
        "base_url": args.base_url,
        "rate_limit_per_minute": args.limit,
        "rate_limit_window_seconds": args.window,
        "max_retry_wait": 600.0,
        "rate_limit_storage": storage or None,
    }


def _numbers(args: argparse.Namespace) -> list[str]:
    return [f"0812{args.offset + n:08d}" for n in range(args.count)]


def _send_sync(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_waslah.client.client import WaslahClient

    with WaslahClient(**_client_options(args)) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        began = time.time()
        errors: list[str] = []

        def send(number: str) -> None:
            try:
                client.send_text(instance_key="demo", to=number, text="Tagihan jatuh tempo")
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")

        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(send, _numbers(args)))
    return {"sent": args.count - len(errors), "errors": errors, "began": began, "ended": time.time()}


async def _send_async(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_waslah.client.client import AsyncWaslahClient

    async with AsyncWaslahClient(**_client_options(args)) as client:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        began = time.time()
        errors: list[str] = []
        gate = asyncio.Semaphore(args.concurrency)

        async def send(number: str) -> None:
            async with gate:
                try:
                    await client.send_text(instance_key="demo", to=number, text="Tagihan jatuh tempo")
                except Exception as error:
                    errors.append(f"{type(error).__name__}: {error}")

        await asyncio.gather(*(send(number) for number in _numbers(args)))
    return {"sent": args.count - len(errors), "errors": errors, "began": began, "ended": time.time()}


def main() -> None:
    parser = argparse.ArgumentParser(description="one sender process of a shared-budget run")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--storage-env", default="")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    result = _send_sync(args) if args.mode == "sync" else asyncio.run(_send_async(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
