"""Payout approval on WhatsApp: the finance approver answers Airflow's question by replying "1" or "tolak".

How it works:

1. ``prepare_payout`` works out the vendor payout (here: a fixed example).
2. ``approve_payout`` is Airflow's own ``HITLBranchOperator``. Its ``assigned_users`` name the
   approver's WhatsApp number (``whatsapp_user(...)``) and the Airflow user who may also answer in
   the UI; its ``notifiers`` hold a ``WaslahHITLNotifier``, which sends the question to every
   WhatsApp assignee::

       *Perlu keputusan Anda* (kode KPRT)
       *Payout Rp 12.500.000 ke PT Maju Jaya*
       ...
       Balas 1 = Setujui, 2 = Tolak
       Batas waktu: 25 Nov 2026 13:00 WIB (tanpa jawaban: otomatis Tolak)
       Buka di Airflow: https://airflow.example.com/dags/waslah_payout_approval/runs/.../required_actions?map_index=-1

3. The approver replies on WhatsApp. The provider's webhook receiver (on the api-server) verifies
   the reply and answers the question through Airflow's own HITL code, as the UI would: "1" or
   "setujui" runs ``pay_vendor``, "2" or "tolak" runs ``notify_rejected``; the UI shows the
   responder as ``whatsapp:<number>``. Anything else ("halo") gets the options back and the task
   keeps waiting. Replies from other numbers answer nothing. An answer in the UI counts just the
   same; a WhatsApp reply after it gets "sudah dijawab oleh ...".
4. Without an answer within ``response_timeout``, Airflow takes the ``defaults``: "Tolak".

Needs the webhook receiver set up (docs/inbound.md) and runs with a scheduler, not with
``airflow dags test`` (which does not answer Human-in-the-loop questions by itself).

Settings (Airflow Variables, read when the file is parsed): ``waslah_instance_key`` (``demo``),
``waslah_payout_approver`` (``6281234560010``), ``waslah_payout_ui_approver`` (the Airflow user who
may answer in the UI, ``admin``), ``waslah_payout_timeout_minutes`` (``240``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import DAG, Variable, task

from airflow_provider_waslah.hitl import WaslahHITLNotifier, whatsapp_user

INSTANCE_KEY = Variable.get("waslah_instance_key", default="demo")
APPROVER = Variable.get("waslah_payout_approver", default="6281234560010")
UI_APPROVER = Variable.get("waslah_payout_ui_approver", default="admin")
TIMEOUT = timedelta(minutes=float(Variable.get("waslah_payout_timeout_minutes", default="240")))

with DAG(
    dag_id="waslah_payout_approval",
    schedule="0 9 * * 1-5",  # weekday mornings: payouts of the previous day
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example", "hitl"],
    default_args={"owner": "finance"},
    doc_md=__doc__,
):

    @task
    def prepare_payout() -> dict[str, Any]:
        """The payout to approve (a real DAG would read it from the ledger)."""
        return {"vendor": "PT Maju Jaya", "amount": "Rp 12.500.000", "invoice": "INV-1001", "account": "BCA 123***789"}

    payout = prepare_payout()

    approve = HITLBranchOperator(
        task_id="approve_payout",
        subject=(
            "Payout {{ ti.xcom_pull('prepare_payout')['amount'] }} ke {{ ti.xcom_pull('prepare_payout')['vendor'] }}"
        ),
        body=(
            "Invoice: {{ ti.xcom_pull('prepare_payout')['invoice'] }}\n"
            "Rekening: {{ ti.xcom_pull('prepare_payout')['account'] }}"
        ),
        options=["Setujui", "Tolak"],
        options_mapping={"Setujui": "pay_vendor", "Tolak": "notify_rejected"},
        defaults="Tolak",
        response_timeout=TIMEOUT,
        assigned_users=[whatsapp_user(APPROVER, "Finance approver"), {"id": UI_APPROVER, "name": UI_APPROVER}],
        notifiers=[WaslahHITLNotifier(instance_key=INSTANCE_KEY)],
    )

    @task
    def pay_vendor(payout: dict[str, Any]) -> str:
        """Approved: pay (here: say so)."""
        return f"paid {payout['amount']} to {payout['vendor']}"

    @task
    def notify_rejected(payout: dict[str, Any]) -> str:
        """Rejected, or nobody answered in time: do not pay."""
        return f"not paid: {payout['invoice']}"

    payout >> approve >> [pay_vendor(payout), notify_rejected(payout)]
