"""The single-message operators' checkpoint (Airflow 3.3's task state store), with a hook double."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_waslah._compat import AirflowException, AirflowFailException
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahSendOutcomeUnknownError, WaslahValidationError
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator
from tests.operators.doubles import Accessor, FakeTI, HookDouble, receipt

KEY = "waslah_message/sent"


def run(answer: Any, accessor: Accessor | None, **kwargs: Any) -> tuple[dict[str, Any], HookDouble]:
    hook = HookDouble(answer)
    op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="Halo", **kwargs)
    op.__dict__["hook"] = hook
    ctx: dict[str, Any] = {"ti": FakeTI(), "run_id": "manual__1"}
    if accessor is not None:
        ctx["task_state_store"] = accessor
    return op.execute(ctx), hook


def test_the_send_is_checkpointed_then_forgotten_when_done() -> None:
    accessor, states = Accessor(), []

    def answer(call: Call[Any]) -> Any:
        states.append(accessor.values.get(KEY))
        return receipt(id=12)

    result, hook = run(answer, accessor)
    assert states == [{"state": "in_flight", "to": "62812****7890"}]  # written before the send
    assert result["message_id"] == 12 and hook.calls == ["POST /messages/text"]
    assert KEY not in accessor.values  # done: a clear of the task sends again


def test_a_retry_finds_the_accepted_message_and_does_not_send() -> None:
    accessor = Accessor()
    accessor.set(KEY, {"state": "accepted", "result": {"message_id": 7, "status": "pending"}})
    result, hook = run(lambda call: pytest.fail("sent again"), accessor)
    assert result == {"message_id": 7, "status": "pending"} and hook.calls == []


def test_an_unknown_outcome_is_never_resent_and_says_how_to_force() -> None:
    accessor = Accessor()
    accessor.set(KEY, {"state": "in_flight", "to": "62812****7890"})
    with pytest.raises(AirflowFailException, match="stopped before Waslah answered") as error:
        run(lambda call: pytest.fail("sent again"), accessor)
    assert "state-store/waslah_message/sent" in str(error.value)


def test_a_lost_answer_keeps_the_in_flight_mark() -> None:
    accessor = Accessor()

    def lost(call: Call[Any]) -> Any:
        raise WaslahSendOutcomeUnknownError("ReadTimeout", method="POST", path="/messages/text")

    with pytest.raises(AirflowFailException, match="not retrying"):
        run(lost, accessor)
    assert accessor.values[KEY]["state"] == "in_flight"


def test_a_refused_send_forgets_the_mark() -> None:
    accessor = Accessor()

    def refused(call: Call[Any]) -> Any:
        raise WaslahValidationError(status_code=422, error="v", message="bad", method="POST", path="/")

    with pytest.raises(WaslahValidationError):
        run(refused, accessor)
    assert KEY not in accessor.values


def test_a_failure_after_the_send_is_retryable_only_with_a_checkpoint() -> None:
    op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="Halo")
    assert type(op._after_send_error("wait timed out")) is AirflowFailException  # no checkpoint: as before
    op.retry_resends = False
    error = op._after_send_error("wait timed out")
    assert type(error) is AirflowException and "a retry waits for it again" in str(error)
