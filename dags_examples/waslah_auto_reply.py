"""Auto-reply: every WhatsApp message a customer sends gets one answer, from Airflow.

How it works:

1. Register ``https://<your airflow>/waslah/webhook/waslah_default`` in Waslah's dashboard and put
   the secret it shows in the ``waslah_default`` connection's **Webhook secret** field.
2. The provider's receiver (on the Airflow api-server) verifies each delivery and stores it as an
   asset event on ``waslah://waslah_default/<instance>/message.received``; this DAG is scheduled
   on that asset, so a customer's message starts a run within seconds.
3. ``plan_replies`` reads the run's messages (``inbound_messages(triggering_asset_events)``);
   Airflow may put several messages in one run, so it returns one reply per message, each to the
   message's ``remote_jid`` exactly as received (customers in WhatsApp's privacy mode, ``…@lid``,
   get nothing sent to their digits).
4. ``reply`` is *mapped*: one task instance, one message, one retry unit per customer. A reply
   that Waslah accepted is never sent again, even if the task fails afterwards.

A retried webhook (Waslah did not see our answer) or a replayed one is refused by the receiver,
so it starts no second run and no second reply.

Settings: ``INSTANCE_KEY`` below (the schedule is fixed when the file is parsed, so it is a
constant, not a Variable template).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_waslah.inbound import inbound_messages, waslah_asset
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

CONN_ID = "waslah_default"
INSTANCE_KEY = "demo"  # the Waslah instance (phone number) customers write to
MESSAGE_RECEIVED = waslah_asset(INSTANCE_KEY, "message.received", conn_id=CONN_ID)


def reply_text(body: str) -> str:
    """The answer: thanks, and the first words of what the customer wrote."""
    quoted = " ".join(body.split())
    quoted = quoted if len(quoted) <= 60 else quoted[:59] + "…"
    return f'Terima kasih! Pesan Anda "{quoted}" sudah kami terima. Tim kami akan membalas secepatnya.'


with DAG(
    dag_id="waslah_auto_reply",
    schedule=[MESSAGE_RECEIVED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example", "inbound"],
    default_args={"owner": "customer-care", "retries": 2, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
):

    @task
    def plan_replies(triggering_asset_events: Any = None) -> list[dict[str, str]]:
        """One reply per inbound message of this run (Airflow batches messages that arrive together)."""
        replies = []
        for message in inbound_messages(triggering_asset_events):
            print(f"{message.event_id}: {message.remote_jid} wrote {message.body!r}")
            replies.append(
                {"instance_key": message.instance_key, "to": message.reply_to, "text": reply_text(message.body)}
            )
        return replies

    WaslahSendTextOperator.partial(task_id="reply", waslah_conn_id=CONN_ID).expand_kwargs(plan_replies())
