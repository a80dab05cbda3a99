"""A message scheduled for later: Waslah holds it and sends it at ``scheduled_at``.

``send_at`` computes the moment (timezone-aware, Asia/Jakarta; here *now + 2 minutes* so the
demo is quick; in real life e.g. 09:00 on the due date). ``schedule_reminder`` hands the message
to Waslah right away with that ``scheduled_at`` and finishes: no worker waits for two minutes.
``wait_until_delivered`` then waits for the delivery *deferred*, in the triggerer.

``scheduled_at`` must be timezone-aware and at least 30 s ahead: the operator checks it before
calling Waslah. Scheduling needs the Basic plan or higher.

Settings (Airflow Variables or env ``AIRFLOW_VAR_<NAME>``): ``waslah_instance_key`` (``demo``),
``waslah_team_phone`` (``6281234560003``), ``waslah_schedule_minutes`` (``2``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import DAG, Variable, task

from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator
from airflow_provider_waslah.sensors.waslah import WaslahMessageSensor

INSTANCE_KEY = "{{ var.value.get('waslah_instance_key', 'demo') }}"
JAKARTA = ZoneInfo("Asia/Jakarta")

with DAG(
    dag_id="waslah_scheduled_message",
    schedule="0 8 * * 1-5",  # weekdays at 08:00
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example"],
    default_args={"owner": "ops-team", "retries": 1, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
):

    @task
    def send_at() -> str:
        """When the message should go out: an ISO 8601 string with its UTC offset (+07:00)."""
        minutes = int(Variable.get("waslah_schedule_minutes", default="2"))
        return (datetime.now(JAKARTA) + timedelta(minutes=minutes)).isoformat(timespec="seconds")

    when = send_at()

    # Returns at once with status "pending"; the XCom holds the message id for the sensor.
    scheduled = WaslahSendTextOperator(
        task_id="schedule_reminder",
        instance_key=INSTANCE_KEY,
        to="{{ var.value.get('waslah_team_phone', '6281234560003') }}",
        text="Pengingat: stand-up tim data jam {{ ti.xcom_pull(task_ids='send_at')[11:16] }} WIB.",
        scheduled_at=when,
    )

    # Deferrable: polls Waslah from the triggerer every 5 s, holding no worker slot.
    # message_id: a field of the send task's XCom dict ({"message_id", "status", ...}). Pulled with a
    # template (`scheduled.output["message_id"]` would mean an XCom *key* "message_id"), so the
    # dependency is set by hand.
    scheduled >> WaslahMessageSensor(
        task_id="wait_until_delivered",
        message_id="{{ ti.xcom_pull(task_ids='schedule_reminder')['message_id'] }}",
        target_statuses=["delivered", "read"],
        poke_interval=5,
        timeout=15 * 60,
        deferrable=True,
    )
