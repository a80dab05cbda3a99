"""The polling policy without I/O: steps in, verdicts out (Hypothesis for the transient-error rule)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.client.errors import (
    WaslahConnectionError,
    WaslahEngineUnavailableError,
    WaslahForbiddenScopeError,
    WaslahInvalidInputError,
    WaslahNotFoundError,
    WaslahRateLimitError,
    WaslahServerError,
    WaslahTimeoutError,
    WaslahUnauthorizedError,
)
from airflow_provider_waslah.client.models import Broadcast, Message
from airflow_provider_waslah.polling import (
    BroadcastWait,
    Failed,
    Fetch,
    MessageWait,
    Report,
    Sleep,
    Verdict,
    run_wait,
)


def api_error(cls: type, status: int) -> Exception:
    return cls(status_code=status, error=None, message="x", method="GET", path="/messages/1")  # type: ignore[no-any-return]


TRANSIENT = [
    lambda: WaslahConnectionError("refused", method="GET", path="/messages/1"),
    lambda: WaslahTimeoutError("read timeout", method="GET", path="/messages/1"),
    lambda: api_error(WaslahRateLimitError, 429),
    lambda: api_error(WaslahServerError, 500),
    lambda: api_error(WaslahEngineUnavailableError, 503),
]
PERMANENT = [
    lambda: api_error(WaslahUnauthorizedError, 401),
    lambda: api_error(WaslahForbiddenScopeError, 403),
    lambda: api_error(WaslahNotFoundError, 404),
    lambda: RuntimeError("connection waslah_default not found"),
]


def message(status: str, **extra: Any) -> Message:
    return Message(id=1, status=status, phone_number="6281234567890", **extra)


def drive(steps: Generator[Any, Any, Verdict], answer: Callable[[Any], Any], max_steps: int = 1000) -> tuple:
    """Run steps with ``answer(call)`` for every fetch; (verdict, the steps seen)."""
    seen: list[Any] = []
    reply: Any = None
    for _ in range(max_steps):
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value, seen
        seen.append(step)
        reply = None
        if isinstance(step, Fetch):
            try:
                reply = answer(step.call)
            except Exception as error:
                reply = Failed(error)
    raise AssertionError("the wait never ended")


@pytest.mark.parametrize("make_error", TRANSIENT)
def test_transient_errors_keep_the_wait_going(make_error: Callable[[], Exception]) -> None:
    answers = iter([make_error(), make_error(), message("delivered")])

    def answer(call: Any) -> Any:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    verdict, steps = drive(run_wait(MessageWait(1, ["delivered"]), poll_interval=2), answer)
    assert verdict.state == "success" and verdict.fields["data"]["status"] == "delivered"
    assert [type(step).__name__ for step in steps] == [
        "Fetch", "Report", "Sleep", "Fetch", "Report", "Sleep", "Fetch", "Report",
    ]  # fmt: skip
    warnings = [step for step in steps if isinstance(step, Report) and step.level == "warning"]
    assert len(warnings) == 2 and "1 in a row" in warnings[0].text and "2 in a row" in warnings[1].text
    assert all(step.seconds == 2 for step in steps if isinstance(step, Sleep))


@pytest.mark.parametrize("make_error", PERMANENT)
def test_permanent_errors_end_the_wait_with_the_error(make_error: Callable[[], Exception]) -> None:
    error = make_error()

    def answer(call: Any) -> Any:
        raise error

    verdict, steps = drive(run_wait(MessageWait(1), poll_interval=1), answer)
    assert verdict.state == "error" and verdict.error is error
    assert not any(isinstance(step, Sleep) for step in steps)
    assert verdict.payload()["error_type"] == type(error).__name__


@settings(max_examples=200, deadline=None)
@given(outcomes=st.lists(st.sampled_from(range(len(TRANSIENT))), max_size=30))
def test_any_run_of_transient_errors_is_ridden_out(outcomes: list[int]) -> None:
    answers = iter([TRANSIENT[index]() for index in outcomes] + [message("read")])

    def answer(call: Any) -> Any:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    verdict, steps = drive(run_wait(MessageWait(1, ["delivered"]), poll_interval=1), answer)
    assert verdict.state == "success"
    assert sum(isinstance(step, Sleep) for step in steps) == len(outcomes)


@pytest.mark.parametrize(
    ("status", "targets", "state"),
    [
        ("pending", ["sent"], "waiting"),
        ("sent", ["sent"], "success"),
        ("read", ["sent"], "success"),
        ("delivered", ["read"], "waiting"),
        ("failed", ["delivered"], "failed"),
        ("failed", ["failed"], "success"),
    ],
)
def test_message_verdicts(status: str, targets: list[str], state: str) -> None:
    verdict = MessageWait(1, targets).decide(message(status, error_message="Nomor tidak terdaftar"))
    assert verdict.state == state
    if state == "failed":
        assert "Nomor tidak terdaftar" in verdict.text


def broadcast(id: int, status: str = "processing", total: int = 10, sent: int = 0, failed: int = 0) -> Broadcast:
    return Broadcast(id=id, status=status, total=total, sent=sent, failed=failed, pending=total - sent - failed)


def test_broadcast_fetch_strategy_lists_once_and_never_rereads_finished_ones() -> None:
    calls: list[str] = []
    rounds = iter(
        [
            {1: broadcast(1, "completed", sent=10), 2: broadcast(2, sent=3)},  # 3 is not listed (older than 50)
            {2: broadcast(2, "completed", sent=10)},
        ]
    )
    listed: dict[int, Broadcast] = {}

    def answer(call: Any) -> Any:
        nonlocal listed
        calls.append(f"{call.method} {call.path}")
        if call.path == "/broadcasts":
            listed = next(rounds)
            return list(listed.values())
        broadcast_id = int(call.path.rsplit("/", 1)[1])
        return broadcast(broadcast_id, "completed", sent=10)

    wait = BroadcastWait([1, 2, 3])
    verdict, _ = drive(run_wait(wait, poll_interval=1), answer)
    assert verdict.state == "success" and verdict.fields["totals"]["sent"] == 30
    # Round 1: one list for all three, a GET for the one not listed; round 2: only 2 is unfinished.
    assert calls == ["GET /broadcasts", "GET /broadcasts/3", "GET /broadcasts/2"]


def test_broadcast_over_the_failed_ratio_fails_without_waiting_for_the_rest() -> None:
    wait = BroadcastWait([1], max_failed_ratio=0.1)
    verdict = wait.decide([broadcast(1, sent=2, failed=3)])
    assert verdict.state == "failed" and "max_failed_ratio" in verdict.text


def test_a_decision_is_the_same_from_a_trigger_event() -> None:
    wait = MessageWait(1, ["delivered"])
    verdict = wait.decide(message("failed", error_message="Nomor tidak terdaftar"))
    again = wait.decide_fields(verdict.payload())
    assert again == verdict


@pytest.mark.parametrize("bad", [0, -1, 1.5, "abc", None, True, "²", float("inf")])
def test_bad_ids_are_refused_before_any_request(bad: Any) -> None:
    with pytest.raises(WaslahInvalidInputError, match="message_id"):
        MessageWait(bad)
