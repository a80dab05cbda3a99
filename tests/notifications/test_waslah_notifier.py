"""``WaslahNotifier`` as task callbacks in a real DAG, and awaited the way deadline alerts run it."""

from __future__ import annotations

import os
from typing import Any

import pytest

from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.notifications.waslah import DEFAULT_TEXT, WaslahNotifier, send_waslah_notification
from tests.operators.support import AIRFLOW_3_2_PLUS, api_requests, dag_source

ONCALL = ["081200000001", "+62 812 0000 0002"]


def test_failure_retry_and_success_callbacks_reach_the_recipients(dag_runner: Any, emulator: Any) -> None:
    result = dag_runner.run(
        "notify_dag",
        dag_source(
            f"""
alert = WaslahNotifier(to={ONCALL!r}, instance_key="demo")

# One notifier shared by every task through default_args: each alert must name its own task.
with DAG("notify_dag", schedule=None, start_date=datetime(2025, 1, 1), default_args={{"on_failure_callback": alert}}):
    @task(retries=1, retry_delay=timedelta(0),
          on_retry_callback=send_waslah_notification(
              to="081200000003", instance_key="demo",
              text="Retrying {{{{ ti.task_id }}}} (try {{{{ ti.try_number }}}})"))
    def load_sales():
        raise ValueError("warehouse unreachable")

    @task(on_success_callback=send_waslah_notification(
        to=[{{"phone": "081200000004"}}], instance_key="demo", text="{{{{ ti.task_id }}}} OK in {{{{ dag.dag_id }}}}"))
    def report():
        return 1

    @task
    def load_stock():
        raise KeyError("sku")

    load_sales()
    load_stock()
    report()
"""
        ),
    )
    assert result.task_states() == {"load_sales": ["failed"], "load_stock": ["failed"], "report": ["success"]}
    ledger = emulator.ledger()

    for number in ("6281200000001", "6281200000002"):
        alerts = {("Task: load_stock" in entry["text"]): entry["text"] for entry in ledger[number]}
        assert len(ledger[number]) == 2 and set(alerts) == {True, False}  # one alert per failed task
        assert "Task: load_sales" not in alerts[True] and "Try: 1" in alerts[True]
        text = alerts[False]
        assert "DAG: notify_dag" in text and "Task: load_sales" in text
        assert "Try: 2" in text and "Run: manual__" in text
        assert "Log: http" in text and "/dags/notify_dag/runs/" in text and "/tasks/load_sales" in text
        # Airflow 3.1's dag.test() leaves the exception out of the callback context.
        assert ("Error: warehouse unreachable" in text) is AIRFLOW_3_2_PLUS
        assert "State: failed" in text, text
    assert [entry["text"] for entry in ledger["6281200000003"]] == ["Retrying load_sales (try 1)"]
    assert [entry["text"] for entry in ledger["6281200000004"]] == ["report OK in notify_dag"]


async def test_awaited_like_a_deadline_alert_with_extra_kwargs(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", emulator.airflow_connection())
    # What the triggerer's callback trigger does: build the notifier from kwargs (plus `context`) and await it.
    context = {"dag_run": {"dag_id": "nightly_etl", "run_id": "scheduled__2025-01-01", "state": "running"}}
    await WaslahNotifier(to="081200000005, 081200000006", instance_key="demo", context=context)
    ledger = emulator.ledger()
    for number in ("6281200000005", "6281200000006"):
        (alert,) = ledger[number]
        assert "DAG: nightly_etl" in alert["text"] and "Run: scheduled__2025-01-01" in alert["text"]
        assert "State: running" in alert["text"]


def test_long_text_is_cut_and_bad_recipients_fail_before_any_request(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", emulator.airflow_connection())
    WaslahNotifier(to="081200000007", instance_key="demo", text="x" * 5000)({"ti": None})
    (alert,) = emulator.ledger()["6281200000007"]
    assert len(alert["text"]) == 4000 and alert["text"].endswith("…")

    before = len(api_requests(emulator))
    with pytest.raises(WaslahInvalidInputError, match=r"Invalid `to`: 1 invalid number\(s\): '123'"):
        WaslahNotifier(to=["081200000008", "123"], instance_key="demo")({})
    with pytest.raises(WaslahInvalidInputError, match="Invalid `to`: must name at least one recipient"):
        WaslahNotifier(to=[], instance_key="demo")({})
    assert len(api_requests(emulator)) == before
    assert "AIRFLOW_CONN_WASLAH_DEFAULT" in os.environ


def test_notifier_shape() -> None:
    notifier = send_waslah_notification(to="081200000009", instance_key="demo")
    assert isinstance(notifier, WaslahNotifier)
    assert {"text", "to", "instance_key"} <= set(notifier.template_fields)
    assert notifier.text == DEFAULT_TEXT and notifier.waslah_conn_id == "waslah_default"
