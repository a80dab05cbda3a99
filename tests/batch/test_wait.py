"""One wait for a whole batch on the polling policy: bounded reads per poll, verdicts, id runs."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_waslah.batch.wait import BatchWait, decode_ids, encode_ids, reads_per_poll
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahEngineUnavailableError
from airflow_provider_waslah.polling import run_wait
from airflow_provider_waslah.waiting import drive


class Reader:
    """Answers ``GET /messages/{id}`` from a dict of statuses; counts reads per poll."""

    def __init__(self, statuses: dict[int, str]) -> None:
        self.statuses = statuses
        self.reads: list[int] = []
        self.down = False

    def call(self, call: Call[Any]) -> Any:
        if self.down:
            raise WaslahEngineUnavailableError(status_code=503, error=None, message="down", method="GET", path="/")
        message_id = int(call.path.rsplit("/", 1)[1])
        self.reads.append(message_id)
        status = self.statuses[message_id]
        return call.parse({"id": message_id, "status": status, "phone_number": "62813", "error_message": "gagal"})


def poll(wait: BatchWait, reader: Reader) -> Any:
    verdict = drive(wait.poll_once(), reader, _Log())
    assert verdict is not None
    return verdict


class _Log:
    def info(self, *args: Any) -> None: ...
    def warning(self, *args: Any) -> None: ...


def test_reads_at_most_the_budget_per_poll_and_never_reads_a_finished_one_again() -> None:
    statuses = dict.fromkeys(range(1, 11), "pending")
    reader, wait = Reader(statuses), BatchWait(range(1, 11), ["delivered"], reads_per_poll=4)
    assert poll(wait, reader).state == "waiting" and reader.reads == [1, 2, 3, 4]
    statuses.update(dict.fromkeys(range(1, 11), "read"))
    verdict = poll(wait, reader)
    assert reader.reads[4:] == [5, 6, 7, 8] and verdict.text.endswith("4 / 10 delivered, 0 failed, 6 pending")
    poll(wait, reader)
    verdict = poll(wait, reader)  # 9, 10 and then 1-4 again? no: those finished
    assert reader.reads[8:] == [9, 10, 1, 2, 3, 4][: len(reader.reads) - 8]
    assert verdict.state == "success" and wait.totals()["reached"] == 10


def test_failed_messages_over_the_ratio_fail_the_wait_early_and_are_named() -> None:
    statuses = {1: "failed", 2: "failed", 3: "pending", 4: "pending"}
    wait = BatchWait(range(1, 5), ["sent"], max_failed_ratio=0.25, reads_per_poll=10)
    verdict = poll(wait, Reader(statuses))
    assert verdict.state == "failed"
    assert verdict.text.startswith("2 of 4 batch messages failed (50.0%), more than max_failed_ratio=0.25")
    assert "Waslah message 1 to 62813 failed: gagal" in verdict.text
    assert wait.decide_fields(verdict.fields).state == "failed"  # the same verdict from a trigger event


def test_no_ratio_means_failures_do_not_fail_the_wait() -> None:
    wait = BatchWait([1, 2], ["delivered"], max_failed_ratio=None)
    assert poll(wait, Reader({1: "failed", 2: "delivered"})).state == "success"


def test_a_503_while_reading_is_ridden_out() -> None:
    statuses = {1: "pending", 2: "pending"}
    reader, wait = Reader(statuses), BatchWait([1, 2], ["sent"])
    reader.down = True
    verdict = poll(wait, reader)
    assert verdict.state == "waiting" and verdict.error is not None
    reader.down = False
    statuses.update({1: "sent", 2: "read"})
    assert drive(run_wait(wait, 0.001), reader, _Log()).state == "success"  # type: ignore[union-attr]


def test_reads_per_poll_is_a_share_of_the_budget() -> None:
    assert reads_per_poll(1000, 60, 10) == 83  # half of Pro's budget over 10 s
    assert reads_per_poll(60, 60, 1) == 1


@given(st.lists(st.integers(min_value=1, max_value=10**9), max_size=200))
def test_id_runs_round_trip(ids: list[int]) -> None:
    assert decode_ids(encode_ids(ids)) == sorted(set(ids))


def test_consecutive_ids_are_one_run() -> None:
    assert encode_ids(range(1, 100_001)) == [[1, 100_000]]
