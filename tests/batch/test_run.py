"""One try of a batch: what a retry sends, what it lists, and the totals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import jinja2

from airflow_provider_waslah.batch.checkpoint import ACCEPTED, FAILED, UNKNOWN, Checkpoint
from airflow_provider_waslah.batch.prepare import PreparedRow, RowPreparer, prepare_all
from airflow_provider_waslah.batch.progress import Progress
from airflow_provider_waslah.batch.run import BatchRun
from airflow_provider_waslah.batch.sender import BatchSender
from airflow_provider_waslah.client.errors import WaslahSendOutcomeUnknownError
from tests.batch.support import MemoryStore

ENV = jinja2.Environment()


def try_once(store: MemoryStore, count: int = 10, lose: int | None = None, **options: Any) -> tuple[Any, list[int]]:
    """One try over ``count`` rows (plus one bad row); ``lose``: the row whose answer is lost."""
    preparer = RowPreparer(
        {"to": ENV.from_string("{{ row.phone }}"), "text": ENV.from_string("Halo {{ row.id }}")},
        {},
        instance_key="demo",
        row_key="id",
    )
    rows = [{"id": f"R{i}", "phone": f"0813{i:08d}"} for i in range(1, count + 1)] + [{"id": "BAD", "phone": "1"}]
    sent: list[int] = []

    def send(row: PreparedRow) -> Any:
        if row.number == lose:
            raise WaslahSendOutcomeUnknownError("lost", method="POST", path="/messages")
        sent.append(row.number)
        return SimpleNamespace(id=row.number)

    preparation = prepare_all(rows, preparer)
    with preparation.spool:
        run = BatchRun(preparation, Checkpoint(store), **options)
        result = run.send(
            lambda total: BatchSender(
                send, run.checkpoint, Progress(total), print, concurrency=1, collect_ids=run.collect_ids
            )
        )
    return result, sent


def test_a_retry_sends_only_rows_never_accepted_and_lists_the_unknown_one() -> None:
    store = MemoryStore()
    first, sent = try_once(store, lose=4)
    assert first.stopped_by is not None and sent == [1, 2, 3]
    second, sent = try_once(store)
    assert second.stopped_by is None and sent == [5, 6, 7, 8, 9, 10]
    assert second.totals == {"rows": 11, "sent": 6, "failed": 0, "skipped": 1, "unknown": 1, "resumed": 3}
    assert [(p["row"], p["key"], p["status"]) for p in second.problems] == [(4, "R4", UNKNOWN), (11, "BAD", "skipped")]
    assert second.problems[0]["to"] == "62813****0004"
    assert second.problems[0]["error"].startswith("earlier try: WaslahSendOutcomeUnknownError")
    assert second.to_xcom()["results"] == {"checkpoint": "memory:", "parts": second.parts}

    third, sent = try_once(store)  # everything known: nothing to send
    assert sent == [] and third.totals["resumed"] == 9 and third.totals["unknown"] == 1


def test_resend_unknown_sends_the_named_rows() -> None:
    store = MemoryStore()
    try_once(store, lose=4)
    _, sent = try_once(store, resend_unknown={"R4"})
    assert sent == [4, 5, 6, 7, 8, 9, 10]
    assert Checkpoint(store).load().rows["R4"].status == ACCEPTED


def test_a_refused_row_is_sent_again_by_the_next_try() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store)
    checkpoint.record(FAILED, "R2", 2, "WaslahValidationError")
    checkpoint.record(ACCEPTED, "R1", 1, 1)
    checkpoint.flush()
    result, sent = try_once(store, count=3, collect_ids=True)
    assert sent == [2, 3] and result.totals["resumed"] == 1
    assert sorted(result.message_ids) == [1, 2, 3]
