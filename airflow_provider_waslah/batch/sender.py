"""Send prepared rows with bounded concurrency, at the key's budget, checkpointing as it goes.

Why concurrent: the shared limiter lets a key send its whole budget per window, but one
request at a time a far-away gateway (300 ms a request) allows 3 a second, a twentieth of a
Pro key's budget in a burst. :class:`BatchSender` keeps up to ``concurrency`` requests in flight
on worker threads; every request still takes its slot from the shared limiter, so the key's
budget is used and never exceeded, whatever else shares the key.

The main thread alone talks to the checkpoint and the log: it reserves each block of rows
before handing them out (a block is never larger than the limiter's free slots, so rows that
would only wait for the next window are not reserved yet), collects outcomes from a queue,
writes them every few seconds and logs progress at a steady rhythm.

What stops the batch (no new row is handed out; rows in flight finish and are recorded):

- a lost answer (:class:`WaslahSendOutcomeUnknownError`): the row is ``unknown``;
- an error that no other row would escape (401, 403, a disconnected instance, a rate-limit
  pause, Waslah down after the client's retries, a network failure).

A refusal that concerns the row alone (400, 413, 422) marks that row ``failed`` and the batch goes on.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from airflow_provider_waslah.batch.checkpoint import ACCEPTED, FAILED, UNKNOWN, Checkpoint
from airflow_provider_waslah.batch.prepare import PreparedRow
from airflow_provider_waslah.batch.progress import Progress
from airflow_provider_waslah.client.errors import WaslahAPIError, WaslahSendOutcomeUnknownError

#: HTTP statuses that concern one row only: the batch goes on.
ROW_ERROR_STATUSES = frozenset({400, 413, 422})
#: Seconds between two writes of outcomes while sending.
FLUSH_SECONDS = 5.0
#: How long the main thread waits for an outcome before checking the clock again.
_TICK = 0.2


def is_row_error(error: BaseException) -> bool:
    """True when Waslah refused this row only (bad body), not the key, the instance or the connection."""
    return isinstance(error, WaslahAPIError) and error.http_status in ROW_ERROR_STATUSES


@dataclass(frozen=True)
class Outcome:
    """What happened to one row: ``accepted`` (with ``message_id``), ``failed`` or ``unknown`` (with ``error``)."""

    row: PreparedRow
    status: str
    message_id: int | None = None
    error: BaseException | None = None


@dataclass
class SendReport:
    """What a :meth:`BatchSender.run` did."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    #: The failed and unknown rows (at most ``keep`` of each kind).
    problems: list[Outcome] = field(default_factory=list)
    #: The error that stopped the batch early, if any.
    stopped_by: BaseException | None = None
    #: Accepted message ids (for a wait on the whole batch), when collected.
    message_ids: list[int] = field(default_factory=list)


Headroom = Callable[[], tuple[int, float]]


class BatchSender:
    """Send rows through ``send`` on ``concurrency`` threads, recording every outcome in ``checkpoint``.

    :param send: sends one row and returns Waslah's receipt (anything with an ``id``); raises on error.
    :param checkpoint: where reservations and outcomes go.
    :param progress: counts outcomes; its lines go to ``log``.
    :param log: called with each progress line.
    :param concurrency: requests in flight at most.
    :param block_size: rows reserved per checkpoint write, at most.
    :param headroom: ``() -> (free slots, seconds until more)`` of the shared limiter; blocks are
        sized to it. ``None``: always ``block_size``.
    :param collect_ids: keep accepted message ids (for ``wait_for``).
    """

    def __init__(
        self,
        send: Callable[[PreparedRow], Any],
        checkpoint: Checkpoint,
        progress: Progress,
        log: Callable[[str], None],
        *,
        concurrency: int = 8,
        block_size: int = 500,
        headroom: Headroom | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        collect_ids: bool = False,
        keep_problems: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.send = send
        self.checkpoint = checkpoint
        self.progress = progress
        self.log = log
        self.concurrency = concurrency
        self.block_size = max(1, block_size)
        self.headroom = headroom
        self.flush_seconds = flush_seconds
        self.collect_ids = collect_ids
        self.keep_problems = keep_problems
        self._clock = clock
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        self._slots = threading.Semaphore(concurrency)
        self._in_flight = 0
        self._last_flush = clock()
        self.report = SendReport()

    def _work(self, row: PreparedRow) -> None:
        try:
            receipt = self.send(row)
        except WaslahSendOutcomeUnknownError as error:
            self._outcomes.put(Outcome(row, UNKNOWN, error=error))
        except Exception as error:
            self._outcomes.put(Outcome(row, FAILED, error=error))
        else:
            self._outcomes.put(Outcome(row, ACCEPTED, message_id=int(receipt.id)))
        finally:
            self._slots.release()

    def _take(self, outcome: Outcome) -> None:
        self._in_flight -= 1
        report, row = self.report, outcome.row
        if outcome.status == ACCEPTED:
            report.sent += 1
            self.progress.sent += 1
            self.checkpoint.record(ACCEPTED, row.key, row.number, outcome.message_id)
            if self.collect_ids and outcome.message_id is not None:
                report.message_ids.append(outcome.message_id)
            return
        text = f"{type(outcome.error).__name__}: {outcome.error}"
        if outcome.status == UNKNOWN:
            report.unknown += 1
            self.progress.unknown += 1
        else:
            report.failed += 1
            self.progress.failed += 1
        self.checkpoint.record(outcome.status, row.key, row.number, text)
        if len(report.problems) < self.keep_problems:
            report.problems.append(outcome)
        assert outcome.error is not None
        if report.stopped_by is None and (outcome.status == UNKNOWN or not is_row_error(outcome.error)):
            report.stopped_by = outcome.error

    def _drain(self, wait: float = 0.0) -> None:
        """Take every outcome ready (waiting up to ``wait`` for the first), log and flush when due."""
        try:
            self._take(self._outcomes.get(timeout=wait) if wait > 0 else self._outcomes.get_nowait())
            while True:
                self._take(self._outcomes.get_nowait())
        except queue.Empty:
            pass
        if (line := self.progress.due()) is not None:
            self.log(line)
        if self._clock() - self._last_flush >= self.flush_seconds:
            self.checkpoint.flush()
            self._last_flush = self._clock()

    def _next_block(self, rows: Iterator[PreparedRow]) -> list[PreparedRow]:
        size = self.block_size
        if self.headroom is not None:
            while True:
                free, wait = self.headroom()
                if free > 0 or self.report.stopped_by is not None:
                    break
                self._drain(min(max(wait, 0.01), _TICK))
            size = max(1, min(size, free))
        return list(islice(rows, size))

    def run(self, rows: Iterable[PreparedRow]) -> SendReport:
        """Send every row (until something stops the batch); write the last outcomes before returning."""
        source = iter(rows)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="waslah-batch") as pool:
            try:
                while self.report.stopped_by is None and (block := self._next_block(source)):
                    self.checkpoint.reserve([row.key for row in block])
                    self._last_flush = self._clock()
                    for index, row in enumerate(block):
                        while not self._slots.acquire(timeout=_TICK):
                            self._drain()
                        self._drain()  # a slot frees after its outcome is queued: see it before going on
                        if self.report.stopped_by is not None:
                            self._slots.release()
                            self.checkpoint.release(item.key for item in block[index:])
                            break
                        self._in_flight += 1
                        pool.submit(self._work, row)
                        self._drain()
                while self._in_flight:
                    self._drain(_TICK)
            finally:
                while self._in_flight:  # an error in the main thread: still record what the threads did
                    self._drain(_TICK)
                self.checkpoint.flush()
        return self.report
