"""Deferred waits: ``dag.test()`` runs the triggers in-process and resumes in ``execute_complete``."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.emulator import UNREACHABLE_NUMBER as UNREACHABLE
from tests.operators.support import dag_source, numbers


def test_deferred_waits_resume_with_final_status_or_fail(dag_runner: Any, emulator: Any, capsys: Any) -> None:
    result = dag_runner.run(
        "ops_deferred",
        dag_source(
            f"""
with DAG("ops_deferred", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={{"retries": 1, "retry_delay": timedelta(0)}}):
    WaslahSendTextOperator(
        task_id="read", instance_key="demo", to="081234567890", text="Halo", wait_for="read",
        deferrable=True, poll_interval=0.05,
    )
    WaslahSendMessageOperator(
        task_id="unreachable", instance_key="demo", to="{UNREACHABLE}", text="Halo", wait_for="delivered",
        deferrable=True, poll_interval=0.05,
    )
    WaslahBroadcastOperator(
        task_id="broadcast", instance_key="demo", recipients={numbers(150)!r}, text="Promo",
        delay_min_sec=0, delay_max_sec=0, wait_for="completed", deferrable=True, poll_interval=0.1,
    )
"""
        ),
    )
    states = result.task_states()
    assert states == {"read": ["success"], "unreachable": ["failed"], "broadcast": ["success"]}

    read = result.xcom("read")
    assert read["status"] == "read" and read["to"] == "6281234567890"
    broadcast = result.xcom("broadcast")
    assert [entry["status"] for entry in broadcast["broadcasts"]] == ["completed", "completed"]
    assert broadcast["totals"]["sent"] == 150 and broadcast["totals"]["progress_percent"] == 100

    ledger = emulator.ledger()
    (failed,) = ledger[UNREACHABLE]  # failed once, not re-sent by the retry
    assert failed["status"] == "failed"
    assert failed["error_message"] in capsys.readouterr().out
    assert all(len(ledger[number]) == 1 for number in numbers(150))
