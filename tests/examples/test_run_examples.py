"""Each example DAG, run with real Airflow (``dag.test()``) against the emulator over HTTP.

The assertions read the emulator's ledger: what each recipient actually received. The fixture's
emulator runs 50x faster than real time (time scale 0.02), so a message scheduled two minutes
ahead goes out after about 2.4 s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.emulator import unreachable_number
from tests.airflow_support import AIRFLOW_3_2_PLUS, DagResult
from tests.examples.conftest import messages_to

pytestmark = pytest.mark.airflow

RunExample = Callable[..., DagResult]

# The examples' default recipients (Airflow Variables unset).
MANAGER = "6281234560001"
TEAM = "6281234560003"
ONCALL = "6281234560009"
INVOICE_CUSTOMER = "6281234560201"
UNREACHABLE = unreachable_number(1)  # what waslah_failure_alert writes to: 6289990000001
# Payment reminders: phone -> (invoice, amount) for the invoices due within three days.
DUE = {
    "6281234560101": ("INV-1001", "Rp 1.250.000"),
    "6281234560102": ("INV-1002", "Rp 875.500"),
    "6281234560105": ("INV-1005", "Rp 3.150.000"),
}
NOT_DUE = ("6281234560103", "6281234560104")  # due in 10 days; already paid


def test_daily_sales_report(run_example: RunExample, waslah_emulator: Any) -> None:
    result = run_example("waslah_daily_sales_report")

    assert result.state == "success", result.task_states()
    [message] = messages_to(waslah_emulator.ledger(), MANAGER)
    # 120*18k + 45*25k + 80*18k + 60*15k + 30*25k + 95*18k, and the best seller's 295 cups.
    assert "Total: Rp 8.085.000" in message["text"]
    assert "- Jakarta: Rp 3.285.000" in message["text"]
    assert "Terlaris: Kopi Susu (295 porsi)" in message["text"]
    assert message["status"] in ("delivered", "read")
    # wait_for="delivered": the task ended only once the message was delivered.
    assert result.xcom("send_report")["status"] in ("delivered", "read")


def test_payment_reminders(run_example: RunExample, waslah_emulator: Any) -> None:
    result = run_example("waslah_payment_reminders")

    assert result.state == "success", result.task_states()
    assert result.task_states()["send_reminder"] == ["success"] * len(DUE)  # one mapped task per row
    ledger = waslah_emulator.ledger()
    for phone, (invoice, amount) in DUE.items():
        [reminder] = [m for m in messages_to(ledger, phone) if m["broadcast_id"] is None]
        assert invoice in reminder["text"] and amount in reminder["text"], reminder["text"]
    for phone in NOT_DUE:
        assert [m for m in messages_to(ledger, phone) if m["broadcast_id"] is None] == []
    # The broadcast: exactly one message to each of the five customers, all in one broadcast.
    customers = [*DUE, *NOT_DUE]
    broadcast = [m for phone in customers for m in messages_to(ledger, phone) if m["broadcast_id"] is not None]
    assert sorted(m["text"] for m in broadcast) == sorted([broadcast[0]["text"]] * 5)
    assert len({m["broadcast_id"] for m in broadcast}) == 1
    assert len(broadcast) == len(customers) == len({id(m) for m in broadcast})
    totals = result.xcom("broadcast_notice")["totals"]
    assert (totals["total"], totals["sent"], totals["failed"]) == (5, 5, 0)


def _check_pdf(data: bytes) -> None:
    """A well-formed PDF: header, trailer, and an xref table whose offsets point at the objects."""
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)\n", data).group(1))  # type: ignore[union-attr]
    assert data[startxref:].startswith(b"xref\n0 6\n")
    offsets = [int(line[:10]) for line in data[startxref:].split(b"\n")[3:8]]
    for number, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(b"%d 0 obj" % number)


def test_invoice_pdf(run_example: RunExample, waslah_emulator: Any) -> None:
    result = run_example("waslah_invoice_pdf")

    assert result.state == "success", result.task_states()
    [document] = messages_to(waslah_emulator.ledger(), INVOICE_CUSTOMER)
    assert document["type"] == "document"
    assert re.fullmatch(r"INV-\d{8}\.pdf", document["filename"])
    assert "Rp 1.665.000" in document["caption"]
    # The file Waslah stored is the PDF the DAG wrote.
    pdf = httpx.get(document["media_url"]).content
    _check_pdf(pdf)
    assert b"(TOTAL                                Rp 1.665.000) '" in pdf


def test_failure_alert(run_example: RunExample, waslah_emulator: Any) -> None:
    result = run_example("waslah_failure_alert")

    # Fails by design...
    assert result.state == "failed"
    assert result.task_states() == {"notify_customer": ["failed"]}
    ledger = waslah_emulator.ledger()
    [failed] = messages_to(ledger, UNREACHABLE)
    assert failed["status"] == "failed"
    # ...and the on-call engineer got one alert naming the task and Waslah's reason.
    [alert] = messages_to(ledger, ONCALL)
    assert "ALERT Airflow: waslah_failure_alert.notify_customer failed" in alert["text"]
    reason = failed["error_message"] if AIRFLOW_3_2_PLUS else "see the task log"
    assert reason in alert["text"]


def test_scheduled_message(run_example: RunExample, waslah_emulator: Any) -> None:
    result = run_example("waslah_scheduled_message")

    assert result.state == "success", result.task_states()
    send_at = datetime.fromisoformat(result.xcom("send_at"))
    assert send_at.utcoffset() is not None and send_at.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]
    # The send returned while Waslah held the message...
    assert result.xcom("schedule_reminder")["status"] == "pending"
    [message] = messages_to(waslah_emulator.ledger(), TEAM)
    # ...for the time asked (two minutes after the run), and the sensor saw it delivered.
    assert datetime.fromisoformat(message["scheduled_at"]) == send_at
    created = datetime.fromisoformat(message["created_at"])
    assert 110 <= (send_at - created).total_seconds() <= 130
    assert message["status"] in ("delivered", "read")
    assert f"jam {send_at:%H:%M} WIB" in message["text"]
    assert result.task_states()["wait_until_delivered"] == ["success"]


def test_due_invoice_reminders(
    run_example: RunExample, waslah_emulator: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 invoices in SQLite; the 18 unpaid ones due within 3 days get one reminder each, from one task."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_EXAMPLES_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "inv.db")})
    )
    result = run_example("waslah_due_invoice_reminders")

    assert result.state == "success", result.task_states()
    reminded = [i for i in range(1, 31) if i % 4 and i % 5]
    ledger = waslah_emulator.ledger()
    assert sorted(ledger) == [f"62812345{70000 + i:05d}" for i in reminded]
    [message] = ledger["6281234570007"]  # INV-00007: CUSTOMERS[7] is Rina; 7 x Rp 50.000
    assert message["text"].startswith("Halo Rina, tagihan INV-00007 sebesar Rp 350.000 jatuh tempo ")
    assert message["status"] in ("delivered", "read")
    xcom = result.xcom("send_reminders")
    assert xcom["totals"] == {"rows": 18, "sent": 18, "failed": 0, "skipped": 0, "unknown": 0, "resumed": 0}
    assert xcom["wait"]["reached"] == 18
    assert result.xcom("report") == "18 sent, 0 already sent by an earlier try, 0 failed, 0 unknown; 18 delivered"
