"""The concurrent sender: bounded in-flight requests, outcomes checkpointed, what stops a batch."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_waslah.batch.checkpoint import ACCEPTED, FAILED, RESERVED, UNKNOWN, Checkpoint
from airflow_provider_waslah.batch.prepare import PreparedRow
from airflow_provider_waslah.batch.progress import Progress
from airflow_provider_waslah.batch.sender import BatchSender
from airflow_provider_waslah.client.errors import (
    WaslahInstanceNotConnectedError,
    WaslahSendOutcomeUnknownError,
    WaslahValidationError,
)
from tests.batch.support import MemoryStore


def rows(count: int) -> list[PreparedRow]:
    return [PreparedRow(i, f"k{i}", f"62813{i:08d}", {"to": f"62813{i:08d}", "text": "x"}) for i in range(1, count + 1)]


def api_error(cls: type, status: int) -> Exception:
    return cls(status_code=status, error="x", message="refused", method="POST", path="/messages")


class Gateway:
    """Answers sends after ``delay`` seconds; counts the most requests in flight at once."""

    def __init__(self, delay: float = 0.0, errors: dict[int, Exception] | None = None) -> None:
        self.delay = delay
        self.errors = errors or {}
        self.in_flight = 0
        self.peak = 0
        self.sent: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, row: PreparedRow) -> Any:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay)
            if row.number in self.errors:
                raise self.errors[row.number]
            with self._lock:
                self.sent.append(row.number)
            return SimpleNamespace(id=1000 + row.number)
        finally:
            with self._lock:
                self.in_flight -= 1


def sender(gateway: Gateway, store: MemoryStore, total: int, **options: Any) -> BatchSender:
    lines: list[str] = []
    options.setdefault("concurrency", 8)
    built = BatchSender(gateway, Checkpoint(store), Progress(total, interval=0.05), lines.append, **options)
    built.lines = lines  # type: ignore[attr-defined]
    return built


def test_every_row_once_with_at_most_concurrency_in_flight() -> None:
    gateway, store = Gateway(delay=0.01), MemoryStore()
    report = sender(gateway, store, 200, concurrency=8, block_size=50, collect_ids=True).run(rows(200))
    assert sorted(gateway.sent) == list(range(1, 201))
    assert 4 <= gateway.peak <= 8  # concurrent, and bounded
    assert (report.sent, report.failed, report.unknown, report.stopped_by) == (200, 0, 0, None)
    assert sorted(report.message_ids) == list(range(1001, 1201))
    resume = Checkpoint(store).load()
    assert {state.status for state in resume.rows.values()} == {ACCEPTED} and len(resume.rows) == 200
    # Each block was reserved before it was sent: 4 blocks of 50 (plus outcome writes).
    assert sum(len(part.get("reserved", [])) for part in store.values.values()) == 200


def test_a_row_refusal_fails_that_row_only() -> None:
    gateway = Gateway(errors={3: api_error(WaslahValidationError, 422)})
    store = MemoryStore()
    report = sender(gateway, store, 10).run(rows(10))
    assert (report.sent, report.failed, report.stopped_by) == (9, 1, None)
    assert report.problems[0].row.number == 3
    assert Checkpoint(store).load().rows["k3"].status == FAILED


def test_a_lost_answer_stops_the_batch_and_is_unknown() -> None:
    lost = WaslahSendOutcomeUnknownError("ReadTimeout", method="POST", path="/messages")
    gateway, store = Gateway(delay=0.002, errors={40: lost}), MemoryStore()
    report = sender(gateway, store, 500, concurrency=4, block_size=20).run(rows(500))
    assert report.stopped_by is lost and report.unknown == 1
    assert 39 <= report.sent < 60  # rows in flight finished; no new row was handed out
    resume = Checkpoint(store).load()
    assert resume.rows["k40"].status == UNKNOWN
    assert {state.status for key, state in resume.rows.items() if key != "k40"} == {ACCEPTED}
    # Rows reserved with k40's block but never handed out were released: the retry sends them.
    assert not any(state.status == RESERVED for state in resume.rows.values())
    assert len(resume.rows) == report.sent + 1


def test_an_error_for_every_row_stops_the_batch() -> None:
    down = api_error(WaslahInstanceNotConnectedError, 409)
    gateway = Gateway(errors=dict.fromkeys(range(5, 1000), down))
    report = sender(gateway, MemoryStore(), 999, concurrency=2, block_size=10).run(rows(999))
    assert report.stopped_by is down and report.sent == 4
    assert report.failed <= 3  # those already in flight, not 995


def test_blocks_follow_the_limiters_headroom() -> None:
    store = MemoryStore()
    free = iter([(0, 0.01), (0, 0.01), (3, 0.0), (10, 0.0), (10, 0.0), (10, 0.0)])
    sender(Gateway(), store, 20, block_size=50, headroom=lambda: next(free)).run(rows(20))
    reserved = [len(part["reserved"]) for part in store.values.values() if "reserved" in part]
    assert reserved == [3, 10, 7]


def test_progress_lines_at_a_steady_rhythm() -> None:
    built = sender(Gateway(delay=0.005), MemoryStore(), 200, concurrency=2, block_size=50)
    built.run(rows(200))
    assert len(built.lines) >= 3  # type: ignore[attr-defined]
    assert all(" / 200 sent, 0 failed, " in line for line in built.lines)  # type: ignore[attr-defined]


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        sender(Gateway(), MemoryStore(), 1, concurrency=0)
