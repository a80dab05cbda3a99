"""``WaslahBatchSendOperator`` unit tests: execute() with a hook double, arguments, checkpoint stores."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_waslah.batch.checkpoint import Checkpoint
from airflow_provider_waslah.checkpoints import (
    ObjectStorageCheckpoint,
    TaskStateStoreCheckpoint,
    VariableCheckpoint,
    checkpoint_store,
    keeps_itself,
)
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.ratelimit import RateLimiter
from airflow_provider_waslah.operators.batch import WaslahBatchSendOperator, auto_concurrency
from tests.operators.doubles import Accessor, FakeTI, HookDouble, receipt


def context(accessor: Accessor | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"ti": FakeTI(dag_id="d", task_id="remind"), "run_id": "manual__1", "ds": "2026-11-25"}
    if accessor is not None:
        ctx["task_state_store"] = accessor
    return ctx


def operator(hook: HookDouble, **kwargs: Any) -> WaslahBatchSendOperator:
    kwargs.setdefault("rows", [{"id": f"R{i}", "phone": f"0813{i:08d}"} for i in range(1, 6)])
    op = WaslahBatchSendOperator(
        task_id="remind", instance_key="demo", to="{{ row.phone }}", text="Halo {{ row.id }} {{ ds }}", **kwargs
    )
    limiter = RateLimiter(1000, 60)
    hook.client = SimpleNamespace(base_url="https://waslah.id/api/v1", limiter=limiter, call=hook.call)  # type: ignore[assignment]
    op.__dict__["hook"] = hook  # the cached property
    return op


def answer(call: Call[Any]) -> Any:
    return receipt(id=int(call.json["to"][-4:]), to=call.json["to"])  # type: ignore[index]


def test_execute_sends_one_message_per_row_and_checkpoints_them() -> None:
    hook, accessor = HookDouble(answer), Accessor()
    result = operator(hook, row_key="id").execute(context(accessor))
    assert result["totals"] == {"rows": 5, "sent": 5, "failed": 0, "skipped": 0, "unknown": 0, "resumed": 0}
    assert hook.calls == ["POST /messages"] * 5
    assert sorted(body["text"] for body in hook.bodies) == [f"Halo R{i} 2026-11-25" for i in range(1, 6)]
    assert result["results"]["checkpoint"] == "task_state_store:waslah_batch/"
    assert any(key.startswith("waslah_batch/part-") for key in accessor.values)  # kept: Airflow cleans it

    again = HookDouble(answer)
    second = operator(again, row_key="id").execute(context(accessor))  # e.g. a clear of the finished task
    assert again.calls == [] and second["totals"]["resumed"] == 5


def test_bad_rows_fail_before_any_request() -> None:
    hook = HookDouble(answer)
    rows = [{"id": "A", "phone": "0813000000001"}, {"id": "B", "phone": "12"}, "not a row"]
    with pytest.raises(WaslahInvalidInputError, match=r"2 invalid row\(s\); nothing was sent") as error:
        operator(hook, rows=rows, row_key="id").execute(context(Accessor()))
    assert "row 2 (B): `to`: '12' must have 8-15 digits" in str(error.value)
    assert "row 3: is a str, not a dict of columns" in str(error.value)
    assert hook.calls == []


def test_variables_store_is_deleted_on_success(monkeypatch: pytest.MonkeyPatch) -> None:
    variables: dict[str, Any] = {}
    fake = SimpleNamespace(
        get=lambda key, default=None, deserialize_json=False: variables.get(key, default),
        set=lambda key, value, description=None, serialize_json=False: variables.__setitem__(key, value),
        delete=lambda key: variables.pop(key, None),
    )
    monkeypatch.setattr("airflow.sdk.Variable", fake)
    result = operator(HookDouble(answer)).execute(context())  # no task state store: Airflow 3.1/3.2
    assert result["results"]["checkpoint"].startswith("variables:waslah_batch__")
    assert result["totals"]["sent"] == 5 and variables == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("False", False), ("true", True), ("INV-1, INV-2", {"INV-1", "INV-2"}), (["a"], {"a"})],
)
def test_resend_unknown_as_rendered(value: Any, expected: Any) -> None:
    assert operator(HookDouble(answer), resend_unknown=value)._resend_unknown() == expected


def test_arguments_are_checked_at_parse_time() -> None:
    with pytest.raises(WaslahInvalidInputError, match="exactly one of rows= or sql="):
        WaslahBatchSendOperator(task_id="t", instance_key="demo", to="x", text="x")
    with pytest.raises(WaslahInvalidInputError, match="sql_conn_id"):
        WaslahBatchSendOperator(task_id="t", instance_key="demo", to="x", text="x", sql="SELECT 1")
    with pytest.raises(WaslahInvalidInputError, match="concurrency"):
        WaslahBatchSendOperator(task_id="t", instance_key="demo", to="x", text="x", rows=[], concurrency=0)


def test_auto_concurrency_spends_the_budget_at_one_second_a_request() -> None:
    assert [auto_concurrency(RateLimiter(limit, 60)) for limit in (60, 1000, 5000)] == [4, 17, 64]


def test_stores_by_context(tmp_path: Path) -> None:
    accessor = Accessor()
    assert isinstance(checkpoint_store(context(accessor), "ns"), TaskStateStoreCheckpoint)
    assert isinstance(checkpoint_store(context(), "ns"), VariableCheckpoint)
    files = checkpoint_store(context(accessor), "ns", f"file://{tmp_path}")
    assert isinstance(files, ObjectStorageCheckpoint) and keeps_itself(files)
    assert not keeps_itself(VariableCheckpoint(context(), "ns"))

    checkpoint = Checkpoint(files)
    checkpoint.reserve(["k"])
    assert (tmp_path / "d" / "remind" / "-1" / "manual__1" / "part-000001.json").exists()
    assert Checkpoint(files).load().rows["k"].status == "reserved"
    files.delete("part-000001")
    files.delete("part-000001")  # missing: no error
    assert files.read("part-000001") is None
