"""Keyword router: "STOP" opts a customer out (SQLite table + confirmation), anything else gets the auto-reply.

Scheduled on the Waslah asset of the support line's ``message.received`` events, like
``waslah_auto_reply`` (see there for the webhook set-up). Each run:

1. ``route`` reads the run's messages (several may arrive in one run) and decides per message.
   ``STOP`` (or ``BERHENTI``, any case, surrounding spaces ignored) records the customer in the
   ``opt_out`` table of a SQLite database (under ``$AIRFLOW_HOME/waslah_examples/``; keyed by the
   chat's ``remote_jid``, so ``@lid`` customers are recorded too) and answers with a confirmation;
   any other text gets the auto-reply. Recording is idempotent (``INSERT OR IGNORE``), so a retry
   of ``route`` adds nothing twice.
2. ``reply`` is mapped over the answers: one message per customer message, to its ``remote_jid``
   exactly as received.

Your campaign DAGs can then leave out everyone in ``opt_out``. Settings: ``INSTANCE_KEY`` below.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_waslah.inbound import inbound_messages, waslah_asset
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

CONN_ID = "waslah_default"
INSTANCE_KEY = "support"  # the support line's Waslah instance
MESSAGE_RECEIVED = waslah_asset(INSTANCE_KEY, "message.received", conn_id=CONN_ID)
STOP_WORDS = frozenset({"STOP", "BERHENTI"})
CONFIRM_STOP = "Anda tidak akan menerima pesan promosi lagi dari kami. Terima kasih."
AUTO_REPLY = "Terima kasih sudah menghubungi kami! Balas STOP untuk berhenti menerima promosi."


def database_path() -> Path:
    """The opt-out database: inside AIRFLOW_HOME, so every task of the deployment finds it."""
    home = Path(os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir())
    return home / "waslah_examples" / "opt_out.db"


def is_stop(body: str) -> bool:
    """Whether a message asks to opt out."""
    return body.strip().upper() in STOP_WORDS


with DAG(
    dag_id="waslah_keyword_router",
    schedule=[MESSAGE_RECEIVED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example", "inbound"],
    default_args={"owner": "customer-care", "retries": 2, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
):

    @task
    def route(triggering_asset_events: Any = None) -> list[dict[str, str]]:
        """Record opt-outs, and return one answer per message: a confirmation or the auto-reply."""
        messages = inbound_messages(triggering_asset_events)
        path = database_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        answers = []
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS opt_out (remote_jid TEXT PRIMARY KEY, phone TEXT, instance_key TEXT,"
                " opted_out_at TEXT, event_id TEXT)"
            )
            for message in messages:
                if is_stop(message.body):
                    db.execute(
                        "INSERT OR IGNORE INTO opt_out VALUES (?, ?, ?, ?, ?)",
                        (
                            message.remote_jid,
                            message.from_,
                            message.instance_key,
                            datetime.now(timezone.utc).isoformat(),
                            message.event_id,
                        ),
                    )
                    text = CONFIRM_STOP
                else:
                    text = AUTO_REPLY
                print(
                    f"{message.remote_jid}: {message.body!r} -> {'opt-out' if text == CONFIRM_STOP else 'auto-reply'}"
                )
                answers.append({"instance_key": message.instance_key, "to": message.reply_to, "text": text})
        return answers

    WaslahSendTextOperator.partial(task_id="reply", waslah_conn_id=CONN_ID).expand_kwargs(route())
