"""Payment reminders after the ETL: one personalised WhatsApp per due invoice, then a broadcast.

1. ``create_demo_database`` stands in for your ETL: it writes a small SQLite database of
   customers and invoices (under ``$AIRFLOW_HOME/waslah_examples/``). Point ``load_due_invoices``
   at your own warehouse instead.
2. ``load_due_invoices`` returns one dict of operator arguments per unpaid invoice due within
   three days; ``send_reminder`` is *mapped* over them (``expand_kwargs``): one task instance, one
   message, one retry unit per customer.
3. ``broadcast_notice`` sends the same text to every customer as a Waslah broadcast (paced by
   Waslah with random delays), and waits for it to complete *deferred*: the wait runs in the
   triggerer and holds no worker slot.

Dynamic task mapping is capped by ``[core] max_map_length`` (1,024): for thousands of
personalised messages, send in batches from one task; for the same text to thousands of
people, use the broadcast operator, which splits into broadcasts of 100.

Settings (Airflow Variables or env ``AIRFLOW_VAR_<NAME>``): ``waslah_instance_key`` (``demo``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_waslah.operators.waslah import WaslahBroadcastOperator, WaslahSendTextOperator

INSTANCE_KEY = "{{ var.value.get('waslah_instance_key', 'demo') }}"
REMIND_DAYS_AHEAD = 3

# Demo data: (invoice, customer, phone, amount in rupiah, due in N days from the run date, paid).
DEMO_INVOICES: list[tuple[str, str, str, int, int, bool]] = [
    ("INV-1001", "Budi", "6281234560101", 1_250_000, -2, False),  # overdue: reminded
    ("INV-1002", "Siti", "6281234560102", 875_500, 1, False),  # due tomorrow: reminded
    ("INV-1003", "Andi", "6281234560103", 2_400_000, 10, False),  # not due yet
    ("INV-1004", "Dewi", "6281234560104", 560_000, 0, True),  # already paid
    ("INV-1005", "Rudi", "6281234560105", 3_150_000, 3, False),  # due in 3 days: reminded
]


def database_path() -> Path:
    """Where the demo database lives: inside AIRFLOW_HOME, so every task of the run finds it."""
    home = Path(os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir())
    return home / "waslah_examples" / "invoices.db"


def rupiah(amount: int) -> str:
    """Indonesian formatting: ``Rp 1.250.000``."""
    return f"Rp {amount:,}".replace(",", ".")


with DAG(
    dag_id="waslah_payment_reminders",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example"],
    default_args={"owner": "finance-data", "retries": 1, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
):

    @task
    def create_demo_database(ds: str | None = None) -> str:
        """Write customers and invoices (due dates relative to the run date); idempotent."""
        run_date = date.fromisoformat(str(ds))
        path = database_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY, customer TEXT, phone TEXT,"
                " amount INTEGER, due_date TEXT, paid INTEGER)"
            )
            db.executemany(
                "INSERT OR REPLACE INTO invoices VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (inv, name, phone, amount, (run_date + timedelta(days=days)).isoformat(), paid)
                    for inv, name, phone, amount, days, paid in DEMO_INVOICES
                ],
            )
        return str(path)

    @task
    def load_due_invoices(db_path: str, ds: str | None = None) -> list[dict[str, str]]:
        """One ``{"to", "text"}`` per unpaid invoice due by run date + 3 days: the mapped task's kwargs."""
        horizon = (date.fromisoformat(str(ds)) + timedelta(days=REMIND_DAYS_AHEAD)).isoformat()
        with sqlite3.connect(db_path) as db:
            rows = db.execute(
                "SELECT id, customer, phone, amount, due_date FROM invoices"
                " WHERE paid = 0 AND due_date <= ? ORDER BY due_date",
                (horizon,),
            ).fetchall()
        return [
            {
                "to": phone,
                "text": f"Halo {name}, tagihan {invoice} sebesar {rupiah(amount)} jatuh tempo {due}. "
                "Abaikan pesan ini jika sudah membayar. Terima kasih!",
            }
            for invoice, name, phone, amount, due in rows
        ]

    @task
    def load_customers(db_path: str) -> list[str]:
        """Every customer's phone number, for the broadcast."""
        with sqlite3.connect(db_path) as db:
            return [phone for (phone,) in db.execute("SELECT DISTINCT phone FROM invoices ORDER BY phone")]

    db_path = create_demo_database()

    # One mapped task instance per row: `partial` holds what all reminders share,
    # `expand_kwargs` gets a list of dicts (here `to` and `text`) from the upstream task.
    # wait_for="sent" fails the row's task if the number is not on WhatsApp (checked every 2 s).
    reminders = WaslahSendTextOperator.partial(
        task_id="send_reminder", instance_key=INSTANCE_KEY, wait_for="sent", poll_interval=2
    ).expand_kwargs(load_due_invoices(db_path))

    # The same text to every customer, paced by Waslah 2-5 s apart; wait_for="completed" with
    # deferrable=True frees the worker slot while the broadcast runs.
    broadcast = WaslahBroadcastOperator(
        task_id="broadcast_notice",
        instance_key=INSTANCE_KEY,
        name="Info libur {{ ds }}",
        recipients=load_customers(db_path),
        text="Info: layanan pelanggan libur pada hari raya. Pembayaran tetap bisa lewat transfer bank.",
        delay_min_sec=2,
        delay_max_sec=5,
        wait_for="completed",
        deferrable=True,
        poll_interval=5,
    )
    reminders >> broadcast
