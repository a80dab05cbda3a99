"""Bad arguments are refused when the DAG is defined (the run-time cases are in test_operators_unit.py)."""

from __future__ import annotations

import pytest


def test_bad_wait_for_is_refused_when_the_dag_is_defined() -> None:
    from airflow_provider_waslah.client.errors import WaslahInvalidInputError
    from airflow_provider_waslah.operators.waslah import WaslahBroadcastOperator, WaslahSendTextOperator

    with pytest.raises(WaslahInvalidInputError, match="`wait_for`: must be None or one of sent, delivered, read"):
        WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="completed")
    with pytest.raises(WaslahInvalidInputError, match="`wait_for`: must be None or one of completed"):
        WaslahBroadcastOperator(
            task_id="b", instance_key="demo", recipients=["081234567890"], text="x", wait_for="read"
        )
    with pytest.raises(WaslahInvalidInputError, match="`chunk_size`"):
        WaslahBroadcastOperator(task_id="c", instance_key="demo", recipients=[], text="x", chunk_size=101)
