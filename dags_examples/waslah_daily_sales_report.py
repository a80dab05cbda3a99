"""Daily sales report on WhatsApp.

Every morning: compute yesterday's figures, send them to the sales manager as a WhatsApp text,
and wait until Waslah reports the message *delivered* to the manager's phone (not just accepted).

Settings (Airflow Variables, or env ``AIRFLOW_VAR_<NAME>``; defaults work on the emulator):
``waslah_instance_key`` (``demo``), ``waslah_manager_phone`` (``6281234560001``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

# Templates, not Variable.get() at the top of the file: they are read when the task runs,
# so the scheduler does not hit the metadata DB each time it parses this file.
INSTANCE_KEY = "{{ var.value.get('waslah_instance_key', 'demo') }}"
MANAGER_PHONE = "{{ var.value.get('waslah_manager_phone', '6281234560001') }}"

# A small in-DAG dataset standing in for your warehouse query: (store, product, qty, unit price).
SALES: list[tuple[str, str, int, int]] = [
    ("Jakarta", "Kopi Susu", 120, 18_000),
    ("Jakarta", "Roti Bakar", 45, 25_000),
    ("Bandung", "Kopi Susu", 80, 18_000),
    ("Bandung", "Teh Tarik", 60, 15_000),
    ("Surabaya", "Roti Bakar", 30, 25_000),
    ("Surabaya", "Kopi Susu", 95, 18_000),
]


def rupiah(amount: int) -> str:
    """Indonesian formatting: ``Rp 1.250.000``."""
    return f"Rp {amount:,}".replace(",", ".")


with DAG(
    dag_id="waslah_daily_sales_report",
    schedule="0 7 * * *",  # 07:00 every day (in the DAG's timezone, UTC unless you set one)
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["waslah", "example"],
    default_args={"owner": "data-team", "retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
):

    @task
    def compute_report(ds: str | None = None) -> str:
        """Totals per store and the best seller, formatted as one WhatsApp message."""
        per_store: Counter[str] = Counter()
        per_product: Counter[str] = Counter()
        for store, product, qty, price in SALES:
            per_store[store] += qty * price
            per_product[product] += qty
        best, best_qty = per_product.most_common(1)[0]
        lines = [f"Laporan penjualan {ds}", f"Total: {rupiah(sum(per_store.values()))}"]
        lines += [f"- {store}: {rupiah(total)}" for store, total in per_store.most_common()]
        lines.append(f"Terlaris: {best} ({best_qty} porsi)")
        return "\n".join(lines)

    # `text` takes the upstream task's return value (an XComArg, resolved at run time).
    # wait_for="delivered" keeps the task running until the manager's phone has the message.
    WaslahSendTextOperator(
        task_id="send_report",
        instance_key=INSTANCE_KEY,
        to=MANAGER_PHONE,
        text=compute_report(),
        wait_for="delivered",
    )
