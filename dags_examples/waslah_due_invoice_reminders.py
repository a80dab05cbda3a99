"""Due-invoice reminders straight from a SQL table: one personalised WhatsApp per row, from one task.

1. ``create_demo_table`` stands in for your ETL: it writes a table of invoices (unpaid, paid,
   due soon, due later) into the SQLite database of the ``waslah_examples_db`` connection.
2. ``send_reminders`` (``WaslahBatchSendOperator``) runs a query on that connection, reads the
   rows in chunks, renders one text per row (``{{ row.customer }}``, the amount through the DAG's
   own ``rupiah`` filter, the due date) and checks every row before sending the first message.
   It sends at the key's whole budget with several requests in flight, logs progress
   (``120 / 300 sent, 0 failed, 16/s, ETA 11 s``), checkpoints which rows Waslah accepted, and
   then waits for delivery of the whole batch in the triggerer (``deferrable=True``). A retry
   after a failure sends only the rows Waslah never accepted.
3. ``report`` reads the totals from the XCom.

No ``max_map_length`` limit and no task instance per row: 30 rows or 100,000 are one task. Point
the connection at your warehouse (any Airflow SQL connection: Postgres, MySQL, Snowflake, ...)
and the query at your invoices.

Settings (Airflow Variables or env ``AIRFLOW_VAR_<NAME>``): ``waslah_instance_key`` (``demo``),
``waslah_demo_invoices`` (30: how many invoices the demo table gets). The connection, e.g.
``AIRFLOW_CONN_WASLAH_EXAMPLES_DB='{"conn_type": "sqlite", "host": "/tmp/invoices.db"}'``
(``scripts/demo.sh`` sets it).
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseHook, Variable, task

from airflow_provider_waslah.operators.batch import WaslahBatchSendOperator

DB_CONN_ID = "waslah_examples_db"
INSTANCE_KEY = "{{ var.value.get('waslah_instance_key', 'demo') }}"
CUSTOMERS = ("Budi", "Siti", "Andi", "Dewi", "Rudi", "Wati", "Agus", "Rina", "Joko", "Lina")


def rupiah(amount: int) -> str:
    """Indonesian formatting: ``Rp 1.250.000``."""
    return f"Rp {int(amount):,}".replace(",", ".")


def demo_invoices(run_date: date, count: int) -> list[tuple[str, str, str, int, str, int]]:
    """``count`` invoices: every 5th already paid, every 4th due in 10 days, the rest due within 3 days."""
    rows = []
    for i in range(1, count + 1):
        due = run_date + timedelta(days=10 if i % 4 == 0 else i % 4 - 1)
        customer, phone = CUSTOMERS[i % len(CUSTOMERS)], f"62812345{70000 + i:05d}"
        rows.append((f"INV-{i:05d}", customer, phone, 50_000 * i, due.isoformat(), 1 if i % 5 == 0 else 0))
    return rows


with DAG(
    dag_id="waslah_due_invoice_reminders",
    schedule="0 8 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example"],
    default_args={"owner": "finance-data", "retries": 2, "retry_delay": timedelta(minutes=1)},
    user_defined_filters={"rupiah": rupiah},
    doc_md=__doc__,
):

    @task
    def create_demo_table(ds: str | None = None) -> int:
        """The invoices table in the connection's SQLite file (recreated on every run)."""
        path = Path(str(BaseHook.get_connection(DB_CONN_ID).host))
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = demo_invoices(date.fromisoformat(str(ds)), int(Variable.get("waslah_demo_invoices", 30)))
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE IF EXISTS invoices")
            db.execute(
                "CREATE TABLE invoices (invoice_id TEXT PRIMARY KEY, customer TEXT, phone TEXT, amount INTEGER,"
                " due_date TEXT, paid INTEGER)"
            )
            db.executemany("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    send_reminders = WaslahBatchSendOperator(
        task_id="send_reminders",
        instance_key=INSTANCE_KEY,
        sql_conn_id=DB_CONN_ID,
        sql=(
            "SELECT invoice_id, customer, phone, amount, due_date FROM invoices"
            " WHERE paid = 0 AND due_date <= date(?, '+3 day') ORDER BY due_date, invoice_id"
        ),
        parameters=["{{ ds }}"],
        row_key="invoice_id",  # what the checkpoint remembers each row by, across retries
        to="{{ row.phone }}",
        text=(
            "Halo {{ row.customer }}, tagihan {{ row.invoice_id }} sebesar {{ row.amount | rupiah }} jatuh tempo "
            "{{ row.due_date }}. Abaikan pesan ini jika sudah membayar. Terima kasih!"
        ),
        progress_interval=10,
        wait_for="delivered",  # one wait for the whole batch ...
        deferrable=True,  # ... in the triggerer, holding no worker slot
        poll_interval=5,
    )

    @task
    def report(result: dict[str, Any]) -> str:
        """One line for the run's log: what the batch did."""
        totals, wait = result["totals"], result.get("wait", {})
        return (
            f"{totals['sent']} sent, {totals['resumed']} already sent by an earlier try, {totals['failed']} failed, "
            f"{totals['unknown']} unknown; {wait.get('reached', 0)} delivered"
        )

    create_demo_table() >> send_reminders
    report(send_reminders.output)
