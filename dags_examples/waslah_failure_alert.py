"""Failure alerts on WhatsApp: the on-call engineer hears about a failed task within seconds.

``WaslahNotifier`` goes in ``default_args["on_failure_callback"]``, so *every* task of the DAG
alerts when it fails (after its last retry). Its ``text`` is a Jinja template rendered over the
task's context: ``ti``, ``dag``, ``run_id``, ``exception``, ...

This DAG fails on purpose, so you can watch the alert arrive: ``notify_customer`` writes to a
number that is not on WhatsApp (``628999…``; the emulator treats those as unreachable), waits
for delivery, and Waslah marks the message ``failed``; the task fails with Waslah's reason,
and the notifier sends the alert. ``airflow dags test waslah_failure_alert`` exits with 1.

Settings (Airflow Variables or env ``AIRFLOW_VAR_<NAME>``): ``waslah_instance_key`` (``demo``),
``waslah_oncall_phone`` (``6281234560009``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_waslah.notifications.waslah import WaslahNotifier
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

INSTANCE_KEY = "{{ var.value.get('waslah_instance_key', 'demo') }}"

alert_oncall = WaslahNotifier(
    instance_key=INSTANCE_KEY,
    to="{{ var.value.get('waslah_oncall_phone', '6281234560009') }}",
    text=(
        "ALERT Airflow: {{ dag.dag_id }}.{{ ti.task_id }} failed (try {{ ti.try_number }}, run {{ run_id }}).\n"
        # Airflow 3.2+ puts the task's exception into the callback context; 3.1 does not.
        "Reason: {{ exception if exception is defined else 'see the task log' }}"
    ),
)

with DAG(
    dag_id="waslah_failure_alert",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example"],
    default_args={"owner": "data-platform", "retries": 0, "on_failure_callback": alert_oncall},
    doc_md=__doc__,
):
    # Fails by design: 6289990000001 is "not registered on WhatsApp" in the emulator.
    WaslahSendTextOperator(
        task_id="notify_customer",
        instance_key=INSTANCE_KEY,
        to="6289990000001",
        text="Pesanan Anda sudah dikirim.",
        wait_for="delivered",
    )
