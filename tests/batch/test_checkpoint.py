"""The checkpoint protocol: append-only parts, each key's last state, what a retry sends."""

from __future__ import annotations

import pytest

from airflow_provider_waslah.batch.checkpoint import (
    ACCEPTED,
    FAILED,
    RESERVED,
    UNKNOWN,
    Checkpoint,
    iter_results,
    part_name,
)
from tests.batch.support import MemoryStore


def test_reserve_then_outcomes_in_one_new_part_per_write() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store)
    checkpoint.reserve(["a", "b", "c"])
    checkpoint.record(ACCEPTED, "a", 1, 101)
    checkpoint.record(FAILED, "b", 2, "WaslahValidationError: bad")
    checkpoint.reserve(["d"])
    checkpoint.record(UNKNOWN, "c", 3, "WaslahSendOutcomeUnknownError: lost")
    checkpoint.flush()
    checkpoint.flush()  # nothing pending: no empty part
    assert store.writes == [part_name(1), part_name(2), part_name(3)]
    assert store.values[part_name(2)] == {
        "accepted": [["a", 101, 1]],
        "failed": [["b", "WaslahValidationError: bad", 2]],
        "reserved": ["d"],
    }

    resume = Checkpoint(store).load()
    assert resume.parts == 3
    assert {key: state.status for key, state in resume.rows.items()} == {
        "a": ACCEPTED,
        "b": FAILED,
        "c": UNKNOWN,
        "d": RESERVED,  # the try died before d's answer: unknown, never "not sent"
    }
    assert resume.state("a").message_id == 101  # type: ignore[union-attr]
    assert resume.count(UNKNOWN) == 2


def test_a_later_try_continues_the_numbering_and_later_states_win() -> None:
    store = MemoryStore()
    first = Checkpoint(store)
    first.reserve(["a", "b"])
    first.record(FAILED, "a", 1, "refused")
    first.release(["b"])  # reserved, never sent: the batch stopped
    first.flush()

    second = Checkpoint(store)
    resume = second.load()
    assert resume.rows["a"].status == FAILED and "b" not in resume.rows  # both are sent again
    second.reserve(["a", "b"])
    second.record(ACCEPTED, "a", 1, 7)
    second.record(ACCEPTED, "b", 2, 8)
    second.flush()
    assert store.writes[-2:] == [part_name(3), part_name(4)]
    assert {key: state.message_id for key, state in iter_results(store)} == {"a": 7, "b": 8}


def test_accepted_is_never_undone() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store)
    checkpoint.record(ACCEPTED, "a", 1, 5)
    checkpoint.flush()
    checkpoint.reserve(["a"])  # a forced resend of a row that was in fact accepted
    checkpoint.record(FAILED, "a", 1, "refused")
    checkpoint.record(UNKNOWN, "a", 1, "lost")
    checkpoint.flush()
    assert Checkpoint(store).load().rows["a"].status == ACCEPTED


def test_a_failed_write_keeps_the_outcomes_for_the_next_one() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store)
    checkpoint.record(ACCEPTED, "a", 1, 5)
    store.fail_writes = True
    with pytest.raises(OSError):
        checkpoint.flush()
    assert checkpoint.pending == 1 and checkpoint.parts == 0
    store.fail_writes = False
    checkpoint.flush()
    assert Checkpoint(store).load().rows["a"].message_id == 5


def test_delete_removes_every_part() -> None:
    store = MemoryStore()
    checkpoint = Checkpoint(store)
    for key in "abc":
        checkpoint.reserve([key])
    checkpoint.delete()
    assert store.values == {} and checkpoint.parts == 0
