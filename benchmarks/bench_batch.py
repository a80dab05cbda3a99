"""The batch sender against a far-away gateway, side by side with a serial loop; and its peak memory.

Part 1, speed: N personalised rows sent through the real engine (rendering, checks, checkpoint,
``BatchSender`` on a ``WaslahClient`` sharing the process-wide limiter) to the emulator in its
own process, with ``--latency`` seconds injected into every ``POST /messages`` (the real gateway
is far away) and a short rate window (L requests per W seconds). Beside it, the same engine
with one request in flight (a serial loop), on a smaller number of rows (it is that slow).
Printed per side: requests, 429s, wall time, messages per second and budget used: the messages
sent in the server's full windows over what the budget allowed in that time (the last,
partial window is left out; 100% means every window was spent in full, back to back).

Part 2, memory: 100,000 rows from a SQLite table through the same pipeline (read in chunks,
rendered, checked, spooled to disk, sent to an instant fake gateway, checkpointed to a store
that keeps nothing in memory), against reading all rows and rendering all messages into lists
first. Peak Python memory by ``tracemalloc``, and the ratio.

    python -m benchmarks.bench_batch [--rows 5000] [--serial-rows 100] [--latency 0.3]
                                     [--limit 1000] [--window 10] [--memory-rows 100000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import sqlalchemy

from airflow_provider_waslah.batch.checkpoint import Checkpoint
from airflow_provider_waslah.batch.prepare import PreparedRow, RowPreparer, prepare_all
from airflow_provider_waslah.batch.progress import Progress
from airflow_provider_waslah.batch.rows import iter_sql_rows
from airflow_provider_waslah.batch.run import BatchResult, BatchRun
from airflow_provider_waslah.batch.sender import BatchSender
from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import emulator_process
from airflow_provider_waslah.operators.batch import auto_concurrency

TEXT = "Halo {{ row.name }}, tagihan {{ row.invoice }} Rp {{ row.amount }} jatuh tempo {{ row.due }}"
ENV = jinja2.Environment()


class NullStore:
    """A checkpoint store that keeps nothing (the metadata database holds it in production); counts bytes."""

    location = "null:"

    def __init__(self) -> None:
        self.writes = 0

    def read(self, name: str) -> Any:
        return None

    def write(self, name: str, value: Any) -> None:
        self.writes += 1

    def delete(self, name: str) -> None:
        pass


def table_rows(count: int, offset: int = 0) -> Iterable[dict[str, Any]]:
    for i in range(offset, offset + count):
        yield {"id": i, "name": f"Pelanggan {i}", "invoice": f"INV-{i:06d}", "phone": f"0813{i:08d}",
               "amount": 1000 * i, "due": "2026-11-30"}  # fmt: skip


def preparer(trusted_origin: str | None = None) -> RowPreparer:
    templates = {"to": ENV.from_string("{{ row.phone }}"), "text": ENV.from_string(TEXT)}
    return RowPreparer(templates, {}, instance_key="demo", row_key="invoice", trusted_origin=trusted_origin)


def run_batch(rows: Iterable[Any], send: Callable[[PreparedRow], Any], concurrency: int, **sender: Any) -> BatchResult:
    preparation = prepare_all(rows, preparer())
    with preparation.spool:
        run = BatchRun(preparation, Checkpoint(NullStore()))
        return run.send(
            lambda total: BatchSender(
                send, run.checkpoint, Progress(total, 1e9), lambda line: None, concurrency=concurrency, **sender
            )
        )


# --- part 1: speed -------------------------------------------------------------------------------


def budget_used(log: list[dict[str, Any]], limit: int, window: float) -> float:
    """Messages in the server's full windows / what the budget allowed from the first to the last window's start."""
    times = sorted(datetime.fromisoformat(r["time"]).timestamp() for r in log if r["status"] == 202)
    starts: list[float] = []
    counts: list[int] = []
    for moment in times:
        if not starts or moment >= starts[-1] + window:
            starts.append(moment)
            counts.append(0)
        counts[-1] += 1
    if len(starts) < 2:  # within one window: the plain rate against the budget's
        return len(times) / max(times[-1] - times[0], 1e-9) / (limit / window) if len(times) > 1 else 0.0
    return sum(counts[:-1]) / (limit * (starts[-1] - starts[0]) / window)


def speed_side(handle: Any, name: str, rows: int, offset: int, concurrency: int, args: Any) -> dict[str, Any]:
    key = handle.new_key()
    client = WaslahClient(
        api_key=key.api_key,
        base_url=key.base_url,
        rate_limit_per_minute=args.limit,
        rate_limit_window_seconds=args.window,
        timeout=30,
    )

    def send(row: PreparedRow) -> Any:
        return client.call(row.call())

    started = time.perf_counter()
    result = run_batch(
        table_rows(rows, offset),
        send,
        concurrency,
        block_size=max(concurrency, int(args.limit / args.window * 5)),
        headroom=client.limiter.headroom,
    )
    wall = time.perf_counter() - started
    client.close()
    log = handle.api_requests(key=key.api_key)
    return {
        "side": name,
        "rows": rows,
        "sent": result.totals["sent"],
        "requests": len(log),
        "429s": sum(1 for r in log if r["status"] == 429),
        "wall": wall,
        "rate": result.totals["sent"] / wall,
        "budget": budget_used(log, args.limit, args.window),
        "concurrency": concurrency,
        "stopped_by": result.stopped_by,
    }


def speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    seed = {"plan_limits": {"pro": args.limit}, "rate_window_seconds": args.window}
    # In its own process, as the real Waslah would be: its work does not compete for this GIL.
    with emulator_process("--time-scale", "0.02", seed=seed) as handle:
        handle.add_fault(route="POST /api/v1/messages", status=None, latency=args.latency)
        limiter = SimpleNamespace(limit=args.limit, window_seconds=args.window)
        concurrency = args.concurrency or auto_concurrency(limiter)
        return [
            speed_side(handle, "batch (bounded concurrency)", args.rows, 0, concurrency, args),
            speed_side(handle, "serial loop", args.serial_rows, args.rows, 1, args),
        ]


# --- part 2: memory ------------------------------------------------------------------------------


def sqlite_table(path: Path, count: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id, name, invoice, phone, amount, due)")
        db.executemany("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?)", (tuple(r.values()) for r in table_rows(count)))


class SqliteHook:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get_conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def get_sqlalchemy_engine(self) -> Any:
        return sqlalchemy.create_engine(f"sqlite:///{self.path}")


def peak(work: Callable[[], Any]) -> tuple[float, float]:
    """(peak MiB, seconds) of ``work``."""
    tracemalloc.start()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top / 2**20, seconds


def memory(count: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "invoices.db"
        sqlite_table(path, count)
        sql = "SELECT * FROM invoices"

        def ours() -> None:
            run_batch(iter_sql_rows(SqliteHook(path), sql), lambda row: SimpleNamespace(id=row.number), 8)

        def load_everything() -> None:
            with sqlalchemy.create_engine(f"sqlite:///{path}").connect() as connection:
                rows = [dict(row) for row in connection.exec_driver_sql(sql).mappings()]
            check = preparer()
            prepared = [check.prepare(number, row) for number, row in enumerate(rows, start=1)]
            for row in prepared:
                assert isinstance(row, PreparedRow)
                row.call()

        return [("batch (streamed, spooled)", *peak(ours)), ("load all, then send", *peak(load_everything))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--serial-rows", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds added to every send")
    parser.add_argument("--limit", type=int, default=1000, help="requests per window")
    parser.add_argument("--window", type=float, default=10.0, help="window length in seconds")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the operator's automatic choice")
    parser.add_argument("--memory-rows", type=int, default=100_000)
    args = parser.parse_args()

    sides = speed(args)
    print(
        f"Part 1: {args.rows:,} rows, {args.latency * 1000:.0f} ms per send, budget {args.limit} / {args.window:g} s "
        f"({args.limit / args.window:g}/s)\n"
    )
    header = f"{'side':<30}{'in flight':>10}{'rows':>7}{'requests':>10}{'429s':>6}{'wall s':>9}{'msg/s':>8}"
    header += f"{'budget':>8}"
    print(header)
    print("-" * len(header))
    for side in sides:
        print(
            f"{side['side']:<30}{side['concurrency']:>10}{side['rows']:>7}{side['requests']:>10}{side['429s']:>6}"
            f"{side['wall']:>9.1f}{side['rate']:>8.1f}{side['budget']:>8.1%}"
        )
    for side in sides:
        if side["stopped_by"] is not None:
            print(f"{side['side']} STOPPED EARLY: {side['stopped_by']!r}")
    batch, serial = sides
    print(f"\nratio batch / serial: {batch['rate'] / serial['rate']:.1f}x messages per second")
    print(f"batch: {batch['budget']:.1%} of the budget, {batch['429s']} 429s")

    print(f"\nPart 2: peak Python memory for {args.memory_rows:,} rows from SQLite (tracemalloc)\n")
    results = memory(args.memory_rows)
    for name, mib, seconds in results:
        print(f"{name:<30}{mib:>9.1f} MiB{seconds:>9.1f} s")
    print(f"\nratio load-all / batch: {results[1][1] / results[0][1]:.1f}x peak memory")


if __name__ == "__main__":
    main()
