"""``broadcast_plan``: chunking, naming and resume decisions, without Airflow or I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.broadcast_plan import (
    BroadcastContent,
    TaskIdentity,
    chunk_name,
    parse_chunk_name,
    plan_broadcast,
    reconcile,
)
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import Broadcast

TASK = TaskIdentity("sales", "notify", "manual__2026-11-25", -1)
TEXT = BroadcastContent(type="text", text="Promo akhir bulan", delay_min_sec=0, delay_max_sec=0)


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"6281300{index:06d}" for index in range(start, start + count)]


def plan(recipients: list[str], content: BroadcastContent = TEXT, **options: Any) -> Any:
    return plan_broadcast(task=TASK, instance_key="demo", recipients=recipients, content=content, **options)


def listed(chunks: Any, first_id: int = 1) -> list[Broadcast]:
    """What GET /broadcasts would show after ``chunks`` were sent (newest first)."""
    made = [
        Broadcast(id=first_id + i, name=chunk.name, status="completed", total=len(chunk.recipients))
        for i, chunk in enumerate(chunks)
    ]
    return made[::-1]


def test_chunks_of_100_each_validated_and_named() -> None:
    planned = plan(numbers(250), prefix="Promo")
    assert [len(chunk.recipients) for chunk in planned] == [100, 100, 50]
    assert [chunk.call.json["recipients"] for chunk in planned] == [  # type: ignore[index]
        numbers(100),
        numbers(100, 100),
        numbers(50, 200),
    ]
    assert all(chunk.call.json["name"] == chunk.name for chunk in planned)  # type: ignore[index]
    assert planned[2].name.startswith("Promo · sales.notify af:") and planned[2].name.endswith(" 3/3")
    assert parse_chunk_name(planned[2].name) == (TASK.digest, planned[2].plan_digest, 3, 3)


def test_bad_content_fails_when_planned_before_any_send() -> None:
    with pytest.raises(WaslahInvalidInputError, match="`text`"):
        plan(numbers(5), BroadcastContent(type="text", text=""))


def test_same_input_resumes_every_chunk_found() -> None:
    first = plan(numbers(250))
    resume = reconcile(plan(numbers(250)), listed(first[:2]), TASK)
    assert sorted(resume.found) == [1, 2] and resume.through == 2 and not resume.changed
    assert [resume.already_sent(n) for n in (1, 2, 3)] == [True, True, False]


def test_later_chunk_found_proves_the_earlier_ones() -> None:
    first = plan(numbers(250))
    resume = reconcile(plan(numbers(250)), listed(first[1:2]), TASK)  # chunk 1 fell out of the 50-item window
    assert resume.already_sent(1) and resume.already_sent(2) and not resume.already_sent(3)


def test_changed_recipients_with_the_same_chunk_count_do_not_pass_as_resumed() -> None:
    """The defect: 250 new recipients, 3 chunks as before, the retry found 'its' chunks by name."""
    first = plan(numbers(250))
    retry = plan(numbers(250, start=1000))
    assert [chunk.name for chunk in retry] != [chunk.name for chunk in first]
    resume = reconcile(retry, listed(first[:2]), TASK)
    assert resume.found == {} and resume.through == 0
    assert [b.name for b in resume.changed] == [first[1].name, first[0].name]
    assert not any(resume.already_sent(chunk.number) for chunk in retry)
    assert "Nothing was sent by this try" in resume.changed_input_text()


def test_changed_text_is_a_changed_input() -> None:
    first = plan(numbers(150))
    retry = plan(numbers(150), BroadcastContent(type="text", text="Promo baru", delay_min_sec=0, delay_max_sec=0))
    resume = reconcile(retry, listed(first), TASK)
    assert resume.found == {} and len(resume.changed) == 2


def test_change_in_chunk_one_is_not_hidden_by_an_unchanged_later_chunk() -> None:
    first = plan(numbers(300))
    recipients = numbers(300)
    recipients[5] = "6289990000001"  # only chunk 1 differs; chunks 2 and 3 hold the same numbers
    resume = reconcile(plan(recipients), listed(first[:3]), TASK)
    assert resume.found == {} and resume.through == 0 and len(resume.changed) == 3


def test_appended_recipients_resume_the_unchanged_chunks() -> None:
    first = plan(numbers(200))
    resume = reconcile(plan(numbers(260)), listed(first), TASK)
    assert sorted(resume.found) == [1, 2] and not resume.changed


def test_other_task_instances_and_foreign_names_are_ignored() -> None:
    other = TaskIdentity("sales", "notify", "manual__other", -1)
    theirs = plan_broadcast(task=other, instance_key="demo", recipients=numbers(100), content=TEXT)
    foreign = [Broadcast(id=99, name="Promo Desember", status="completed"), Broadcast(id=98, status="completed")]
    resume = reconcile(plan(numbers(100)), listed(theirs) + foreign, TASK)
    assert resume.found == {} and resume.changed == ()


def test_names_are_bounded_and_keep_their_tokens() -> None:
    task = TaskIdentity("d" * 250, "t", "r", 7)
    name = chunk_name("P" * 300, task, 999, 1000, "0123456789")
    assert len(name) <= 200 and name.endswith(" af:" + task.digest + "-0123456789 999/1000")
    assert parse_chunk_name(name) == (task.digest, "0123456789", 999, 1000)
    assert chunk_name(None, TaskIdentity("d", "t", "r", 7), 1, 1, "0" * 10).startswith("d.t[7] af:")


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=320),
    changed_at=st.integers(min_value=0, max_value=319),
    sent=st.integers(min_value=0, max_value=4),
)
def test_a_resumed_chunk_always_sent_exactly_this_input(count: int, changed_at: int, sent: int) -> None:
    """Whatever an earlier try sent, a chunk counted as already sent holds exactly this try's recipients."""
    before = numbers(count)
    after = list(before)
    if changed_at < count:
        after[changed_at] = "6281999" + f"{changed_at:06d}"
    first = plan(before)
    retry = plan(after)
    resume = reconcile(retry, listed(first[:sent]), TASK)
    for chunk in retry:
        if resume.already_sent(chunk.number):
            assert chunk.number <= min(sent, len(first))
            assert first[chunk.number - 1].recipients == chunk.recipients
